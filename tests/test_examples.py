"""The example files in each pattern folder work as their README says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import ended, requests_out, timeless, unique

from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]
INPUTS = [("either-or", "input.json"), ("quorum", "input.json"), ("quorum", "input-3-of-5.json")]


def example(pattern: str, name: str) -> Any:
    return json.loads((ROOT / pattern / "examples" / name).read_text())


def stack_of(request: pytest.FixtureRequest, pattern: str) -> Stack:
    return request.getfixturevalue(pattern.replace("-", "_"))


@pytest.mark.parametrize(("answer", "outcome"), [("approve.json", "APPROVED"), ("reject.json", "REJECTED")])
@pytest.mark.parametrize(("pattern", "input_file"), INPUTS, ids=[f"{p}-{f}" for p, f in INPUTS])
def test_example_input_and_answers_decide_the_approval(request: pytest.FixtureRequest, sfn: Any, pattern: str,
                                                       input_file: str, answer: str, outcome: str) -> None:
    execution_input = example(pattern, input_file)
    approvers = execution_input["approvers"]
    execution_arn = sfn.start_execution(stateMachineArn=stack_of(request, pattern).outputs["StateMachineArn"],
                                        input=json.dumps(execution_input))["executionArn"]
    requests = requests_out(sfn, execution_arn, len(approvers)).requests
    assert sorted(r.approver for r in requests) == sorted(approvers)
    quorum = execution_input.get("quorum", 1)  # either-or: the first answer settles it
    needed = quorum if outcome == "APPROVED" else len(approvers) - quorum + 1
    for request_ in sorted(requests, key=lambda r: r.approver)[:needed]:
        sfn.send_task_success(taskToken=request_.task_token, output=json.dumps(example(pattern, answer)))
        if pattern == "either-or":
            break
    output = ended(sfn, execution_arn).output
    assert output is not None
    assert (output["outcome"], output["request"]) == (outcome, execution_input["request"])
    # Each counted answer is recorded with the example's decision and comment (compared by approver: the answers
    # were sent without waiting for each to be counted).
    answered = example(pattern, answer)
    recorded = sorted(timeless(output)["decisions"], key=lambda d: d["approver"])
    assert recorded == [{"approver": a, "decision": answered["decision"], "comment": answered["comment"]}
                        for a in sorted(output["approvals"] + output["rejections"])]


def _delivered(sqs: Any, queue_url: str, marker: str) -> list[dict[str, Any]]:
    """The event details with approver ``marker`` that reached the queue (waits up to 10 s for the first)."""
    received: list[dict[str, Any]] = []

    def probe() -> list[dict[str, Any]] | None:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            received.append(json.loads(message["Body"]))
        return [e["detail"] for e in received if e["detail"].get("approver") == marker] or None

    return wait_until(probe, timeout=10, what=f"the events marked {marker}")


def _mark(cloud: Cloud, marker: str) -> None:
    """One ApprovalRequested event of each pattern, approver ``marker`` (this test's events among real ones)."""
    for pattern in PATTERNS:
        cloud.client("events").put_events(Entries=[{"Source": "earlyexit", "DetailType": "ApprovalRequested",
                                                    "Detail": json.dumps({"pattern": pattern, "approver": marker})}])


def _queue(cloud: Cloud, name: str) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue_url, queue_arn


@pytest.mark.deploys
def test_example_rule_routes_the_pattern_s_approval_requests_only(cloud: Cloud, pattern: str) -> None:
    name = unique(f"example-rule-{pattern}")
    queue_url, queue_arn = _queue(cloud, name)
    events = cloud.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(example(pattern, "approval-requested-rule.json")))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    _mark(cloud, name)
    assert [d["pattern"] for d in _delivered(cloud.client("sqs"), queue_url, name)] == [pattern]


def _topic_policy(pattern: str, topic_arn: str, rule_arn: str) -> dict[str, Any]:
    """The example topic policy with its placeholders filled in, as the README's sed command does.

    (The embedded engine's EventBridge cannot target SNS: the README's commands are for AWS.)
    """
    text = (ROOT / pattern / "examples" / "sns-topic-policy.json").read_text()
    return json.loads(text.replace("TOPIC_ARN", topic_arn).replace("RULE_ARN", rule_arn))


def test_example_topic_policy_lets_only_the_rule_publish_to_the_topic(pattern: str) -> None:
    topic_arn, rule_arn = "arn:aws:sns:eu-west-1:111122223333:approvals", "arn:aws:events:eu-west-1:111122223333:rule/r"
    (statement,) = _topic_policy(pattern, topic_arn, rule_arn)["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"], statement["Resource"]) == (
        "Allow", {"Service": "events.amazonaws.com"}, "sns:Publish", topic_arn)
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
