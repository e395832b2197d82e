"""``earlyexit serve``: an AWS-compatible endpoint (moto's server with the engine fixes), both stacks and the
inbox deployed.

The endpoint speaks the AWS APIs the stacks use (Step Functions, EventBridge, DynamoDB, IAM,
CloudWatch Logs, SQS, SNS, Lambda, API Gateway v2), so boto3, the AWS CLI and ``earlyexit
--endpoint-url`` work against it with any dummy credentials in region us-east-1. An EventBridge
rule sends every ApprovalRequested event to an SQS queue of the endpoint's own, as an
organisation routes them to its approvers. The inbox's functions run in this process, its
HTTP API answers under the endpoint's own address, and its topic feeds the queue
``earlyexit-notifications``: the messages a person would get by mail.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.request
import uuid
from html import escape
from types import FrameType
from typing import Any

from botocore.model import OperationNotFoundError
from flask import Flask, Response, request
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import BaseWSGIServer, make_server

from earlyexit import engine
from earlyexit.engine.runtime.functions import set_function_endpoint
from earlyexit.errors import EarlyExitError
from earlyexit.gateway import HttpApiGateway
from earlyexit.inbox import DEFAULT_INBOX_STACK, deploy_inbox
from earlyexit.local import DEFAULT_MAX_FINISHED_EXECUTIONS, PATTERNS, Cloud
from earlyexit.patterns import EVENT_SOURCE, stack_folder

__all__ = ["APPROVAL_QUEUE", "REGION", "ServeError", "deploy_stacks", "route_approval_requests", "serve"]

APPROVAL_QUEUE = "earlyexit-approval-requests"  # the queue's and the rule's name
REGION = "us-east-1"  # the only region the endpoint deploys into


class ServeError(EarlyExitError):
    """The endpoint cannot start (the port is taken, the host cannot listen)."""


def deploy_stacks(endpoint_url: str, *, region: str = REGION) -> dict[str, dict[str, str]]:
    """Deploy every pattern into ``endpoint_url`` as stack ``earlyexit-PATTERN``; returns each one's outputs."""
    cloud = Cloud(region=region, endpoint_url=endpoint_url)
    return {pattern: cloud.deploy(pattern, stack_name=stack_folder(pattern).default_stack_name).outputs
            for pattern in PATTERNS}


def route_approval_requests(endpoint_url: str, *, region: str = REGION) -> str:
    """An SQS queue that an EventBridge rule on the default bus fills with every ApprovalRequested event
    (both patterns); returns the queue URL."""
    cloud = Cloud(region=region, endpoint_url=endpoint_url)
    events: Any = cloud.client("events")
    rule_arn = events.put_rule(Name=APPROVAL_QUEUE, EventPattern=json.dumps(
        {"source": [EVENT_SOURCE], "detail-type": ["ApprovalRequested"]}))["RuleArn"]
    queue_url, queue_arn = cloud.queue_fed_by(APPROVAL_QUEUE, service="events", source_arn=rule_arn)
    events.put_targets(Rule=APPROVAL_QUEUE, Targets=[{"Id": "approval-requests", "Arn": queue_arn}])
    return queue_url


def _ready_text(ready: dict[str, Any]) -> str:
    """The ready line for a person: each address on a line of its own, every line within 80 columns but a long
    address (never cut)."""
    endpoint = ready["endpoint"]
    return "\n".join([
        f"Ready: {endpoint} (region {REGION}, any credentials)",
        "Approval requests (SQS queue):", f"  {ready['approvalQueueUrl']}",
        "Notifications (SQS queue):", f"  {ready['notificationQueueUrl']}",
        "Inbox:", f"  {ready['stacks']['inbox']['InboxUrl']}",
        f"In another terminal: export AWS_ENDPOINT_URL={endpoint}",
        "In memory only: Ctrl-C stops the endpoint and loses every execution.",
    ])


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _bindable_port(host: str, port: int) -> int:
    """``port``, or a free one when it is 0; fails at once if ``host`` cannot listen on it."""
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as probe:
        # As the server's socket does: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ServeError(f"cannot listen on {host}:{port}: {error.strerror}; pass another --port, or --port 0 "
                             f"for any free port (the ready line names the endpoint)") from None
        return int(probe.getsockname()[1])


