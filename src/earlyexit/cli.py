"""The ``earlyexit`` command line: demo, serve, start, pending, approve, reject, status."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from earlyexit.approvals import ApprovalError, decide, start_approval
from earlyexit.history import Execution, read_execution
from earlyexit.local import PATTERNS, Cloud, DeployError
from earlyexit.timeline import render_execution

__all__ = ["main", "run"]


def _cloud(endpoint_url: str | None, region: str | None) -> Cloud:
    """Where the commands go: an endpoint (`--endpoint-url`) or AWS (default credentials)."""
    try:
        return Cloud(region=region or "us-east-1", endpoint_url=endpoint_url) if endpoint_url else Cloud.aws(region)
    except DeployError as error:
        raise click.ClickException(str(error)) from None


def _state_machine_arn(cloud: Cloud, pattern: str, stack: str) -> str:
    """The stack's StateMachineArn output, or else the state machine a local deploy named after the stack."""
    try:
        outputs = cloud.stack(stack, pattern).outputs
        if "StateMachineArn" not in outputs:
            raise click.ClickException(f"stack {stack} has no StateMachineArn output")
        return outputs["StateMachineArn"]
    except ClientError as error:  # no such stack: a local deploy names its state machine after the stack
        if error.response["Error"]["Code"] != "ValidationError":
            raise click.ClickException(f"stack {stack}: {error.response['Error']['Message']}") from None
    local_name = re.compile(rf"{re.escape(stack)}-ApprovalStateMachine-[A-Z0-9]{{12}}")
    paginator = cloud.client("stepfunctions").get_paginator("list_state_machines")
    for page in paginator.paginate():
        for machine in page["stateMachines"]:
            if local_name.fullmatch(machine["name"]):
                return str(machine["stateMachineArn"])
    raise click.ClickException(f"no stack {stack} (deploy it, or name it with --stack)")


def _target_options(command: Any) -> Any:
    command = click.option("--region", default=None, help="AWS region (default: your AWS configuration).")(command)
    command = click.option("--endpoint-url", default=None, metavar="URL",
                           help="An AWS-compatible endpoint, such as `earlyexit serve`'s.")(command)
    return command


def _read(cloud: Cloud, execution_arn: str) -> Execution:
    try:
        return read_execution(cloud.client("stepfunctions"), execution_arn)
    except ClientError as error:
        raise click.ClickException(f"{execution_arn}: {error.response['Error']['Message'] or error}") from None


def _execution_json(execution: Execution) -> dict[str, Any]:
    return {
        "executionArn": execution.arn, "status": execution.status, "output": execution.output,
        "error": execution.error, "cause": execution.cause, "stateTransitions": execution.transitions,
        "pending": [r.approver for r in execution.pending],
        "decisions": [{"approver": d.approver, "decision": d.decision, "comment": d.comment,
                       "at": d.at.isoformat()} for d in execution.decisions],
        "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "text": e.text} for e in execution.timeline],
    }


@click.group()
@click.version_option(package_name="earlyexit")
def main() -> None:
    """Parallel early-exit approval patterns for AWS Step Functions (either-or, quorum)."""


@main.command()
@click.argument("pattern", type=click.Choice([*PATTERNS, "all"]), default="all")
def demo(pattern: str) -> None:
    """Deploy into the embedded engine, run scenarios and show each execution's timeline."""
    from earlyexit.demo import run_demo

    run_demo(PATTERNS if pattern == "all" else (pattern,))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
def serve(host: str, port: int) -> None:
    """An AWS-compatible endpoint with both stacks deployed; prints one JSON line when ready."""
    from earlyexit.server import serve as run_server

    run_server(host=host, port=port)


@main.command()
@click.argument("pattern", type=click.Choice(PATTERNS))
@click.option("--approver", "approvers", multiple=True, required=True, help="An approver (repeat: 2 or 3).")
@click.option("--request", "request_json", default=None, metavar="JSON", help="The request, a JSON object.")
@click.option("--quorum", type=int, default=None, help="Approvals needed (quorum pattern).")
@click.option("--timeout-seconds", type=int, default=None, help="Deadline (default: the stack's).")
@click.option("--name", default=None, help="Execution name (default: a UUID).")
@click.option("--stack", default=None, help="Stack name (default: earlyexit-PATTERN).")
@_target_options
def start(pattern: str, approvers: tuple[str, ...], request_json: str | None, quorum: int | None,
          timeout_seconds: int | None, name: str | None, stack: str | None, endpoint_url: str | None,
          region: str | None) -> None:
    """Start an approval; prints the execution ARN."""
    try:
        request = json.loads(request_json) if request_json is not None else None
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--request") from None
    cloud = _cloud(endpoint_url, region)
    arn = _state_machine_arn(cloud, pattern, stack or f"earlyexit-{pattern}")
    try:
        click.echo(start_approval(cloud.client("stepfunctions"), arn, list(approvers), request, quorum,
                                  timeout_seconds, name))
    except ClientError as error:
        raise click.ClickException(error.response["Error"]["Message"]) from None


@main.command()
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_target_options
def pending(execution: str, as_json: bool, endpoint_url: str | None, region: str | None) -> None:
    """Approvers who still have to answer."""
    result = _read(_cloud(endpoint_url, region), execution)
    waiting = [r.approver for r in result.pending]
    if as_json:
        click.echo(json.dumps({"executionArn": execution, "status": result.status, "pending": waiting}))
    elif result.status != "RUNNING":
        click.echo(f"nobody: the execution is {result.status}")
    else:
        click.echo("\n".join(waiting) if waiting else "nobody yet: the requests are being sent")


def _decide(decision: str, execution: str, approver: str, comment: str | None, as_json: bool,
            endpoint_url: str | None, region: str | None) -> None:
    cloud = _cloud(endpoint_url, region)
    try:
        decide(cloud.client("stepfunctions"), execution, approver, decision, comment)
    except ApprovalError as error:
        if as_json:
            click.echo(json.dumps({"executionArn": execution, "approver": approver, "error": str(error)}))
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"executionArn": execution, "approver": approver, "decision": decision}))
    else:
        click.echo(f"{approver}: {decision} sent")


def _decision_command(decision: str, verb: str) -> Any:
    @main.command(name=decision, help=f"{verb} EXECUTION as one of its approvers.")
    @click.argument("execution")
    @click.option("--as", "approver", required=True, help="The approver answering.")
    @click.option("--comment", default=None, help="A comment, kept in the execution history.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @_target_options
    def command(execution: str, approver: str, comment: str | None, as_json: bool, endpoint_url: str | None,
                region: str | None) -> None:
        _decide(decision, execution, approver, comment, as_json, endpoint_url, region)

    return command


approve = _decision_command("approve", "Approve")
reject = _decision_command("reject", "Reject")


@main.command()
@click.argument("execution")
@click.option("--watch", is_flag=True, help="Follow until the outcome.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_target_options
def status(execution: str, watch: bool, as_json: bool, endpoint_url: str | None, region: str | None) -> None:
    """Outcome and timeline of EXECUTION."""
    cloud = _cloud(endpoint_url, region)
    result = _read(cloud, execution)
    while watch and result.status == "RUNNING":
        time.sleep(0.5)
        result = _read(cloud, execution)
    if as_json:
        click.echo(json.dumps(_execution_json(result)))
    else:
        render_execution(result)


def run() -> None:
    """Console entry point: AWS errors end the command with a message, not a traceback."""
    try:
        main()
    except (BotoCoreError, ClientError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
