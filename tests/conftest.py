"""Shared fixtures: one embedded cloud per test session with both stacks deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from earlyexit.local import Cloud, Stack, embedded_cloud


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    with embedded_cloud() as embedded:
        yield embedded


@pytest.fixture(scope="session")
def sfn(cloud: Cloud):
    return cloud.client("stepfunctions")


@pytest.fixture(scope="session")
def either_or(cloud: Cloud) -> Stack:
    return cloud.deploy("either-or", stack_name="earlyexit-either-or")


@pytest.fixture(scope="session")
def quorum(cloud: Cloud) -> Stack:
    return cloud.deploy("quorum", stack_name="earlyexit-quorum")


class ApprovalInbox:
    """An SQS queue behind an EventBridge rule for ApprovalRequested events, as an organisation routes them."""

    def __init__(self, cloud: Cloud) -> None:
        self._sqs = cloud.client("sqs")
        self._queue_url = self._sqs.create_queue(QueueName="approval-requests")["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events = cloud.client("events")
        events.put_rule(Name="route-approval-requests", EventPattern=json.dumps(
            {"source": ["earlyexit"], "detail-type": ["ApprovalRequested"]}))
        events.put_targets(Rule="route-approval-requests", Targets=[{"Id": "inbox", "Arn": queue_arn}])
        self._received: list[dict[str, Any]] = []

    def requests_for(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every ApprovalRequested event delivered for ``execution_arn`` so far (the whole event)."""
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                self._received.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in self._received if e["detail"].get("executionArn") == execution_arn]


@pytest.fixture(scope="session")
def inbox(cloud: Cloud) -> ApprovalInbox:
    return ApprovalInbox(cloud)
