"""Each speed-up changes nothing but speed: the same real executions, with and without it, end the same.

Both patterns' state machines (deployed with ``embedded_cloud``) run an approval, a rejection (sent
with SendTaskFailure) and a timeout between them, and a state machine reads an S3 object (the
service-client speed-up once broke S3 signing); each run is compared on its outcome, its output and
its history: each flow's sequence of events (types, state names and details, with times, ids,
execution names and task tokens normalised). A history is compared as the tree its
``previousEventId`` links make, one path per flow, because the interleaving of parallel flows varies
from run to run with or without any speed-up.

The configurations (every speed-up, none, and every one but each in turn) run one after the other in
one fresh interpreter (this file run as a script), which installs the engine with each configuration's
speed-ups and uninstalls it before the next: the test process may hold the engine already, with every
speed-up.
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
# timeoutSeconds of the answered runs and of the one that times out (scaled 1/100: 1.2 s, time enough for a slow
# configuration on a loaded machine to send every request before the deadline)
ANSWERED, DEADLINE = 3600, 120
APPROVALS: dict[str, tuple[tuple[str, ...], int | None, list[list[tuple[str, str]]]]] = {
    "either-or": (("ann", "bob"), None, [[("ann", "approve")], []]),
    "quorum": (("ann", "bob", "cy"), 2, [[("ann", "reject"), ("cy", "failure")]]),
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


def _play(sfn: Any, machine: str, approvers: tuple[str, ...], answers: list[tuple[str, str]],
          quorum: int | None) -> str:
    """An approval whose answers are sent once every request is submitted (its TaskSubmitted recorded), so that
    no flow's history depends on how soon the answers came: the ended execution's ARN."""
    from support import described_end, send_answer, wait_until_counted

    from earlyexit.approvals import start_approval
    from earlyexit.history import history_events, requests_sent
    from earlyexit.polling import wait_until

    arn = start_approval(sfn, machine, list(approvers), quorum=quorum,
                         timeout_seconds=ANSWERED if answers else DEADLINE)
    wait_until(lambda: sum(e["type"] == "TaskSubmitted" for e in history_events(sfn, arn)) >= len(approvers),
               timeout=60, what=f"every request of {arn} submitted", first_pause=0.05)
    tokens = {request.approver: request.task_token for request in requests_sent(history_events(sfn, arn))}
    for approver, kind in answers:
        send_answer(sfn, tokens[approver], kind)
        wait_until_counted(sfn, arn, approver)
    described_end(sfn, arn, timeout=DEADLINE + 60)
    return arn


def _approvals(cloud: Any, machines: dict[str, str]) -> dict[str, Any]:
    sfn, runs = cloud.client("stepfunctions"), {}
    for pattern, (approvers, quorum, cases) in APPROVALS.items():
        for index, answers in enumerate(cases):
            runs[f"{pattern} {index}"] = _ended(sfn, _play(sfn, machines[pattern], approvers, answers, quorum))
    return runs


def _s3_machine(cloud: Any) -> str:
    s3, iam, sfn = cloud.client("s3"), cloud.client("iam"), cloud.client("stepfunctions")
    bucket = "speedups-requests"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="request.json", Body=b'{"change": "CHG-1"}')
    role = iam.create_role(RoleName="speedups-s3", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    read = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True,
            "Arguments": {"Bucket": bucket, "Key": "request.json"},
            "Output": "{% {'length': $states.result.ContentLength, 'type': $states.result.ContentType} %}"}
    return str(sfn.create_state_machine(name="speedups-s3", roleArn=role, definition=json.dumps(
        {"QueryLanguage": "JSONata", "StartAt": "Read", "States": {"Read": read}}))["stateMachineArn"])


def _machines(cloud: Any) -> dict[str, str]:
    """Both patterns deployed and the S3 reader created: each state machine's ARN."""
    deployed = {pattern: cloud.deploy(pattern, stack_name=f"earlyexit-{pattern}").outputs["StateMachineArn"]
                for pattern in APPROVALS}
    return {**deployed, "s3": _s3_machine(cloud)}


def run(cloud: Any, machines: dict[str, str], speedups: list[str]) -> dict[str, Any]:
    """Every execution's end with the engine installed with ``speedups`` only, and the speed-ups it applied."""
    engine.install(speedups=speedups)
    try:
        sfn = cloud.client("stepfunctions")
        s3_read = _ended(sfn, sfn.start_execution(stateMachineArn=machines["s3"])["executionArn"])
        return {"applied": sorted(engine.installed_speedups()),
                "runs": {**_approvals(cloud, machines), "s3 getObject": s3_read}}
    finally:
        engine.uninstall()


def run_each(configurations: dict[str, list[str]]) -> dict[str, Any]:
    """``run`` of each configuration in turn, in this interpreter, on the same deployment: ``embedded_cloud``'s
    moto, entered once (its AWS managed policies take seconds to load), with the engine installed with each
    configuration's speed-ups and uninstalled before the next."""
    from moto import mock_aws

    from earlyexit.cloud import EmbeddedCloud

    engine.set_wait_time_scale(0.01)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "iam": {"load_aws_managed_policies": True}}):
        engine.install()
        cloud = EmbeddedCloud(region="us-east-1")
        try:
            machines = _machines(cloud)
        finally:
            engine.uninstall()
        try:
            return {name: run(cloud, machines, speedups) for name, speedups in configurations.items()}
        finally:
            cloud.close()


CONFIGURATIONS = {"every": SPEEDUPS, "none": [],
                  **{f"without {speedup}": [name for name in SPEEDUPS if name != speedup] for speedup in SPEEDUPS}}


@pytest.fixture(scope="module")
def ended_runs() -> dict[str, Any]:
    """Each configuration's runs, all played in one fresh interpreter."""
    here = Path(__file__).resolve()
    result = subprocess.run([sys.executable, str(here), json.dumps(CONFIGURATIONS)], cwd=here.parent,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    found = dict(json.loads(result.stdout))
    assert {name: found[name]["applied"] for name in CONFIGURATIONS} == {
        name: sorted(speedups) for name, speedups in CONFIGURATIONS.items()}
    return {name: found[name]["runs"] for name in CONFIGURATIONS}


def _differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    assert found.keys() == expected.keys()
    return [f"{name}: {part}" for name in expected for part in ("status", "output", "error", "history")
            if found[name][part] != expected[name][part]]


def test_the_runs_end_as_the_patterns_decide(ended_runs: dict[str, Any]) -> None:
    with_every_speedup = ended_runs["every"]
    assert [run["status"] for run in with_every_speedup.values()] == ["SUCCEEDED"] * 4
    assert [(run["output"] or {}).get("outcome") for run in with_every_speedup.values()] == [
        "APPROVED", "TIMED_OUT", "REJECTED", None]
    assert with_every_speedup["s3 getObject"]["output"] == {"length": 19, "type": "binary/octet-stream"}


@pytest.mark.parametrize("speedup", SPEEDUPS)
def test_each_speedup_changes_no_outcome_output_or_history(speedup: str, ended_runs: dict[str, Any]) -> None:
    assert not _differences(ended_runs[f"without {speedup}"], ended_runs["every"])


def test_the_engine_without_any_speedup_runs_the_same(ended_runs: dict[str, Any]) -> None:
    assert not _differences(ended_runs["none"], ended_runs["every"])


if __name__ == "__main__":
    print(json.dumps(run_each(json.loads(sys.argv[1]))))
