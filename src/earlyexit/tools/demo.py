"""`earlyexit demo`: both patterns on the embedded engine, a few scenarios each (comments and reminders among
them), with timelines; then the approval inbox: a notification, the page its link opens (as text), and an answer
given there."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from html.parser import HTMLParser
from typing import Any, ClassVar

from rich.rule import Rule

from earlyexit.approvals import decide, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution
from earlyexit.inbox import deploy_inbox
from earlyexit.local import EmbeddedCloud, embedded_cloud
from earlyexit.patterns import stack_folder
from earlyexit.polling import wait_until
from earlyexit.tools.timeline import console, render_execution

__all__ = ["SCENARIOS", "Scenario", "run_demo"]

_DEADLINE = 3600  # seconds: the answers of a decided scenario settle it long before, however loaded the machine
_REMINDED_DEADLINE = 3  # seconds: the scenarios that reach their deadline (and send reminders) wait this long


@dataclass(frozen=True)
class Scenario:
    title: str
    approvers: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]  # (approver, "approve" | "reject"), in order
    quorum: int | None = None
    comments: tuple[tuple[str, str], ...] = ()  # (approver, the comment sent with their answer)
    timeout_seconds: int = _DEADLINE
    reminder_seconds: int | None = None  # None: no reminders


SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "either-or": (
        Scenario("alice approves first", ("alice", "bob"), (("alice", "approve"),)),
        Scenario("bob rejects first, with a comment", ("alice", "bob"), (("bob", "reject"),),
                 comments=(("bob", "over budget until May"),)),
        Scenario(f"nobody answers within {_REMINDED_DEADLINE} s, reminded every second", ("alice", "bob"), (),
                 timeout_seconds=_REMINDED_DEADLINE, reminder_seconds=1),
    ),
    "quorum": (
        Scenario("2 of 3: alice and carol approve", ("alice", "bob", "carol"),
                 (("alice", "approve"), ("carol", "approve")), quorum=2),
        Scenario("2 of 3: bob and carol reject, the quorum is unreachable", ("alice", "bob", "carol"),
                 (("bob", "reject"), ("carol", "reject")), quorum=2),
        Scenario(f"3 of 3: only alice approves within {_REMINDED_DEADLINE} s, the others are reminded",
                 ("alice", "bob", "carol"), (("alice", "approve"),), quorum=3, timeout_seconds=_REMINDED_DEADLINE,
                 reminder_seconds=2),
        Scenario("3 of 5: bob rejects, then alice, dave and erin approve", ("alice", "bob", "carol", "dave", "erin"),
                 (("bob", "reject"), ("alice", "approve"), ("dave", "approve"), ("erin", "approve")), quorum=3),
    ),
}


def _play(sfn: Any, state_machine_arn: str, scenario: Scenario) -> Execution:
    arn = start_approval(sfn, state_machine_arn, scenario.approvers, request={"item": "laptop", "price": 1499},
                         quorum=scenario.quorum, timeout_seconds=scenario.timeout_seconds,
                         reminder_seconds=scenario.reminder_seconds)
    wait_for_requests(sfn, arn, len(scenario.approvers))
    comments = dict(scenario.comments)
    for approver, decision in scenario.answers:
        time.sleep(0.05)  # decisions arrive one after the other, as people answer
        decide(sfn, arn, approver, decision, comment=comments.get(approver))
    return wait_for_outcome(sfn, arn, timeout=scenario.timeout_seconds + 30)


class _PageText(HTMLParser):
    """A page as a person reads it: its text, a line per block, the form's buttons in brackets."""

    _BLOCKS: ClassVar[set[str]] = {"h1", "h2", "p", "dt", "pre", "label", "form", "div"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip = tag in ("style", "title")
        if tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "button":
            self.parts.append(" [")
        if tag == "textarea":
            self.parts.append(" [comment box]")

    def handle_endtag(self, tag: str) -> None:
        self._skip = False
        if tag == "button":
            self.parts.append("]")
        if tag == "dt":
            self.parts.append(": ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return re.sub(r"\n\s*\n+", "\n", "".join(parser.parts)).strip()


def _inbox_demo(cloud: EmbeddedCloud, pattern: str, state_machine_arn: str) -> None:
    """One approval answered the way a person does: the notification, the page, the answer (alice's approval
    settles it: on quorum, a quorum of 1)."""
    out = console()
    outputs, queue_url = deploy_inbox(cloud)
    out.print(Rule(f"[bold]inbox[/bold]: {outputs['InboxUrl']}"))
    sfn, sqs = cloud.client("stepfunctions"), cloud.client("sqs")
    arn = start_approval(sfn, state_machine_arn, ("alice", "bob"), request={"item": "laptop", "price": 1499},
                         quorum=1 if pattern == "quorum" else None, timeout_seconds=3600)

    def alice_s_mail() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            notification = json.loads(message["Body"])
            if notification["MessageAttributes"]["approver"]["Value"] == "alice":
                return dict(notification)
        return None

    mail = wait_until(alice_s_mail, timeout=30, what="alice's notification")
    out.print(f"[bold]Mail to alice[/bold] - {mail['Subject']}")
    out.print(mail["Message"] + "\n", markup=False, highlight=False, soft_wrap=True)
    link = next(line for line in mail["Message"].splitlines() if "/requests/" in line)
    with urllib.request.urlopen(link, timeout=30) as response:
        page = response.read().decode()
    out.print("[bold]The page alice opens[/bold] (as text)")
    out.print(_PageText.of(page) + "\n", markup=False, highlight=False)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    assert nonce is not None
    form = urllib.parse.urlencode({"nonce": nonce.group(1), "decision": "approve", "comment": "fine by me"})
    with urllib.request.urlopen(urllib.request.Request(link, data=form.encode(), method="POST"), timeout=30) as r:
        out.print(f"[bold]After alice clicks Approve[/bold] (HTTP {r.status})")
        out.print(_PageText.of(r.read().decode()) + "\n", markup=False, highlight=False)
    render_execution(wait_for_outcome(sfn, arn, timeout=30), title="alice approves in the inbox")


def run_demo(patterns: Iterable[str]) -> None:
    """Deploy ``patterns`` into the embedded engine, play their scenarios concurrently, show each; then answer
    one approval of the first pattern through the inbox."""
    out = console()
    with embedded_cloud() as cloud:
        sfn = cloud.client("stepfunctions")
        first: tuple[str, str] | None = None
        for pattern in patterns:
            stack = cloud.deploy(pattern, stack_name=stack_folder(pattern).default_stack_name)
            out.print(Rule(f"[bold]{pattern}[/bold]: {stack.outputs['StateMachineName']}"))
            scenarios = SCENARIOS[pattern]
            with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
                executions = list(pool.map(partial(_play, sfn, stack.outputs["StateMachineArn"]), scenarios))
            for scenario, execution in zip(scenarios, executions, strict=True):
                render_execution(execution, title=scenario.title)
            first = first or (pattern, stack.outputs["StateMachineArn"])
        if first:
            _inbox_demo(cloud, *first)
