"""Where a command of ``earlyexit`` acts: the endpoint or AWS, the region, the stack's state machine; the
command line's parameter types."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import boto3
import click
from botocore.exceptions import ClientError, EndpointConnectionError

from earlyexit.deploy import is_physical_name
from earlyexit.local import Cloud

__all__ = ["EXECUTION_ARN", "LOCAL_HINT", "SERVED", "DEFAULT_PORT", "EndpointUrl", "ExecutionArn", "JsonNumber",
           "cloud_for", "served_state_machine", "state_machine", "target_options", "unreachable"]

DEFAULT_PORT = 4599
LOCAL_HINT = "or use a local endpoint: --endpoint-url URL (start one with `earlyexit serve`)"
SERVED = f"http://127.0.0.1:{DEFAULT_PORT}"
EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):\d{12}:execution:[^:]+:[^:]+")
STATE_MACHINE = "ApprovalStateMachine"  # the patterns' state machine, by its logical id in template.yaml


def unreachable(error: EndpointConnectionError) -> str:
    """What to do when a connection fails: to AWS, point at the local endpoint; to an endpoint, start it."""
    host = urllib.parse.urlsplit(str(error.kwargs.get("endpoint_url", ""))).hostname or ""
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return (f"{error}: no connection to AWS. To use the local endpoint that `earlyexit serve` runs, pass "
                f"--endpoint-url {SERVED} or export AWS_ENDPOINT_URL={SERVED}")
    return f"{error}: is the endpoint running? Start it with `earlyexit serve` (its ready line names the endpoint)"


class EndpointUrl(click.ParamType):
    """An http(s) URL with a host: ``127.0.0.1:4599`` is refused, saying to add ``http://``."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        url = str(value)
        parts = urllib.parse.urlsplit(url)
        if "://" not in url:
            self.fail(f"{url!r} has no scheme: add http://, as in http://{url}", param, ctx)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(f"{url!r} is not an http:// or https:// URL with a host, as in {SERVED}", param, ctx)
        return url


class ExecutionArn(click.ParamType):
    name = "EXECUTION_ARN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not EXECUTION_ARN.fullmatch(str(value)):
            self.fail(f"{value!r} is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME,"
                      f" as `earlyexit start` prints it)", param, ctx)
        return str(value)


class JsonNumber(click.ParamType):
    """A number as JSON reads it (3, 2.0); anything else is passed on for the pattern's rule to refuse."""

    name = "INTEGER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = json.loads(value)
        except ValueError:
            return value
        return number if isinstance(number, int | float) and not isinstance(number, bool) else value


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--region", default=None,
                           help="AWS region (default: an execution ARN's, else your AWS configuration).")(command)
    return click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", type=EndpointUrl(), default=None,
                        help=f"An AWS-compatible endpoint, as `earlyexit serve`'s ({SERVED}; env: "
                             f"AWS_ENDPOINT_URL).")(command)


def cloud_for(endpoint_url: str | None, region: str | None, execution_arn: str | None = None) -> Cloud:
    """Where the command goes: the endpoint (dummy credentials), or AWS (default credentials).

    The region is the execution ARN's when there is one.
    """
    match = EXECUTION_ARN.fullmatch(execution_arn) if execution_arn else None
    if match:
        if region and region != match["region"]:
            raise click.BadParameter(f"the execution is in {match['region']}, not {region}", param_hint="'--region'")
        region = match["region"]
    if endpoint_url:
        return Cloud(region=region or "us-east-1", endpoint_url=endpoint_url)
    region = region or boto3.Session().region_name
    if not region:
        raise click.ClickException(f"no AWS region: pass --region or configure one (aws configure), {LOCAL_HINT}")
    return Cloud.aws(region)


def state_machine(cloud: Cloud, pattern: str, stack: str) -> tuple[str, int | None, int | None]:
    """The stack's StateMachineArn, for quorum its DefaultQuorum, and its ApprovalTimeoutSeconds (both None unless
    CloudFormation knows the stack)."""
    try:
        cloudformation: Any = cloud.client("cloudformation")
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:  # no such stack: a local deploy names its state machine after the stack
        if error.response["Error"]["Code"] != "ValidationError":
            raise
        return _locally_deployed(cloud, stack), None, None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "StateMachineArn" not in outputs:
        raise click.ClickException(f"stack {stack} has no StateMachineArn output: is it an earlyexit {pattern} stack?")
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in described.get("Parameters", [])}
    default_quorum = parameters.get("DefaultQuorum") if pattern == "quorum" else None
    default_timeout = parameters.get("ApprovalTimeoutSeconds")
    return (outputs["StateMachineArn"], int(default_quorum) if default_quorum else None,
            int(default_timeout) if default_timeout else None)


def _locally_deployed(cloud: Cloud, stack: str) -> str:
    """The state machine the local deploy (``earlyexit serve``, ``Cloud.deploy``) made for ``stack``."""
    for page in cloud.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if is_physical_name(machine["name"], stack, STATE_MACHINE):
                return str(machine["stateMachineArn"])
    raise click.ClickException(f"no stack {stack}: deploy it (sam deploy --config-env PATTERN), name it with "
                               f"--stack, {LOCAL_HINT}")


def served_state_machine(cloud: Cloud, pattern: str, stack: str, endpoint_url: str | None,
                  region: str | None) -> tuple[str, int | None, int | None]:
    """:func:`state_machine`; on an endpoint, a stack missing from a region other than `earlyexit serve`'s says so."""
    from earlyexit.tools.serve import REGION

    try:
        return state_machine(cloud, pattern, stack)
    except click.ClickException as error:
        if endpoint_url and region and region != REGION:
            error.message = (f"no stack {stack} in {region}: `earlyexit serve` deploys its stacks in {REGION} only; "
                             f"leave out --region {region} (or pass --region {REGION})")
        raise
