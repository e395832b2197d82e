"""Shared fixtures: where the scenarios run, and the two stacks there.

By default everything runs on the embedded engine. The execution scenarios also run,
unchanged, against any AWS-compatible endpoint (``pytest --endpoint-url URL``: the stacks
are deployed into it with the local deploy) or against stacks deployed on AWS with
``sam deploy`` (``pytest --aws --stack-prefix earlyexit-``). Tests marked ``engine``
depend on the embedded engine's internals and run only there; tests marked ``deploys``
create stacks or resources of their own and do not run against AWS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from endpoint import serving
from support import waits_at
from templates import state_machine_role, translated

from earlyexit.engine import FaultInjector
from earlyexit.local import Cloud, Stack, embedded_cloud
from earlyexit.patterns import PATTERNS, stack_folder


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("earlyexit", "where the execution scenarios run")
    group.addoption("--endpoint-url", metavar="URL", default=None,
                    help="an AWS-compatible endpoint (earlyexit serve, LocalStack); the stacks are deployed into it")
    group.addoption("--aws", action="store_true", default=False,
                    help="stacks deployed on AWS with sam deploy (default credentials and region)")
    group.addoption("--stack-prefix", default="earlyexit-",
                    help="with --aws: the stacks are PREFIXeither-or and PREFIXquorum (default: earlyexit-)")


def _target(config: pytest.Config) -> str:
    if config.getoption("--aws"):
        return "aws"
    return "endpoint" if config.getoption("--endpoint-url") else "embedded"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The long tests start first, so that the workers share them and run the short ones after.
    items.sort(key=lambda item: item.get_closest_marker("load") is None)
    target = _target(config)
    for item in items:
        if target != "embedded" and "engine" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="depends on the embedded engine's internals"))
        elif target == "aws" and "deploys" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="deploys stacks or resources of its own"))


@pytest.fixture(scope="session")
def cloud(request: pytest.FixtureRequest) -> Iterator[Cloud]:
    target = _target(request.config)
    if target == "aws":
        yield Cloud.aws()
    elif target == "endpoint":
        yield Cloud(endpoint_url=request.config.getoption("--endpoint-url"))
    else:
        with embedded_cloud() as embedded:
            yield embedded


@pytest.fixture(scope="session")
def served() -> Iterator[dict[str, Any]]:
    """One `earlyexit serve` per test process, shared by the suites that drive it over HTTP: its ready line."""
    with serving() as ready:
        yield ready


@pytest.fixture
def scaled_waits() -> Iterator[None]:
    """Wait states and Retry intervals (1, 2, 4, 8, 10 s) at 1/100 of their length (embedded engine only)."""
    with waits_at(0.01):
        yield


@pytest.fixture
def faults(cloud: Cloud) -> Iterator[FaultInjector]:
    """The embedded engine's fault injector, emptied after the test."""
    injector: FaultInjector = cloud.faults  # type: ignore[attr-defined]
    yield injector
    injector.clear()


@pytest.fixture(scope="session")
def sfn(cloud: Cloud) -> Any:
    return cloud.client("stepfunctions")


def _stack(request: pytest.FixtureRequest, cloud: Cloud, pattern: str) -> Stack:
    target = _target(request.config)
    if target == "aws":
        return cloud.stack(request.config.getoption("--stack-prefix") + pattern, pattern)
    if target == "endpoint":  # beside whatever the endpoint already runs (earlyexit serve's own stacks)
        return cloud.deploy(pattern, stack_name=f"test-{uuid.uuid4().hex[:8]}-{pattern}")
    return cloud.deploy(pattern, stack_name=stack_folder(pattern).default_stack_name)


@pytest.fixture(scope="session")
def either_or(request: pytest.FixtureRequest, cloud: Cloud) -> Stack:
    return _stack(request, cloud, "either-or")


@pytest.fixture(scope="session")
def quorum(request: pytest.FixtureRequest, cloud: Cloud) -> Stack:
    return _stack(request, cloud, "quorum")


@pytest.fixture(params=PATTERNS)
def pattern(request: pytest.FixtureRequest) -> str:
    """Each pattern in turn (the static suites)."""
    return str(request.param)


@pytest.fixture
def cfn(pattern: str) -> dict[str, Any]:
    """The pattern's template translated to plain CloudFormation."""
    return translated(pattern)


@pytest.fixture
def role(cfn: dict[str, Any]) -> dict[str, Any]:
    """The translated template's state machine role."""
    return state_machine_role(cfn)


@pytest.fixture(scope="session")
def role_arn(cloud: Cloud) -> str:
    """A role for the engine tests' own small state machines."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    return cloud.client("iam").create_role(RoleName=f"engine-test-{uuid.uuid4().hex[:8]}",
                                           AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@pytest.fixture
def machine(sfn: Any, role_arn: str) -> Callable[..., str]:
    """Create a JSONata state machine of ``states`` starting at ``start_at``; returns its ARN."""
    def create(states: dict[str, Any], start_at: str, **definition: Any) -> str:
        body = {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states, **definition}
        return sfn.create_state_machine(name=f"engine-test-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                                        definition=json.dumps(body))["stateMachineArn"]
    return create


class ApprovalInbox:
    """An SQS queue behind an EventBridge rule for ApprovalRequested events, as an organisation routes them."""

    def __init__(self, cloud: Cloud, *, execution_arn: str | None = None) -> None:
        """Every ApprovalRequested event from now on, or (``execution_arn``) only that execution's, on a queue
        of its own; :meth:`close` removes the rule and the queue."""
        name = f"approval-requests-{uuid.uuid4().hex[:12]}"
        self._rule = f"route-{name}"
        self._events = cloud.client("events")
        self._sqs = cloud.client("sqs")
        self._queue_url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        pattern: dict[str, Any] = {"source": ["earlyexit"], "detail-type": ["ApprovalRequested"]}
        if execution_arn is not None:
            pattern["detail"] = {"executionArn": [execution_arn]}
        self._events.put_rule(Name=self._rule, EventPattern=json.dumps(pattern))
        self._events.put_targets(Rule=self._rule, Targets=[{"Id": "inbox", "Arn": queue_arn}])
        self._received: list[dict[str, Any]] = []

    def close(self) -> None:
        self._events.remove_targets(Rule=self._rule, Ids=["inbox"])
        self._events.delete_rule(Name=self._rule)
        self._sqs.delete_queue(QueueUrl=self._queue_url)

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


@pytest.fixture
def inbox(cloud: Cloud) -> Iterator[ApprovalInbox]:
    """A fresh inbox for one test: it holds only the events sent while the test runs."""
    routed = ApprovalInbox(cloud)
    yield routed
    routed.close()
