"""The ``earlyexit`` command line: demo, serve, start, pending, approve, reject, status.

Exit codes: 0 done; 1 an error (from AWS or the endpoint, an unknown execution, a decision
that cannot be sent, ``pending`` of an execution that has ended, ``status`` of an execution
whose Step Functions status is FAILED, ABORTED or TIMED_OUT); 2 a usage error, including an
execution input that breaks a rule of the pattern; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import math
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from earlyexit.approvals import (
    approval_input,
    decide,
    ended,
    read_approval,
    start_approval,
    wait_for_outcome,
)
from earlyexit.errors import EarlyExitError
from earlyexit.history import Execution
from earlyexit.inbox import DEFAULT_INBOX_STACK, find_inbox
from earlyexit.local import DEFAULT_MAX_FINISHED_EXECUTIONS, PATTERNS
from earlyexit.patterns import stack_folder
from earlyexit.rules import check_input
from earlyexit.tools.targets import (
    DEFAULT_PORT,
    LOCAL_HINT,
    ExecutionArn,
    JsonNumber,
    cloud_for,
    served_state_machine,
    target_options,
    unreachable,
)

__all__ = ["main", "run"]

_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
_NO_LINK_YET = "(no link yet: the inbox has not stored this request)"
_ENDED_BADLY = ("FAILED", "ABORTED", "TIMED_OUT")
_OPTION_OF_FIELD = {"approvers": "--approver", "quorum": "--quorum", "timeoutSeconds": "--timeout-seconds",
                    "reminderSeconds": "--reminder-seconds", "request": "--request"}


class _Group(click.Group):
    """Every error of AWS, the endpoint or the package ends the command with one line (exit 1), not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise click.ClickException(f"no AWS credentials ({error}): configure them (aws configure), "
                                       f"{LOCAL_HINT}") from None
        except NoRegionError:
            raise click.ClickException(f"no AWS region: pass --region or configure one, {LOCAL_HINT}") from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(_INTERRUPTED) from None
        except EndpointConnectionError as error:
            raise click.ClickException(unreachable(error)) from None
        except ClientError as error:
            raise click.ClickException(f"{error.response['Error']['Code']}: "
                                       f"{error.response['Error'].get('Message') or error}") from None
        except (BotoCoreError, EarlyExitError) as error:
            raise click.ClickException(str(error)) from None


def _check(pattern: str, execution_input: dict[str, Any], default_quorum: int | None = None,
           default_timeout_seconds: int | None = None) -> None:
    """Refuse (exit 2) an input that breaks a rule of the pattern, naming the option, the rule and the value."""
    violation = check_input(pattern, execution_input, default_quorum=default_quorum,
                            default_timeout_seconds=default_timeout_seconds)
    if violation is not None:
        raise click.BadParameter(str(violation), param_hint=f"'{_OPTION_OF_FIELD[violation.field]}'")


def _execution_json(execution: Execution) -> dict[str, Any]:
    return {
        "executionArn": execution.arn, "status": execution.status, "output": execution.output,
        "error": execution.error, "cause": execution.cause, "stateTransitions": execution.transitions,
        "pending": [r.approver for r in execution.pending],
        "decisions": [{"approver": d.approver, "decision": d.decision, "comment": d.comment,
                       "at": d.at.isoformat()} for d in execution.decisions],
        "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "text": e.text} for e in execution.timeline],
    }


@click.group(cls=_Group)
@click.version_option(package_name="earlyexit")
def main() -> None:
    """Parallel early-exit approval patterns for AWS Step Functions (either-or, quorum).

    Every command but demo and serve works on AWS (default credentials) or, with
    --endpoint-url or AWS_ENDPOINT_URL, on any AWS-compatible endpoint such as `earlyexit serve`.
    """


@main.command(short_help="Play approvals on the embedded engine, with their timelines.")
@click.argument("pattern", type=click.Choice([*PATTERNS, "all"]), default="all")
def demo(pattern: str) -> None:
    """Deploy into the embedded engine, run scenarios and show each execution's timeline.

    PATTERN is either-or, quorum or all (the default): a bare `earlyexit demo` plays both patterns.
    """
    from earlyexit.tools.demo import run_demo

    run_demo(PATTERNS if pattern == "all" else (pattern,))


