"""The approval inbox through HTTP, against `earlyexit serve` (its functions run in the endpoint's process).

Every test starts executions with approver names of its own, reads the notifications a person
would get by mail from the endpoint's notification queue, and answers on the pages their links
lead to, as a browser would (form-encoded POSTs).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from endpoint import client
from support import ended, tokens_out

from earlyexit.polling import wait_until

pytestmark = pytest.mark.engine

SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Page:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def state(self) -> str:
        match = re.search(r'<p class="state">([^<]*)</p>', self.body)
        return match.group(1) if match else ""

    @property
    def nonce(self) -> str:
        match = re.search(r'name="nonce" value="([^"]+)"', self.body)
        assert match, f"no form on the page:\n{self.body}"
        return match.group(1)


def fetch(url: str, form: dict[str, str] | None = None) -> Page:
    """GET ``url``, or POST ``form`` to it form-encoded, as a browser does."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if form is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Page(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Page(error.code, dict(error.headers), error.read().decode())


class Mailbox:
    """The notification queue, read once and filed by approver (so that tests do not take each other's mail)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.by_approver: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.lock = threading.Lock()

    def _drain(self) -> None:
        with self.lock:
            for message in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=0).get("Messages", []):
                notification = json.loads(message["Body"])
                self.by_approver[notification["MessageAttributes"]["approver"]["Value"]].append(notification)
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def wait_for(self, approver: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            self._drain()
            mail = self.by_approver[approver]
            return list(mail) if len(mail) >= count else None

        return wait_until(probe, timeout=timeout, what=f"{count} notification(s) for {approver}")

    def received(self, approver: str) -> list[dict[str, Any]]:
        self._drain()
        return list(self.by_approver[approver])


@dataclass
class Inbox:
    url: str
    ready: dict[str, Any]
    mailbox: Mailbox
    pages_seen: list[str]

    def client(self, service: str) -> Any:
        return client(self.url, service)

    def start(self, pattern: str, approvers: list[str], **extra: Any) -> str:
        execution_input = {"approvers": approvers, "request": {"laptop": "14-inch"}, "timeoutSeconds": 120, **extra}
        return str(self.client("stepfunctions").start_execution(
            stateMachineArn=self.ready["stacks"][pattern]["StateMachineArn"],
            input=json.dumps(execution_input))["executionArn"])

    def link(self, approver: str) -> str:
        message = self.mailbox.wait_for(approver)[0]["Message"]
        match = re.search(r"^(https?://\S+/requests/\S+)$", message, re.MULTILINE)
        assert match, f"no link on a line of its own:\n{message}"
        return match.group(1)

    def open(self, url: str, form: dict[str, str] | None = None) -> Page:
        page = fetch(url, form)
        self.pages_seen.append(page.body)
        return page

    def answer(self, approver: str, decision: str, comment: str = "") -> Page:
        url = self.link(approver)
        return self.open(url, {"nonce": self.open(url).nonce, "decision": decision, "comment": comment})

    def outcome(self, execution_arn: str, timeout: float = 20) -> dict[str, Any]:
        execution = ended(self.client("stepfunctions"), execution_arn, timeout=timeout)
        assert execution.status == "SUCCEEDED", (execution.status, execution.error, execution.cause)
        assert execution.output is not None
        return execution.output

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, maxResults=1000)["events"])

    def tokens(self, execution_arn: str, count: int) -> dict[str, str]:
        """approver -> task token, once ``count`` approvers are asked (what the inbox must never show)."""
        return tokens_out(self.client("stepfunctions"), execution_arn, count)


@pytest.fixture(scope="module")
def inbox(served: dict[str, Any]) -> Inbox:
    url = served["endpoint"]
    return Inbox(url, served, Mailbox(client(url, "sqs"), served["notificationQueueUrl"]), [])


def names(*people: str) -> list[str]:
    """Approver names of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    return [f"{person}-{suffix}" for person in people]


