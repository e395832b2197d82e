"""The inbox's approval page in a real browser: Debian's Chromium, driven by Playwright.

Each test starts an approval on `earlyexit serve` with plain boto3, reads each approver's
notification (the mail) from the notification queue, opens its link in Chromium and answers
there, as a person would. Playwright's own browser download is not used: the tests launch
the system's Chromium (Debian's package ``chromium``) and skip where it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from endpoint import client
from playwright.sync_api import Browser, Page, expect, sync_playwright
from support import ended

from earlyexit.polling import wait_until

CHROMIUM = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (/usr/bin/chromium): the browser tests "
                                                "need Debian's package, `apt-get install chromium`"),
]

# Every browser wait (navigation, a locator, an expect) fails after this long, naming what it waited for.
BROWSER_TIMEOUT_MS = 15_000
MAIL_TIMEOUT = 20.0  # seconds for a notification to reach the queue
OUTCOME_TIMEOUT = 20.0  # seconds for an execution to end once decided
EXECUTION_TIMEOUT = 120  # the executions' own deadline (timeoutSeconds): the tests decide long before it
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHONE = {"width": 390, "height": 844}

# Headless, off the network: nothing but the pages of the local endpoint is fetched.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class Mailbox:
    """The notification queue, read as approvers read their mail: every message is received once,
    deleted and kept here by approver."""

    sqs: Any
    queue_url: str
    inbox_url: str
    mail: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _drain(self) -> None:
        for message in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages", []):
            envelope = json.loads(message["Body"])
            approver = envelope["MessageAttributes"]["approver"]["Value"]
            self.mail.setdefault(approver, []).append(envelope)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notification(self, approver: str) -> dict[str, Any]:
        """The first notification ``approver`` got (an SNS envelope), waiting for it if need be."""
        def probe() -> dict[str, Any] | None:
            if approver not in self.mail:
                self._drain()
            return self.mail.get(approver, [None])[0]

        return wait_until(probe, timeout=MAIL_TIMEOUT, what=f"the notification to {approver}")

    def link(self, approver: str) -> str:
        """The link in ``approver``'s notification: the line of the message that starts with the inbox's URL."""
        message = self.notification(approver)["Message"]
        links = [line.strip() for line in message.splitlines()
                 if line.strip().startswith(f"{self.inbox_url}/requests/")]
        assert len(links) == 1, f"expected one link to {self.inbox_url}/requests/ in:\n{message}"
        return links[0]


@dataclass
class Inbox:
    url: str
    stacks: dict[str, dict[str, str]]
    mailbox: Mailbox
    browser: Browser

    @property
    def sfn(self) -> Any:
        return client(self.url, "stepfunctions")

    def start(self, pattern: str, approvers: list[str], request: dict[str, Any], **extra: Any) -> str:
        execution_input = {"approvers": approvers, "request": request, "timeoutSeconds": EXECUTION_TIMEOUT, **extra}
        return str(self.sfn.start_execution(stateMachineArn=self.stacks[pattern]["StateMachineArn"],
                                            input=json.dumps(execution_input))["executionArn"])

    def outcome(self, execution_arn: str) -> dict[str, Any]:
        execution = ended(self.sfn, execution_arn, timeout=OUTCOME_TIMEOUT)
        assert execution.status == "SUCCEEDED", (execution.status, execution.error, execution.cause)
        assert execution.output is not None
        return execution.output

    def page(self, **context: Any) -> Page:
        page = self.browser.new_context(**context).new_page()
        page.set_default_timeout(BROWSER_TIMEOUT_MS)
        page.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
        return page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]  # Chromium's sandbox refuses root
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    with sync_playwright() as playwright:
        # A fresh, temporary user data dir of Playwright's own; the system's Chromium, never a download.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args,
                                              timeout=BROWSER_TIMEOUT_MS * 2)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def inbox(browser: Browser, served: dict[str, Any]) -> Inbox:
    url = served["endpoint"]
    mailbox = Mailbox(client(url, "sqs"), served["notificationQueueUrl"],
                      served["stacks"]["inbox"]["InboxUrl"].rstrip("/"))
    return Inbox(url, served["stacks"], mailbox, browser)


def _names(*people: str) -> list[str]:
    """Approver names of this test alone: each approver's mail is theirs, whatever other tests started."""
    tag = uuid.uuid4().hex[:8]
    return [f"{person}-{tag}" for person in people]


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"no screenshot at {path}"
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) and data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"


def _task_outputs(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The outputs of the execution's TaskSucceeded events: what the approvers sent to Step Functions."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [json.loads(event["taskSucceededEventDetails"]["output"]) for event in events
            if event["type"] == "TaskSucceeded" and event.get("taskSucceededEventDetails", {}).get("output")]


