"""``earlyexit serve``: an AWS-compatible endpoint (moto's server with the engine fixes), both stacks deployed.

The endpoint speaks the AWS APIs the patterns use (Step Functions, EventBridge, DynamoDB,
IAM, CloudWatch Logs), so boto3, the AWS CLI and ``earlyexit --endpoint-url`` work
against it with any dummy credentials in region us-east-1.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import urllib.request
from types import FrameType

import click
from moto.server import ThreadedMotoServer

from earlyexit import engine
from earlyexit.local import PATTERNS, Cloud

__all__ = ["deploy_stacks", "serve"]


def deploy_stacks(endpoint_url: str, region: str = "us-east-1") -> dict[str, dict[str, str]]:
    """Deploy every pattern into ``endpoint_url`` as stack ``earlyexit-PATTERN``; returns each one's outputs."""
    cloud = Cloud(region=region, endpoint_url=endpoint_url)
    return {pattern: cloud.deploy(pattern, stack_name=f"earlyexit-{pattern}").outputs for pattern in PATTERNS}


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
            raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
        return int(probe.getsockname()[1])


def _enable_interpreter(endpoint_url: str) -> None:
    """Make the server run state machines (by default it only records executions)."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(f"{endpoint_url}/moto-api/config", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve on ``host``:``port`` (a free port if 0) until SIGINT or SIGTERM, then stop cleanly.

    When both stacks are deployed, prints one JSON line to stdout:
    ``{"endpoint": URL, "stacks": {"either-or": {outputs}, "quorum": {outputs}}}``.
    ``host`` must be reachable as ``localhost`` too (a loopback or wildcard address): the
    interpreter sends its own service calls to ``http://localhost:$MOTO_PORT``.
    """
    engine.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = _bindable_port(host, port)
    os.environ["MOTO_PORT"] = str(port)
    # SAM attaches the AWS managed policy AWSXrayWriteOnlyAccess for tracing; moto's IAM
    # knows AWS managed policies only when asked (the embedded engine's config "iam").
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    try:
        server.start()
        endpoint_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        _enable_interpreter(endpoint_url)
        ready = {"endpoint": endpoint_url, "stacks": deploy_stacks(endpoint_url)}
        print(json.dumps(ready), flush=True)
        while True:
            signal.pause()
    except _Stopped:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.stop()