def succeeded_outputs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers Step Functions accepted: the outputs of the request tasks that succeeded (SendTaskSuccess)."""
    return [json.loads(e["taskSucceededEventDetails"]["output"]) for e in history
            if e["type"] == "TaskSucceeded" and e["taskSucceededEventDetails"]["resourceType"] == "events"]


# --- notifications ---------------------------------------------------------------------------


def test_each_approver_gets_one_notification_with_the_link_on_a_line_of_its_own(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    inbox.start("either-or", [alice, bob])
    for approver in (alice, bob):
        (notification,) = inbox.mailbox.wait_for(approver)
        assert notification["Subject"] == "Approval requested: either-or"
        assert notification["MessageAttributes"] == {"approver": {"Type": "String", "Value": approver},
                                                     "pattern": {"Type": "String", "Value": "either-or"}}
        base = re.escape(inbox.ready["stacks"]["inbox"]["InboxUrl"])
        assert re.search(rf"^{base}/requests/[A-Za-z0-9_-]{{32,}}$", notification["Message"], re.MULTILINE)


def test_the_notification_names_the_approver_the_request_and_the_deadline(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    inbox.start("quorum", [alice, bob], quorum=1, request={"change": "CHG-42"}, timeoutSeconds=3600)
    message = inbox.mailbox.wait_for(alice)[0]["Message"]
    assert alice in message and '"change": "CHG-42"' in message
    assert re.search(r"Open until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", message)


def test_a_duplicated_event_gets_the_same_id_and_no_second_notification(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    first = inbox.link(alice)
    token = inbox.tokens(arn, 2)[alice]
    detail = {"pattern": "either-or", "executionArn": arn, "approver": alice, "taskToken": token,
              "request": {"laptop": "14-inch"}, "deadline": "2099-01-01T00:00:00Z"}
    inbox.client("events").put_events(Entries=[{"Source": "earlyexit", "DetailType": "ApprovalRequested",
                                                "Detail": json.dumps(detail)}])
    request_id = first.rsplit("/", 1)[1]
    logs = inbox.client("logs")
    group = next(g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
                 if "NotifyFunction" in g["logGroupName"])
    wait_until(lambda: any(f"duplicated event for request {request_id}" in e["message"]
                           for e in logs.filter_log_events(logGroupName=group)["events"]),
               timeout=20, what="the notifier to see the duplicate")
    assert len(inbox.mailbox.received(alice)) == 1


def test_a_reminder_resends_the_approvers_latest_link_once_per_round(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=2)
    link = inbox.link(alice)
    reminder = {"pattern": "quorum", "executionArn": arn, "approver": alice, "request": {"laptop": "14-inch"},
                "deadline": "2099-01-01T00:00:00Z", "reminder": 1}
    entry = {"Source": "earlyexit", "DetailType": "ApprovalReminder", "Detail": json.dumps(reminder)}
    inbox.client("events").put_events(Entries=[entry, entry])  # round 1, duplicated
    inbox.client("events").put_events(Entries=[{**entry, "Detail": json.dumps({**reminder, "reminder": 2})}])
    mail = inbox.mailbox.wait_for(alice, count=3)
    time.sleep(1)  # a second round-1 copy, if the notifier sent one, would be in the queue by now
    mail = inbox.mailbox.received(alice)
    assert sorted(m["Subject"] for m in mail[1:]) == ["Reminder (1): Approval requested: quorum",
                                                     "Reminder (2): Approval requested: quorum"]
    assert all(link in m["Message"].splitlines() for m in mail)


def test_an_approver_who_answered_gets_no_reminder(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=3)
    assert inbox.answer(alice, "approve").status == 200
    inbox.link(bob)
    for approver in (alice, bob):
        reminder = {"pattern": "quorum", "executionArn": arn, "approver": approver, "request": {},
                    "deadline": "2099-01-01T00:00:00Z", "reminder": 1}
        inbox.client("events").put_events(Entries=[{"Source": "earlyexit", "DetailType": "ApprovalReminder",
                                                    "Detail": json.dumps(reminder)}])
    inbox.mailbox.wait_for(bob, count=2)
    assert len(inbox.mailbox.received(alice)) == 1


# --- the page --------------------------------------------------------------------------------


def test_the_page_shows_the_approver_the_request_escaped_the_deadline_and_a_form(inbox: Inbox) -> None:
    (bob,) = names("bob")
    alice = f"<img src=x onerror=alert(1)>{uuid.uuid4().hex[:6]}"
    inbox.start("either-or", [alice, bob], request={"note": "</pre><script>alert(1)</script>"})
    page = inbox.open(inbox.link(alice))
    assert page.status == 200
    assert "<img" not in page.body and "<script>" not in page.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.body
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
    assert re.search(r"<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</time>", page.body)
    assert '<form method="post">' in page.body and 'name="comment"' in page.body
    assert re.findall(r'name="decision" value="(\w+)"', page.body) == ["approve", "reject"]
    assert '<meta name="viewport"' in page.body
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.body), "an external asset"


def test_a_get_changes_nothing(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    url = inbox.link(alice)
    first, second = inbox.open(url), inbox.open(url)
    assert first.status == second.status == 200 and first.body == second.body
    assert succeeded_outputs(inbox.history(arn)) == []
    assert inbox.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"


def test_every_answer_carries_the_security_headers(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    inbox.start("either-or", [alice, bob])
    url = inbox.link(alice)
    nonce = inbox.open(url).nonce
    pages = [inbox.open(url), inbox.open(url, {"nonce": "wrong", "decision": "approve"}),
             inbox.open(url, {"nonce": nonce, "decision": "maybe"}),
             inbox.open(url, {"nonce": nonce, "decision": "approve"}), inbox.open(url, {"nonce": nonce,
                                                                                        "decision": "approve"}),
             inbox.open(url.rsplit("/", 1)[0] + "/unknown")]
    assert [p.status for p in pages] == [200, 403, 400, 200, 409, 404]
    for page in pages:
        assert {name: page.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


# --- answering -------------------------------------------------------------------------------


def test_approving_on_the_page_sends_the_decision_and_comment_once(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    page = inbox.answer(alice, "approve", "fine by me")
    assert page.status == 200
    assert page.state == "Recorded: you approved. Your comment: fine by me"
    output = inbox.outcome(arn)
    assert (output["outcome"], output["decidedBy"]) == ("APPROVED", alice)
    assert succeeded_outputs(inbox.history(arn)) == [{"decision": "approve", "comment": "fine by me"}]


def test_a_link_used_once_answers_409_already_answered(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    inbox.start("quorum", [alice, bob, carol], quorum=3)
    url = inbox.link(alice)
    nonce = inbox.open(url).nonce
    assert inbox.open(url, {"nonce": nonce, "decision": "reject"}).status == 200
    again = inbox.open(url, {"nonce": nonce, "decision": "approve"})
    assert (again.status, again.state) == (409, "Already answered by you: reject")
    assert inbox.open(url).state == "Already answered by you: reject"


def test_a_double_click_sends_one_decision(inbox: Inbox) -> None:
    """Five POSTs of one form at once: one is recorded (200), the others are told it was (409)."""
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=3)
    url = inbox.link(alice)
    form = {"nonce": inbox.open(url).nonce, "decision": "approve"}
    barrier, statuses = threading.Barrier(5), []

    def click() -> None:
        barrier.wait(timeout=10)
        statuses.append(fetch(url, form).status)

    threads = [threading.Thread(target=click) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    assert succeeded_outputs(inbox.history(arn)) == [{"decision": "approve", "comment": None}]


def test_an_answer_after_the_outcome_is_409_naming_the_outcome(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    bob_url = inbox.link(bob)
    bob_nonce = inbox.open(bob_url).nonce
    assert inbox.answer(alice, "approve").status == 200
    assert inbox.outcome(arn)["outcome"] == "APPROVED"
    late = inbox.open(bob_url, {"nonce": bob_nonce, "decision": "reject"})
    assert (late.status, late.state) == (409, "Already decided: APPROVED")
    shown = inbox.open(bob_url)
    assert (shown.status, shown.state) == (200, "Already decided: APPROVED")
    assert "<form" not in shown.body
    assert inbox.outcome(arn)["outcome"] == "APPROVED"


@pytest.mark.parametrize("nonce", [None, "", "a-guess"])
def test_a_wrong_or_missing_nonce_is_403_and_records_nothing(inbox: Inbox, nonce: str | None) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    url = inbox.link(alice)
    form = {"decision": "approve"} | ({"nonce": nonce} if nonce is not None else {})
    assert inbox.open(url, form).status == 403
    assert succeeded_outputs(inbox.history(arn)) == []
    assert '<form method="post">' in inbox.open(url).body


@pytest.mark.parametrize("decision", ["", "APPROVE", "maybe", "approve "])
def test_a_decision_other_than_approve_or_reject_is_400(inbox: Inbox, decision: str) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    url = inbox.link(alice)
    assert inbox.open(url, {"nonce": inbox.open(url).nonce, "decision": decision}).status == 400
    assert succeeded_outputs(inbox.history(arn)) == []


def test_a_comment_over_1000_characters_is_400_and_1000_are_kept(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=3)
    url = inbox.link(alice)
    nonce = inbox.open(url).nonce
    assert inbox.open(url, {"nonce": nonce, "decision": "approve", "comment": "x" * 1001}).status == 400
    assert inbox.open(url, {"nonce": nonce, "decision": "approve", "comment": "y" * 1000}).status == 200
    assert succeeded_outputs(inbox.history(arn)) == [{"decision": "approve", "comment": "y" * 1000}]


def test_an_unknown_id_is_404(inbox: Inbox) -> None:
    base = inbox.ready["stacks"]["inbox"]["InboxUrl"]
    assert inbox.open(f"{base}/requests/{'A' * 32}").status == 404
    assert inbox.open(f"{base}/requests/{'A' * 32}", {"nonce": "x", "decision": "approve"}).status == 404


def test_the_token_index_is_not_reachable_as_a_link(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    inbox.link(alice)
    token = inbox.tokens(arn, 2)[alice]
    key = urllib.parse.quote("token#" + hashlib.sha256(token.encode()).hexdigest(), safe="")
    assert inbox.open(f"{inbox.ready['stacks']['inbox']['InboxUrl']}/requests/{key}").status == 404


def open_form_of_a_short_approval(inbox: Inbox) -> tuple[str, str, str, int]:
    """(execution ARN, alice's link, the form's nonce, timeoutSeconds) of an either-or approval whose deadline
    passes soon: 5 s, or longer if it passed before the form was read (a loaded machine: that run proves nothing)."""
    for seconds in (5, 20, 60):
        alice, bob = names("alice", "bob")
        arn = inbox.start("either-or", [alice, bob], timeoutSeconds=seconds)
        url = inbox.link(alice)
        page = inbox.open(url)
        if 'name="nonce"' in page.body:
            return arn, url, page.nonce, seconds
    pytest.fail("the deadline passed before the form could be read, even at 60 s")


def test_after_the_deadline_the_page_says_expired_and_a_post_is_404(inbox: Inbox) -> None:
    arn, url, nonce, seconds = open_form_of_a_short_approval(inbox)
    assert inbox.outcome(arn, timeout=seconds + 20)["outcome"] == "TIMED_OUT"
    deadline = re.search(r"<time>([^<]+)</time>", inbox.open(url).body).group(1)  # type: ignore[union-attr]
    wait_until(lambda: time.time() >= calendar.timegm(time.strptime(deadline, "%Y-%m-%dT%H:%M:%SZ")),
               timeout=10, what="the deadline")
    assert inbox.open(url).state == "This request has expired: its deadline has passed."
    assert inbox.open(url, {"nonce": nonce, "decision": "approve"}).status == 404


# --- both patterns end to end ----------------------------------------------------------------


def test_either_or_rejected_through_the_inbox(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    assert inbox.answer(bob, "reject", "not this quarter").status == 200
    output = inbox.outcome(arn)
    assert (output["outcome"], output["decidedBy"], output["rejections"]) == ("REJECTED", bob, [bob])


def test_quorum_two_of_three_approved_through_the_inbox(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=2)
    assert inbox.answer(alice, "approve").status == 200
    assert inbox.answer(carol, "approve").status == 200
    output = inbox.outcome(arn)
    assert (output["outcome"], output["decidedBy"], output["approvals"]) == ("APPROVED", carol, [alice, carol])
    assert inbox.open(inbox.link(bob)).state == "Already decided: APPROVED"


def test_pending_links_print_each_pending_approver_with_the_link_of_their_notification(inbox: Inbox) -> None:
    alice, bob, carol = names("alice", "bob", "carol")
    arn = inbox.start("quorum", [alice, bob, carol], quorum=2)
    links = {approver: inbox.link(approver) for approver in (alice, bob, carol)}
    assert inbox.answer(alice, "approve").status == 200
    wait_until(lambda: len(succeeded_outputs(inbox.history(arn))) == 1, timeout=10, what="alice's answer")
    result = subprocess.run([sys.executable, "-m", "earlyexit", "pending", arn, "--links", "--endpoint-url",
                             inbox.url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{bob}\t{links[bob]}", f"{carol}\t{links[carol]}"]


# --- the token never leaves the backend ------------------------------------------------------


def test_no_task_token_is_in_any_page_notification_or_log_line(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    inbox.open(inbox.link(bob))
    inbox.answer(alice, "approve", "ok")
    inbox.outcome(arn)
    inbox.open(inbox.link(bob), {"nonce": "x", "decision": "approve"})
    tokens = set(inbox.tokens(arn, 2).values())
    assert len(tokens) == 2
    notifications = [json.dumps(m) for approver in (alice, bob) for m in inbox.mailbox.received(approver)]
    logs = inbox.client("logs")
    lines = [event["message"] for group in logs.describe_log_groups()["logGroups"]
             for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]]
    assert lines, "the functions logged nothing"
    for token in tokens:
        for where, texts in (("page", inbox.pages_seen), ("notification", notifications), ("log line", lines)):
            assert not [text for text in texts if token in text], f"a task token in a {where}"


def test_pending_links_without_that_inbox_stack_says_how_to_get_one(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob])
    inbox.link(alice)
    result = subprocess.run([sys.executable, "-m", "earlyexit", "pending", arn, "--links", "--inbox-stack", "nope",
                             "--endpoint-url", inbox.url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no inbox stack nope: deploy it (sam deploy --config-env inbox" in result.stderr


def test_the_workflow_s_reminders_become_notifications_with_the_approver_s_own_link(inbox: Inbox) -> None:
    alice, bob = names("alice", "bob")
    arn = inbox.start("either-or", [alice, bob], timeoutSeconds=30, reminderSeconds=3)  # rounds well before it
    links = {approver: inbox.link(approver) for approver in (alice, bob)}
    try:
        for approver in (alice, bob):
            mail = inbox.mailbox.wait_for(approver, count=3, timeout=30)[:3]
            assert [m["Subject"] for m in mail] == ["Approval requested: either-or",
                                                   "Reminder (1): Approval requested: either-or",
                                                   "Reminder (2): Approval requested: either-or"]
            assert all(links[approver] in m["Message"].splitlines() for m in mail)
    finally:
        inbox.client("stepfunctions").stop_execution(executionArn=arn)
