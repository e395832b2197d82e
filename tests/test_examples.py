"""The example files in each pattern folder work as their README says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import unique

from earlyexit.approvals import wait_for_outcome, wait_for_requests
from earlyexit.local import Cloud, Stack

ROOT = Path(__file__).resolve().parents[1]


def example(pattern: str, name: str) -> Any:
    return json.loads((ROOT / pattern / "examples" / name).read_text())


@pytest.fixture(params=["either-or", "quorum"])
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.mark.parametrize(("answer", "outcome"), [("approve.json", "APPROVED"), ("reject.json", "REJECTED")])
def test_example_input_and_answers_decide_the_approval(sfn: Any, stack: Stack, answer: str, outcome: str) -> None:
    execution_input = example(stack.pattern, "input.json")
    execution_arn = sfn.start_execution(stateMachineArn=stack.outputs["StateMachineArn"],
                                        input=json.dumps(execution_input))["executionArn"]
    requests = wait_for_requests(sfn, execution_arn, len(execution_input["approvers"])).requests
    assert sorted(r.approver for r in requests) == sorted(execution_input["approvers"])
    needed = execution_input.get("quorum", 1) if outcome == "APPROVED" else 4 - execution_input.get("quorum", 3)
    for request in sorted(requests, key=lambda r: r.approver)[:needed]:
        sfn.send_task_success(taskToken=request.task_token, output=json.dumps(example(stack.pattern, answer)))
        if stack.pattern == "either-or":
            break
    output = wait_for_outcome(sfn, execution_arn).output
    assert (output["outcome"], output["request"]) == (outcome, execution_input["request"])


@pytest.mark.deploys
def test_example_rule_routes_the_pattern_s_approval_requests_only(cloud: Cloud, stack: Stack) -> None:
    sqs, events = cloud.client("sqs"), cloud.client("events")
    name = unique(f"example-rule-{stack.pattern}")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(example(stack.pattern, "approval-requested-rule.json")))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    for pattern in ("either-or", "quorum"):  # approver `name` marks this test's events among real ones
        events.put_events(Entries=[{"Source": "earlyexit", "DetailType": "ApprovalRequested",
                                    "Detail": json.dumps({"pattern": pattern, "approver": name})}])
    routed: list[dict[str, Any]] = []
    for _ in range(5):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        routed += [json.loads(m["Body"])["detail"] for m in messages.get("Messages", [])]
        if any(d["approver"] == name for d in routed):
            break
    assert [d["pattern"] for d in routed if d["approver"] == name] == [stack.pattern]
