"""Load through the wiring the local endpoint uses: 200 executions put their requests on an SQS queue (an
EventBridge rule target) while consumers receive from it and answer, all at once.

The queue, the rule, the state machines and the consumers share the engine's backends across its threads
and the consumers' threads; every execution must be decided exactly once and no call may fail.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support import described_end

from earlyexit.approvals import start_approval
from earlyexit.local import Cloud, Stack
from earlyexit.polling import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.deploys, pytest.mark.load]

EXECUTIONS, CONSUMERS = 200, 6


@pytest.fixture
def tag() -> str:
    """This test's mark on its approvers' names."""
    return uuid.uuid4().hex[:6]


@pytest.fixture
def request_queue(cloud: Cloud, tag: str) -> Iterator[str]:
    """A queue that an EventBridge rule fills with this test's ApprovalRequested events (its approvers only)."""
    sqs, events, name = cloud.client("sqs"), cloud.client("events"), f"load-{tag}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({
        "source": ["earlyexit"], "detail-type": ["ApprovalRequested"],
        "detail": {"approver": [{"prefix": f"alice-{tag}-"}, {"prefix": f"bob-{tag}-"}]}}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield queue_url
    events.remove_targets(Rule=name, Ids=["queue"])
    events.delete_rule(Name=name)


def test_consumers_answering_from_the_queue_while_200_executions_ask_decide_each_once_without_an_error(
        cloud: Cloud, either_or: Stack, request_queue: str, tag: str) -> None:
    sfn: Any = cloud.client("stepfunctions")
    sqs: Any = cloud.client("sqs")
    errors: list[str] = []
    answered: Counter[str] = Counter()
    lock, done = threading.Lock(), threading.Event()
    arns: set[str] = set()

    def consume() -> None:
        while not done.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=request_queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", [])
            except Exception as error:  # a 500 from the queue is the failure this test exists to catch
                errors.append(f"receive: {error!r}")
                continue
            for message in messages:
                detail = json.loads(message["Body"])["detail"]
                decision = "approve" if detail["approver"].startswith("alice") else "reject"
                try:
                    sfn.send_task_success(taskToken=detail["taskToken"], output=json.dumps({"decision": decision}))
                except sfn.exceptions.TaskTimedOut:
                    pass  # the other approver's answer decided first: refused, as on AWS
                except Exception as error:
                    errors.append(f"answer: {error!r} {detail}")  # the detail names what was missing
                try:
                    sqs.delete_message(QueueUrl=request_queue, ReceiptHandle=message["ReceiptHandle"])
                except Exception as error:
                    errors.append(f"delete: {error!r}")
                with lock:
                    answered[detail["executionArn"]] += 1

    def start(index: int) -> str:
        return start_approval(sfn, either_or.outputs["StateMachineArn"], [f"alice-{tag}-{index}", f"bob-{tag}-{index}"],
                              request={"load": index}, timeout_seconds=600)

    with ThreadPoolExecutor(CONSUMERS + 4) as pool:
        consumers = [pool.submit(consume) for _ in range(CONSUMERS)]
        arns.update(pool.map(start, range(EXECUTIONS)))

        def all_answered() -> bool:
            with lock:
                return all(answered[arn] >= 1 for arn in arns)

        try:
            wait_until(all_answered, timeout=240, what=f"an answer to each of {EXECUTIONS} executions", max_pause=0.5)
            described = {arn: described_end(sfn, arn, timeout=60) for arn in arns}  # mostly ended already
        finally:
            done.set()
            for future in consumers:
                future.result(timeout=30)
    assert errors == []
    outputs = [json.loads(described[arn]["output"]) for arn in sorted(arns)]
    assert len(outputs) == EXECUTIONS
    consistent = [o for o in outputs if (o["outcome"], o["decidedBy"].split("-")[0]) in
                  {("APPROVED", "alice"), ("REJECTED", "bob")} and len(o["decisions"]) == 1]
    assert len(consistent) == EXECUTIONS
