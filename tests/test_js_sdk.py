"""A real client: the AWS SDK for JavaScript v3 runs one quorum approval against `earlyexit serve`.

The SDK comes from the npm registry (versions pinned in tests/js/package.json) and runs on the machine's
Node.js; tests/js/quorum.mjs starts an execution, receives the requests from the approval queue, answers
two of them, reads the outcome and the history, and sends a stale token, which must be refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.engine

JS = Path(__file__).resolve().parent / "js"
NODE, NPM = shutil.which("node"), shutil.which("npm")


@pytest.fixture(scope="module")
def sdk() -> Path:
    """tests/js with the SDK installed (npm, once; node_modules is not committed)."""
    if NODE is None or NPM is None:
        pytest.skip("Node.js and npm are not installed: the JavaScript SDK test needs them "
                    "(apt-get install nodejs npm)")
    if not (JS / "node_modules" / "@aws-sdk" / "client-sfn").is_dir():
        install = [NPM, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel", "error"]
        result = subprocess.run(install, cwd=JS, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"npm install failed:\n{result.stdout}\n{result.stderr}"
    return JS


def test_the_javascript_sdk_runs_a_quorum_approval_and_a_stale_token_is_refused(
        sdk: Path, served: dict[str, Any]) -> None:
    result = subprocess.run([str(NODE), "quorum.mjs", served["endpoint"], served["stacks"]["quorum"]["StateMachineArn"],
                             served["approvalQueueUrl"]], cwd=sdk, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    alice, bob, _ = seen["approvers"]
    assert seen["status"] == "SUCCEEDED"
    assert (seen["output"]["outcome"], seen["output"]["approvals"], seen["output"]["decidedBy"]) == (
        "APPROVED", [alice, bob], bob)
    assert [d["comment"] for d in seen["output"]["decisions"]] == [f"from {alice}", f"from {bob}"]
    assert seen["historyTypes"][0] == "ExecutionStarted" and seen["historyTypes"][-1] == "ExecutionSucceeded"
    assert seen["stale"] == "TaskTimedOut"
