"""`earlyexit serve` in a subprocess, for the suites that drive the local endpoint over HTTP."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


@contextmanager
def serving(*options: str) -> Iterator[dict[str, Any]]:
    """`earlyexit serve --port 0 OPTIONS` in a subprocess until SIGTERM; yields its ready line (parsed).

    The server must exit 0 on SIGTERM and print nothing but the ready line on stdout.
    """
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "earlyexit", "serve", "--port", "0", *options],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        stdout = process.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()

        def errors() -> str:
            stderr.seek(0)
            return stderr.read()

        try:
            line = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            process.kill()
            pytest.fail(f"no ready line within {READY_TIMEOUT:.0f} s; stderr:\n{errors()}")
        if not line:
            process.wait()
            pytest.fail(f"`earlyexit serve` exited with {process.returncode} before it was ready; stderr:\n{errors()}")
        try:
            yield json.loads(line)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail(f"`earlyexit serve` did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            rest = stdout.read()
            assert code == 0, f"exit code {code}; stderr:\n{errors()}"
            assert rest == "", f"stdout holds more than the ready line: {rest!r}"


def client(url: str, service: str) -> Any:
    """A plain boto3 client of ``service`` on the endpoint ``url`` (dummy credentials, us-east-1)."""
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