def _enable_interpreter(endpoint_url: str) -> None:
    """Make the server run state machines (by default it only records executions)."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(f"{endpoint_url}/moto-api/config", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _aws_error(error: InternalServerError) -> Response:
    """An operation the endpoint does not implement, or an internal failure, answered as AWS SDKs expect: an
    error document in the request's protocol (JSON ``__type``, or the query protocol's XML), never an HTML page.
    An unknown operation is the client's error (400, not retried); an internal failure is a 500 that SDKs retry
    (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html)."""
    unknown = isinstance(getattr(error, "original_exception", None), NotImplementedError | OperationNotFoundError)
    code, status = ("UnknownOperationException", 400) if unknown else ("InternalFailure", 500)
    message = str(error.original_exception) if unknown else "the endpoint failed to process the request"
    target, content_type = request.headers.get("X-Amz-Target"), request.headers.get("Content-Type", "")
    if "Action" in request.values and not target:  # the query protocol (XML): an unknown action is InvalidAction
        xml = (f"<ErrorResponse><Error><Type>{'Sender' if unknown else 'Receiver'}</Type>"
               f"<Code>{'InvalidAction' if unknown else code}</Code><Message>{escape(message)}</Message></Error>"
               f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        return Response(xml, status=status, content_type="text/xml")
    json_type = content_type if content_type.startswith("application/x-amz-json") else "application/json"
    return Response(json.dumps({"__type": code, "message": message}), status=status, content_type=json_type,
                    headers={"x-amzn-ErrorType": code})


def _backend_app(service: str) -> Flask:
    """moto's application for ``service``, its failures answered as AWS errors (:func:`_aws_error`)."""
    app = create_backend_app(service)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # moto runs it in debug mode, which lets exceptions escape as HTML
    app.register_error_handler(InternalServerError, _aws_error)
    return app


def _server(host: str, port: int) -> BaseWSGIServer:
    """moto's server application behind the HTTP APIs' gateway, threaded as moto's own server runs it."""
    app = HttpApiGateway(DomainDispatcherApplication(_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


def serve(*, host: str = "127.0.0.1", port: int,
          max_executions: int | None = DEFAULT_MAX_FINISHED_EXECUTIONS) -> None:
    """Serve on ``host``:``port`` (any free port if 0) until SIGINT or SIGTERM, then stop cleanly.

    The engine keeps at most ``max_executions`` finished executions (None: all), dropping the oldest.

    When the stacks are deployed, prints one JSON line to stdout:
    ``{"endpoint": URL, "stacks": {"either-or": {outputs}, "quorum": {outputs}, "inbox": {outputs}},
    "approvalQueueUrl": URL, "notificationQueueUrl": URL}``, and the endpoint, queues and inbox for a person,
    one a line, to stderr. Everything is in memory: a restart starts empty.
    ``host`` must be reachable as ``localhost`` too (a loopback or wildcard address): the
    interpreter sends its own service calls to ``http://localhost:$MOTO_PORT``.
    """
    port = _bindable_port(host, port)
    engine.install()
    engine.set_max_finished_executions(max_executions)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    os.environ["MOTO_PORT"] = str(port)
    # SAM attaches the AWS managed policy AWSXrayWriteOnlyAccess for tracing; moto's IAM
    # knows AWS managed policies only when asked (the embedded engine's config "iam").
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    server = _server(host, port)
    thread = threading.Thread(target=server.serve_forever, name="endpoint", daemon=True)
    endpoint_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        thread.start()
        set_function_endpoint(endpoint_url)
        _enable_interpreter(endpoint_url)
        stacks = deploy_stacks(endpoint_url)
        approval_queue = route_approval_requests(endpoint_url)
        stacks["inbox"], notification_queue = deploy_inbox(Cloud(region=REGION, endpoint_url=endpoint_url),
                                                           stack_name=DEFAULT_INBOX_STACK)
        ready = {"endpoint": endpoint_url, "stacks": stacks, "approvalQueueUrl": approval_queue,
                 "notificationQueueUrl": notification_queue}
        print(json.dumps(ready), flush=True)
        print(_ready_text(ready), file=sys.stderr, flush=True)
        while True:
            signal.pause()
    except _Stopped:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
        set_function_endpoint(None)
        engine.uninstall()