@main.command(short_help="Run a local AWS endpoint with both stacks and the inbox.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: a loopback or wildcard address (0.0.0.0, ::).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on; 0 for any free port (the ready line names the endpoint).")
@click.option("--max-executions", type=click.IntRange(min=1), default=DEFAULT_MAX_FINISHED_EXECUTIONS,
              show_default=True, metavar="N", help="Finished executions kept; the oldest are dropped first.")
def serve(host: str, port: int, max_executions: int) -> None:
    """An AWS-compatible endpoint with both stacks and the inbox deployed, and SQS queues of the approval
    requests and of the inbox's notifications, in region us-east-1.

    Prints one JSON line on stdout when ready: {"endpoint": URL, "stacks": {"either-or", "quorum", "inbox"},
    "approvalQueueUrl": URL, "notificationQueueUrl": URL}, and the endpoint, its queues and the inbox, one a
    line, on stderr.
    Everything is kept in memory: stopping the endpoint (Ctrl-C) loses every execution, and the next
    start deploys the stacks anew, with new state machine names.
    """
    from earlyexit.tools.serve import serve as run_server

    run_server(host=host, port=port, max_executions=max_executions)


@main.command(short_help="Start an approval; prints its execution ARN.")
@click.argument("pattern", type=click.Choice(PATTERNS))
@click.option("--approver", "approvers", multiple=True,
              help="An approver; repeat for each (either-or: exactly 2, quorum: 2 to 40).")
@click.option("--request", "request_json", default=None, metavar="JSON",
              help="What is to be approved, a JSON object (default: {}).")
@click.option("--quorum", type=JsonNumber(), default=None,
              help="Approvals needed, 1 to the number of approvers (quorum only; default: the stack's DefaultQuorum).")
@click.option("--timeout-seconds", type=JsonNumber(), default=None,
              help="Deadline, 1 to 31449600 (default: the stack's ApprovalTimeoutSeconds).")
@click.option("--reminder-seconds", type=JsonNumber(), default=None,
              help="Seconds between reminders to those who have not answered, 1 to the deadline - 1 (default: "
                   "no reminders).")
@click.option("--name", default=None, help="Execution name (default: a UUID).")
@click.option("--stack", default=None, help="Stack name (default: earlyexit-PATTERN).")
@target_options
def start(pattern: str, approvers: tuple[str, ...], request_json: str | None, quorum: Any, timeout_seconds: Any,
          reminder_seconds: Any, name: str | None, stack: str | None, endpoint_url: str | None,
          region: str | None) -> None:
    """Start an approval; prints the execution ARN. The input is checked first, with the state machine's rules."""
    if quorum is not None and pattern != "quorum":
        raise click.BadParameter("applies to the quorum pattern only", param_hint="'--quorum'")
    try:
        request = json.loads(request_json) if request_json is not None else None
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="'--request'") from None
    execution_input = approval_input(approvers, request=request, quorum=quorum, timeout_seconds=timeout_seconds,
                                     reminder_seconds=reminder_seconds)
    _check(pattern, execution_input)
    cloud = cloud_for(endpoint_url, region)
    stack = stack or stack_folder(pattern).default_stack_name
    state_machine_arn, default_quorum, default_timeout = served_state_machine(cloud, pattern, stack, endpoint_url,
                                                                              region)
    _check(pattern, execution_input, default_quorum, default_timeout)
    click.echo(start_approval(cloud.client("stepfunctions"), state_machine_arn, approvers, request=request,
                              quorum=quorum, timeout_seconds=timeout_seconds, reminder_seconds=reminder_seconds,
                              name=name))


@main.command(short_help="Approvers who still have to answer an execution.")
@click.argument("execution", type=ExecutionArn())
@click.option("--show-tokens", is_flag=True,
              help="Print each pending approver with the task token of their request (approver, tab, token).")
@click.option("--links", is_flag=True,
              help="Print each pending approver with the link of their request in the inbox (approver, tab, link).")
