"""Each speed-up changes nothing but speed: the same real executions, with and without it, end the same.

Both patterns' state machines (deployed with ``embedded_cloud``) run an approval, a rejection and a
timeout, and a state machine reads an S3 object (the service-client speed-up once broke S3
signing); each run is compared on its outcome, its output and its history: each flow's sequence
of events (types, state names and details, with times, ids, execution names and task tokens
normalised). A history is compared as the tree its ``previousEventId`` links make, one path per
flow, because the interleaving of parallel flows varies from run to run with or without any
speed-up. Each configuration runs in a fresh interpreter (this file run as a script), as the
engine is installed once per process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from earlyexit import engine

pytestmark = [pytest.mark.engine, pytest.mark.load]

SPEEDUPS = [fix.__name__ for fix in engine.SPEEDUPS]
ANSWERED, DEADLINE = 3600, 60  # timeoutSeconds of the answered runs and of the one that times out (scaled 1/100)
APPROVALS: dict[str, tuple[tuple[str, ...], int | None, list[list[tuple[str, str]]]]] = {
    "either-or": (("ann", "bob"), None, [[("ann", "approve")], [("bob", "reject")], []]),
    "quorum": (("ann", "bob", "cy"), 2, [[("ann", "approve"), ("bob", "approve")],
                                         [("ann", "reject"), ("cy", "reject")], []]),
}
_NORMALISED = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b1[6-9]\d{8}(\d{3})?(\.\d+)?\b"), "<epoch>"),
    (re.compile(r"-[A-Z0-9]{12}\b"), "-<physical id>"),  # the local deploy's generated names
    (re.compile(r"0x[0-9a-f]+"), "<address>"),  # moto's aws-sdk S3 result shows the body object's repr
]


def _normalised(value: Any) -> Any:
    text = json.dumps(value, sort_keys=True)
    for pattern, replacement in _NORMALISED:
        text = pattern.sub(replacement, text)
    return json.loads(text)


def _history(sfn: Any, execution_arn: str) -> list[Any]:
    """The history as a tree: each event (normalised) with the events that follow it in its flow, in a
    canonical order."""
    from earlyexit.history import history_events

    following: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in history_events(sfn, execution_arn):
        following[event["previousEventId"]].append(event)

    def flow(event: dict[str, Any]) -> list[Any]:
        details = _normalised({k: v for k, v in event.items() if k not in ("timestamp", "id", "previousEventId")})
        return [details, sorted((flow(after) for after in following[event["id"]]), key=json.dumps)]

    return sorted((flow(first) for first in following[0]), key=json.dumps)


def _ended(sfn: Any, execution_arn: str) -> dict[str, Any]:
    from support import described_end

    described = described_end(sfn, execution_arn)
    return {"status": described["status"], "output": _normalised(json.loads(described.get("output", "null"))),
            "error": described.get("error"), "history": _history(sfn, execution_arn)}


def _approvals(cloud: Any) -> dict[str, Any]:
    from support import play

    sfn, runs = cloud.client("stepfunctions"), {}
    for pattern, (approvers, quorum, cases) in APPROVALS.items():
        arn = cloud.deploy(pattern, stack_name=f"earlyexit-{pattern}").outputs["StateMachineArn"]
        for index, answers in enumerate(cases):
            ended = play(sfn, arn, approvers, answers, timeout_seconds=ANSWERED if answers else DEADLINE,
                         quorum=quorum)
            runs[f"{pattern} {index}"] = _ended(sfn, ended.arn)
    return runs


def _s3_read(cloud: Any) -> dict[str, Any]:
    s3, iam, sfn = cloud.client("s3"), cloud.client("iam"), cloud.client("stepfunctions")
    bucket = "speedups-requests"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="request.json", Body=b'{"change": "CHG-1"}')
    role = iam.create_role(RoleName="speedups-s3", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    read = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True,
            "Arguments": {"Bucket": bucket, "Key": "request.json"},
            "Output": "{% {'length': $states.result.ContentLength, 'type': $states.result.ContentType} %}"}
    arn = sfn.create_state_machine(name="speedups-s3", roleArn=role, definition=json.dumps(
        {"QueryLanguage": "JSONata", "StartAt": "Read", "States": {"Read": read}}))["stateMachineArn"]
    return {"s3 getObject": _ended(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])}


def run(speedups: list[str]) -> dict[str, Any]:
    """Every execution's end with the engine installed with ``speedups`` only."""
    from earlyexit.local import embedded_cloud

    engine.install(speedups=speedups)
    try:
        with embedded_cloud(wait_time_scale=0.01) as cloud:
            return {**_approvals(cloud), **_s3_read(cloud)}
    finally:
        engine.uninstall()


def _run_in_a_fresh_interpreter(speedups: list[str]) -> dict[str, Any]:
    here = Path(__file__).resolve()
    result = subprocess.run([sys.executable, str(here), json.dumps(speedups)], cwd=here.parent, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def with_every_speedup() -> dict[str, Any]:
    return _run_in_a_fresh_interpreter(SPEEDUPS)


def _differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    assert found.keys() == expected.keys()
    return [f"{name}: {part}" for name in expected for part in ("status", "output", "error", "history")
            if found[name][part] != expected[name][part]]


def test_the_runs_end_as_the_patterns_decide(with_every_speedup: dict[str, Any]) -> None:
    assert [run["status"] for run in with_every_speedup.values()] == ["SUCCEEDED"] * 7
    assert [(run["output"] or {}).get("outcome") for run in with_every_speedup.values()] == [
        "APPROVED", "REJECTED", "TIMED_OUT", "APPROVED", "REJECTED", "TIMED_OUT", None]
    assert with_every_speedup["s3 getObject"]["output"] == {"length": 19, "type": "binary/octet-stream"}


@pytest.mark.parametrize("speedup", SPEEDUPS)
def test_each_speedup_changes_no_outcome_output_or_history(speedup: str, with_every_speedup: dict[str, Any]) -> None:
    without = _run_in_a_fresh_interpreter([name for name in SPEEDUPS if name != speedup])
    assert not _differences(without, with_every_speedup)


def test_the_engine_without_any_speedup_runs_the_same(with_every_speedup: dict[str, Any]) -> None:
    assert not _differences(_run_in_a_fresh_interpreter([]), with_every_speedup)


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
