"""Clouds to deploy into and drive: AWS itself, any AWS-compatible endpoint, or the embedded engine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from earlyexit.deploy import Deployment, Stack
from earlyexit.errors import DeployError

if TYPE_CHECKING:
    from earlyexit.engine import FaultInjector
    from earlyexit.gateway import LocalHttpServer

__all__ = ["DEFAULT_MAX_FINISHED_EXECUTIONS", "Cloud", "EmbeddedCloud", "embedded_cloud"]

# How many finished executions an embedded cloud keeps per account and region by default (the oldest go first).
DEFAULT_MAX_FINISHED_EXECUTIONS = 10_000


class Cloud:
    """boto3 clients bound to one endpoint and region, and a local ``deploy``."""

    def __init__(self, *, region: str = "us-east-1", endpoint_url: str | None = None,
                 session: boto3.Session | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._session = session or boto3.Session(
            region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        self._clients: dict[str, BaseClient] = {}
        self._clients_lock = threading.Lock()  # botocore sessions are not thread-safe for client creation
        self.stacks: dict[str, Stack] = {}

    @classmethod
    def aws(cls, region: str | None = None) -> Cloud:
        """AWS itself, with the default credentials (and region, unless given)."""
        session = boto3.Session(region_name=region)
        if not session.region_name:
            raise DeployError("no AWS region: pass --region or configure one")
        return cls(region=session.region_name, session=session)

    def stack(self, name: str, pattern: str) -> Stack:
        """A stack deployed with CloudFormation (`sam deploy`), read from its outputs."""
        described = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return Stack(name, pattern, outputs)

    @property
    def runs_functions(self) -> bool:
        """Whether Lambda functions deployed here run (in this process, on the engine serving the endpoint)."""
        from earlyexit import engine
        from earlyexit.engine.runtime.functions import function_endpoint

        return engine.installed() and self.endpoint_url is not None and self.endpoint_url == function_endpoint()

    def http_api_base(self) -> str:
        """Where this cloud's HTTP APIs answer (under the endpoint's own address)."""
        if self.endpoint_url is None:
            raise DeployError("HTTP APIs are served locally only by the embedded engine or `earlyexit serve`")
        return self.endpoint_url

    def queue_fed_by(self, name: str, *, service: str, source_arn: str) -> tuple[str, str]:
        """An SQS queue ``name`` that ``service`` (``events``, ``sns``) may send to from ``source_arn`` only, as AWS
        needs it; returns its URL and ARN."""
        sqs: Any = self.client("sqs")
        queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        queue_arn = str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"])
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"},
                           "Action": "sqs:SendMessage", "Resource": queue_arn,
                           "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]})})
        return queue_url, queue_arn

    def client(self, service: str) -> BaseClient:
        """A boto3 client for ``service`` bound to this cloud (cached; safe to call from many threads)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url,
                    config=Config(retries={"mode": "standard"}, max_pool_connections=64))
            return self._clients[service]

    def deploy(self, pattern: str, *, parameters: Mapping[str, str | int] | None = None,
               stack_name: str | None = None) -> Stack:
        """Translate and provision ``pattern``'s template.yaml; returns the stack and its outputs."""
        name = stack_name or pattern
        if name in self.stacks:
            raise DeployError(f"stack {name!r} already exists in this cloud; pass another stack_name")
        stack = Deployment(self, pattern, name, dict(parameters or {})).run()
        self.stacks[name] = stack
        return stack


class EmbeddedCloud(Cloud):
    """A :class:`Cloud` on the embedded engine, with its fault injector."""

    _http_server: LocalHttpServer | None = None

    @property
    def runs_functions(self) -> bool:
        return True

    def http_api_base(self) -> str:
        """A loopback server of this cloud's own, started with its first HTTP API."""
        if self._http_server is None:
            from earlyexit.gateway import LocalHttpServer

            self._http_server = LocalHttpServer()
        return self._http_server.url

    def close(self) -> None:
        """Stop the HTTP APIs' server, if one was started."""
        if self._http_server is not None:
            self._http_server.close()
            self._http_server = None

    @property
    def faults(self) -> FaultInjector:
        """The engine's fault rules and fired-faults log (docs/fault-injection.md)."""
        from earlyexit import engine

        return engine.FAULTS


@contextmanager
def embedded_cloud(*, region: str = "us-east-1", wait_time_scale: float = 1.0,
                   max_finished_executions: int | None = DEFAULT_MAX_FINISHED_EXECUTIONS) -> Iterator[EmbeddedCloud]:
    """An in-process AWS (moto with the engine fixes): no account, no Docker, no network.

    ``wait_time_scale`` scales Wait states and Retry intervals (1.0 is AWS's timing);
    ``max_finished_executions`` bounds the finished executions the engine keeps per account and
    region, the oldest dropped first (None: all). Both are process-wide while the block runs and
    restored when it exits. The engine is installed on entry and, unless another holder (a
    nested block, ``earlyexit serve``) still uses it, uninstalled on exit: running executions are
    aborted and moto is restored.
    """
    from moto import mock_aws

    from earlyexit import engine

    engine.install()
    previous = engine.wait_time_scale(), engine.max_finished_executions()
    try:
        engine.set_wait_time_scale(wait_time_scale)
        engine.set_max_finished_executions(max_finished_executions)
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                              "iam": {"load_aws_managed_policies": True}}):
            cloud = EmbeddedCloud(region=region)
            try:
                yield cloud
            finally:
                cloud.close()
    finally:
        engine.set_wait_time_scale(previous[0])
        engine.set_max_finished_executions(previous[1])
        engine.uninstall()