@click.option("--inbox-stack", default=DEFAULT_INBOX_STACK, show_default=True, help="The inbox's stack (--links).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@target_options
def pending(execution: str, show_tokens: bool, links: bool, inbox_stack: str, as_json: bool,
            endpoint_url: str | None, region: str | None) -> None:
    """Approvers who still have to answer EXECUTION, one a line.

    Exits 1, saying why on stderr, once the execution has ended: nobody can answer it any more.
    """
    if show_tokens and links:
        raise click.UsageError("--show-tokens and --links exclude each other")
    cloud = cloud_for(endpoint_url, region, execution)
    result = read_approval(cloud.client("stepfunctions"), execution)
    link_of: dict[str, str | None] = {}
    if links and result.status == "RUNNING":
        inbox, dynamodb = find_inbox(cloud, inbox_stack), cloud.client("dynamodb")
        link_of = {r.approver: inbox.link(dynamodb, r.task_token) for r in result.pending}
    if as_json:
        body: dict[str, Any] = {"executionArn": execution, "status": result.status,
                                "pending": [r.approver for r in result.pending]}
        if show_tokens:
            body["requests"] = [{"approver": r.approver, "taskToken": r.task_token, "sentAt": r.sent_at.isoformat()}
                                for r in result.pending]
        if links:
            body["links"] = link_of
        click.echo(json.dumps(body))
    if result.status != "RUNNING":
        click.echo(f"Error: nobody can answer: {ended(result)}", err=True)
        raise click.exceptions.Exit(1)
    if as_json:
        return
    if not result.pending:
        click.echo("nobody yet: the requests are being sent", err=True)
    else:
        for request in result.pending:
            if links:
                click.echo(f"{request.approver}\t{link_of[request.approver] or _NO_LINK_YET}")
            else:
                click.echo(f"{request.approver}\t{request.task_token}" if show_tokens else request.approver)


def _decision_command(decision: str, verb: str) -> click.Command:
    @main.command(name=decision, help=f"{verb} EXECUTION as one of its approvers.",
                  short_help=f"{verb} an execution as one of its approvers.")
    @click.argument("execution", type=ExecutionArn())
    @click.option("--as", "approver", required=True, help="The approver answering.")
    @click.option("--comment", default=None, help="A comment, kept in the execution history.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @target_options
    def command(execution: str, approver: str, comment: str | None, as_json: bool, endpoint_url: str | None,
                region: str | None) -> None:
        sfn = cloud_for(endpoint_url, region, execution).client("stepfunctions")
        try:
            decide(sfn, execution, approver, decision, comment=comment)
        except EarlyExitError as error:
            if as_json:
                click.echo(json.dumps({"executionArn": execution, "approver": approver, "error": str(error)}))
            raise
        if as_json:
            click.echo(json.dumps({"executionArn": execution, "approver": approver, "decision": decision}))
        else:
            click.echo(f"{approver}: {decision} sent")

    return command


approve = _decision_command("approve", "Approve")
reject = _decision_command("reject", "Reject")


@main.command(short_help="Timeline and outcome of an execution.")
@click.argument("execution", type=ExecutionArn())
@click.option("--watch", is_flag=True, help="Follow it live until the outcome (Ctrl-C stops watching: exit 130).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --watch: once it has ended).")
@target_options
def status(execution: str, watch: bool, as_json: bool, endpoint_url: str | None, region: str | None) -> None:
    """Timeline and outcome of EXECUTION.

    Exits 0 while the execution runs and once it has SUCCEEDED, whatever the approval's outcome
    (APPROVED, REJECTED or TIMED_OUT: a decided execution succeeds); 1 if the execution's own
    status is FAILED, ABORTED or TIMED_OUT (Step Functions' status: it ended without an outcome).
    """
    from earlyexit.tools.timeline import render_execution, watch_execution

    sfn = cloud_for(endpoint_url, region, execution).client("stepfunctions")
    result = read_approval(sfn, execution)  # an unknown execution fails here, before any wait
    # No deadline of their own when watching: every execution ends by its timeoutSeconds.
    if as_json:
        if watch and result.status == "RUNNING":
            result = wait_for_outcome(sfn, execution, timeout=math.inf)
        click.echo(json.dumps(_execution_json(result)))
    elif watch and result.status == "RUNNING":
        result = watch_execution(lambda: read_approval(sfn, execution), timeout=math.inf)
    else:
        render_execution(result)
    if result.status in _ENDED_BADLY:
        raise click.exceptions.Exit(1)


def run() -> None:
    """The ``earlyexit`` console script."""
    main()