def _approve(inbox: Inbox, link: str, comment: str = "") -> Page:
    page = inbox.page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Approval requested")).to_be_visible()
    if comment:
        page.locator("textarea[name=comment]").fill(comment)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("p.state")).to_have_text("Recorded: you approved."
                                                 + (f" Your comment: {comment}" if comment else ""))
    return page


def test_either_or_approved_in_the_browser(inbox: Inbox, tmp_path: Path) -> None:
    alice, bob = _names("alice", "bob")
    request = {"title": "<b>New laptop</b>", "ticket": f"CHG-{uuid.uuid4().hex[:6]}"}
    arn = inbox.start("either-or", [alice, bob], request)
    comment = "Fine by me & by <i>finance</i> \u2013 ship it"

    notification = inbox.mailbox.notification(alice)
    assert notification["MessageAttributes"]["pattern"]["Value"] == "either-or"
    page = inbox.page()
    page.goto(inbox.mailbox.link(alice))

    # The request and its approver, shown as text: the markup in them is escaped, never rendered.
    expect(page.get_by_role("heading", name="Approval requested")).to_be_visible()
    expect(page.locator("dd").first).to_have_text(alice)
    expect(page.locator("pre")).to_contain_text('"title": "<b>New laptop</b>"')
    expect(page.locator("pre")).to_contain_text(request["ticket"])
    assert page.locator("b").count() == 0, "the request's <b> was rendered as markup"
    expect(page.locator("input[type=hidden][name=nonce]")).to_have_count(1)

    page.locator("textarea[name=comment]").fill(comment)
    form_png = tmp_path / "form.png"
    page.screenshot(path=str(form_png), full_page=True)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("p.state")).to_have_text(f"Recorded: you approved. Your comment: {comment}")
    assert page.locator("i").count() == 0, "the comment's <i> was rendered as markup"
    confirmation_png = tmp_path / "confirmation.png"
    page.screenshot(path=str(confirmation_png), full_page=True)
    _assert_png(form_png)
    _assert_png(confirmation_png)
    page.context.close()

    output = inbox.outcome(arn)
    assert (output["outcome"], output["decidedBy"]) == ("APPROVED", alice)
    assert output["approvals"] == [alice] and output["rejections"] == []
    # The engine's output does not carry comments yet: the history shows that Step Functions got it.
    assert {"decision": "approve", "comment": comment} in _task_outputs(inbox.sfn, arn)

    late = inbox.page()
    late.goto(inbox.mailbox.link(bob))
    expect(late.locator("p.state")).to_have_text("Already decided: APPROVED")
    expect(late.locator("form")).to_have_count(0)
    expect(late.get_by_role("button")).to_have_count(0)
    late.context.close()


def test_the_page_fits_a_phone_screen(inbox: Inbox, tmp_path: Path) -> None:
    alice, bob = _names("alice", "bob")
    request = {"title": "A request whose words are long: " + "x" * 120, "amount": "1,250.00 EUR"}
    arn = inbox.start("either-or", [alice, bob], request)
    page = inbox.page(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    page.goto(inbox.mailbox.link(alice))

    approve = page.get_by_role("button", name="Approve")
    expect(approve).to_be_visible()
    expect(page.get_by_role("button", name="Reject")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the form scrolls sideways"
    box = approve.bounding_box()
    assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    page.screenshot(path=str(tmp_path / "phone-form.png"))
    _assert_png(tmp_path / "phone-form.png")

    approve.tap()
    expect(page.locator("p.state")).to_have_text("Recorded: you approved.")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the answer scrolls sideways"
    page.context.close()
    assert inbox.outcome(arn)["decidedBy"] == alice


def test_quorum_two_of_three_approved_in_the_browser(inbox: Inbox) -> None:
    alice, bob, carol = _names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], {"change": "<script>alert(1)</script>"}, quorum=2)

    _approve(inbox, inbox.mailbox.link(carol), comment="carol agrees").context.close()
    assert inbox.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", "one approval of two settled it"
    _approve(inbox, inbox.mailbox.link(alice)).context.close()

    output = inbox.outcome(arn)
    assert (output["outcome"], output["decidedBy"]) == ("APPROVED", alice)
    assert sorted(output["approvals"]) == sorted([alice, carol]) and output["rejections"] == []
    assert {"decision": "approve", "comment": "carol agrees"} in _task_outputs(inbox.sfn, arn)

    late = inbox.page()
    late.goto(inbox.mailbox.link(bob))
    expect(late.locator("p.state")).to_have_text("Already decided: APPROVED")
    expect(late.locator("form")).to_have_count(0)
    late.context.close()
