"""moto's own Step Functions tests, at the pinned version, with and without the engine's fixes.

The engine is moto's interpreter with fixes applied; a fix must not break what moto's own
tests check unless AWS behaves otherwise. This module fetches moto's source distribution
(the pinned version, from PyPI, its SHA-256 checked) once into the pytest cache,
runs its ``tests/test_stepfunctions`` twice in subprocesses started together (plain, and with
``-p moto_engine_plugin``, which installs the fixes for the session as a user of the engine
gets them), and checks that every moto test that passes plain passes with the fixes, except
:data:`EXPECTED_DIFFERENCES`, where moto contradicts AWS (each with the AWS source; a listed
test that no longer differs fails). Both runs happen once per pytest run: the xdist workers
share them through a lock file. PyPI unreachable fails (skips, with the reason, only outside
CI, when the environment variable ``CI`` is unset).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from earlyexit.engine import PINS

pytestmark = [pytest.mark.load, pytest.mark.engine]

MOTO_VERSION = PINS["moto"]
PLUGIN_DIR = Path(__file__).parent  # moto_engine_plugin.py
# What moto's Step Functions tests import besides themselves.
_HELPERS = ("tests/__init__.py", "tests/conftest.py", "tests/markers.py",
            "tests/test_awslambda/__init__.py", "tests/test_awslambda/utilities.py")
_SUITE = "tests/test_stepfunctions/"
_RUN_TIMEOUT = 900  # seconds, both runs (they take about a minute and a half)

# moto test id -> why AWS behaves otherwise, with the AWS source. Only genuine moto-vs-AWS contradictions.
EXPECTED_DIFFERENCES: dict[str, str] = {
    "test_stepfunctions/parser/test_stepfunctions_sqs_integration.py::test_state_machine_calling_sqs_with_task_success":
        "the test answers SendTaskSuccess with output \"it's done\", which is not JSON; AWS refuses it with "
        "InvalidOutput ('The provided JSON output data is invalid.'; output is 'The JSON output of the task'), "
        "moto accepts it: https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html",
}

# The tests that run a Lambda function in Docker and fail without it (moto's own tests marked requires_docker that
# expect the function's result); without a Docker daemon both runs deselect them (half a minute of waiting each).
NEEDS_DOCKER = tuple(f"test_stepfunctions/parser/test_stepfunctions_lambda_integration.py::{name}" for name in (
    "test_state_machine_calling_lambda_fn", "test_state_machine_calling_failing_lambda_fn",
    "test_comments_on_lmb_function"))

# Every test of moto's tests/test_stepfunctions at the pinned version (checked against the run below).
MOTO_TESTS: dict[str, tuple[str, ...]] = {
    "test_stepfunctions/parser/test_choice_state.py": (
        "test_state_machine_with_choice", "test_state_machine_with_choice_miss",
    ),
    "test_stepfunctions/parser/test_comments.py": (
        "test_comments_in_parameters",
    ),
    "test_stepfunctions/parser/test_map_item.py": (
        "test_state_machine_with_map_reader_csv", "test_state_machine_with_map_reader_csv_with_header",
    ),
    "test_stepfunctions/parser/test_parallel_states.py": (
        "test_state_machine_with_parallel_states", "test_state_machine_with_parallel_states_catch_error",
        "test_state_machine_with_parallel_states_error", "test_state_machine_with_parallel_states_order",
    ),
    "test_stepfunctions/parser/test_stepfunctions.py": (
        "test_state_machine_with_simple_failure_state", "test_state_machine_with_input",
        "test_state_machine_with_json_regex", "test_version_is_only_available_when_published",
        "test_verify_template_with_credentials", "test_state_machine_can_be_executed_multiple_times",
    ),
    "test_stepfunctions/parser/test_stepfunctions_dynamodb_integration.py": (
        "test_state_machine_calling_dynamodb_put",
        "test_state_machine_calling_dynamodb_put_wait_for_invalid_task_token",
        "test_state_machine_calling_dynamodb_put_wait_for_task_token",
        "test_state_machine_calling_dynamodb_put_fail_task_token",
        "test_state_machine_calling_dynamodb_put_and_delete", "test_send_task_failure_invalid_token",
        "test_zero_retry",
    ),
    "test_stepfunctions/parser/test_stepfunctions_idempotency.py": (
        "test_create_state_machine_twice_after_failure", "test_create_state_machine_twice_after_success",
    ),
    "test_stepfunctions/parser/test_stepfunctions_lambda_integration.py": (
        "test_state_machine_calling_lambda_fn", "test_state_machine_calling_failing_lambda_fn",
        "test_comments_on_lmb_function",
    ),
    "test_stepfunctions/parser/test_stepfunctions_lambda_retry_integration.py": (
        "test_retry_lambda", "test_retry_lambda_jitter_none",
    ),
    "test_stepfunctions/parser/test_stepfunctions_sns_integration.py": (
        "test_state_machine_calling_sns_publish",
    ),
    "test_stepfunctions/parser/test_stepfunctions_sqs_integration.py": (
        "test_state_machine_calling_sqs_with_heartbeat", "test_state_machine_calling_sqs_with_task_success",
    ),
    "test_stepfunctions/test_stepfunctions.py": (
        "test_state_machine_creation_succeeds", "test_state_machine_with_cmk",
        "test_state_machine_creation_fails_with_invalid_names", "test_state_machine_creation_requires_valid_role_arn",
        "test_update_state_machine", "test_state_machine_creation_stores_the_requested_type",
        "test_state_machine_list_returns_empty_list_by_default",
        "test_state_machine_list_returns_created_state_machines",
        "test_state_machine_list_returns_the_type_of_each_state_machine", "test_state_machine_list_pagination",
        "test_state_machine_creation_is_idempotent_by_name", "test_state_machine_creation_can_be_described",
        "test_state_machine_throws_error_when_describing_unknown_machine",
        "test_state_machine_throws_error_when_describing_bad_arn",
        "test_state_machine_throws_error_when_describing_machine_in_different_account",
        "test_state_machine_can_be_deleted", "test_state_machine_can_deleted_nonexisting_machine",
        "test_state_machine_tagging", "test_state_machine_untagging",
        "test_state_machine_list_tags_for_created_machine", "test_state_machine_list_tags_for_machine_without_tags",
        "test_state_machine_list_tags_for_nonexisting_machine", "test_state_machine_start_execution",
        "test_state_machine_start_execution_bad_arn_raises_exception",
        "test_state_machine_start_execution_with_custom_name",
        "test_state_machine_start_execution_fails_on_duplicate_execution_name_with_different_input",
        "test_state_machine_start_execution_is_idempotent_by_name_and_input",
        "test_state_machine_start_execution_with_custom_input",
        "test_state_machine_start_execution_with_invalid_input", "test_state_machine_list_executions",
        "test_state_machine_list_executions_with_filter", "test_state_machine_list_executions_with_pagination",
        "test_state_machine_list_executions_when_none_exist", "test_state_machine_describe_execution_with_no_input",
        "test_state_machine_describe_execution_with_custom_input",
        "test_execution_throws_error_when_describing_unknown_execution",
        "test_state_machine_can_be_described_by_execution",
        "test_state_machine_throws_error_when_describing_unknown_execution", "test_state_machine_stop_execution",
        "test_state_machine_stop_raises_error_when_unknown_execution",
        "test_state_machine_get_execution_history_throws_error_with_unknown_execution",
        "test_state_machine_get_execution_history_contains_expected_success_events_when_started",
        "test_stepfunction_regions[us-west-2]", "test_stepfunction_regions[cn-northwest-1]",
        "test_stepfunction_regions[us-isob-east-1]",
        "test_state_machine_get_execution_history_contains_expected_failure_events_when_started",
        "test_state_machine_name_limits", "test_state_machine_execution_name_limits",
        "test_version_is_only_available_when_published", "test_create_activity",
        "test_create_activity_with_invalid_name", "test_create_activity_with_invalid_encryption_configuration",
        "test_create_activity_with_duplicate_name", "test_describe_activity", "test_delete_activity",
        "test_list_activities_returns_empty_list_by_default", "test_list_activities_returns_created_activities",
        "test_list_activities_pagination", "test_activity_tagging", "test_activity_untagging",
        "test_activity_list_tags_for_created_activity", "test_activity_list_tags_for_activity_without_tags",
        "test_activity_list_tags_for_nonexisting_activity",
    ),
    "test_stepfunctions/test_stepfunctions_aliases.py": (
        "test_state_machine_alias_succeeds",
        "test_state_machine_alias_fails_with_invalid_routing_config[too_many_versions]",
        "test_state_machine_alias_fails_with_invalid_routing_config[invalid_weight_single]",
        "test_state_machine_alias_fails_with_invalid_routing_config[invalid_weight_sum]",
        "test_state_machine_alias_fails_with_different_state_machines", "test_state_machine_two_alias",
        "test_state_machine_describe_alias_succeeds", "test_state_machine_describe_alias_fails_nonexistent",
        "test_state_machine_delete_alias_succeeds", "test_state_machine_delete_alias_fails_nonexistent",
        "test_list_state_machine_aliases_succeeds", "test_list_state_machine_aliases_empty",
        "test_list_state_machine_aliases_nonexistent_state_machine", "test_update_state_machine_alias_succeeds",
        "test_update_state_machine_alias_fails_without_params", "test_update_state_machine_alias_fails_nonexistent",
    ),
    "test_stepfunctions/test_stepfunctions_cloudformation.py": (
        "test_state_machine_cloudformation", "test_state_machine_cloudformation_update_with_replacement",
        "test_state_machine_cloudformation_update_with_no_interruption",
    ),
    "test_stepfunctions/test_stepfunctions_idempotency.py": (
        "test_create_state_machine_twice_after_failure", "test_create_state_machine_twice_after_success",
    ),
    "test_stepfunctions/test_stepfunctions_versions.py": (
        "test_describe_state_machine_using_version_arn[use_parser]",
        "test_describe_state_machine_using_version_arn[use_mock]",
        "test_create_state_machine_with_version_description",
        "test_create_unpublished_state_machine_with_version_description",
    ),
}

MOTO_IDS = [f"{module}::{name}" for module, names in MOTO_TESTS.items() for name in names]


@dataclass(frozen=True)
class Outcome:
    outcome: str  # passed, failed, error or skipped
    message: str


@dataclass(frozen=True)
class MotoRuns:
    plain: dict[str, Outcome]
    fixed: dict[str, Outcome]
    deselected: list[str]  # NEEDS_DOCKER, without a Docker daemon
    seconds: float


def _docker_reachable() -> bool:
    """Whether moto could run Lambda functions (it reaches Docker with docker.from_env())."""
    try:
        import docker
    except ImportError:
        return False
    try:
        docker.from_env(timeout=3).ping()
    except (OSError, docker.errors.DockerException):
        return False
    return True


def _registry_unreachable(reason: str) -> None:
    message = (f"moto {MOTO_VERSION}'s source distribution (moto's own Step Functions tests) could not be fetched "
               f"from PyPI: {reason}")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message + " (not in CI: skipped)")


def _download_sdist() -> bytes:
    """moto's source distribution at the pinned version, found through PyPI's JSON Simple API (PEP 691, what
    pip reads), its SHA-256 checked."""
    index = "https://pypi.org/simple/moto/"
    filename = f"moto-{MOTO_VERSION}.tar.gz"
    try:
        request = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            sdist = next(f for f in json.load(response)["files"] if f["filename"] == filename)
        url = urllib.parse.urljoin(index, sdist["url"])
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except (OSError, ValueError, KeyError, StopIteration) as error:
        _registry_unreachable(f"{filename} from {index}: {type(error).__name__}: {error}")
    if hashlib.sha256(data).hexdigest() != sdist["hashes"]["sha256"]:
        pytest.fail(f"{url}: SHA-256 differs from PyPI's", pytrace=False)
    return data


def _moto_tests(cache_dir: Path) -> Path:
    """The directory holding moto's tests/test_stepfunctions and the helpers it imports (fetched once)."""
    root = cache_dir / f"moto-{MOTO_VERSION}-tests"
    if (root / "COMPLETE").exists():
        return root
    data = _download_sdist()
    partial = Path(tempfile.mkdtemp(prefix=root.name + "-", dir=cache_dir))
    prefix = f"moto-{MOTO_VERSION}/"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as sdist:
        members = [m for m in sdist.getmembers() if m.isfile() and m.name.startswith(prefix)
                   and (m.name[len(prefix):] in _HELPERS or m.name[len(prefix):].startswith(_SUITE))]
        for member in members:
            member.name = member.name[len(prefix):]
        sdist.extractall(partial, members=members, filter="data")
    (partial / "pytest.ini").write_text(  # moto's markers, nothing of this project's configuration
        "[pytest]\nmarkers =\n    network\n    requires_docker\n    aws_verified\n    requires_clean_slate\n")
    (partial / "COMPLETE").write_text(MOTO_VERSION)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def _outcomes(junit: Path) -> dict[str, Outcome]:
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").replace(".", "/").removeprefix("tests/") + ".py"
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = "failed" if kind == "failure" else kind
                message = next(iter((found.get("message") or found.text or "").strip().splitlines()), "")[:300]
                break
        outcomes[f"{module}::{case.get('name')}"] = Outcome(outcome, message)
    return outcomes


def _run_both(root: Path, out: Path, deselected: list[str]) -> MotoRuns:
    """moto's suite plain and with the engine's fixes, in two subprocesses started together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               MOTO_TEST_ALLOW_AWS_REQUEST="false",  # never AWS
               PYTHONPATH=os.pathsep.join(filter(None, [str(PLUGIN_DIR), os.environ.get("PYTHONPATH")])))
    runs = {"plain": [], "fixed": ["-p", "moto_engine_plugin"]}
    started = time.monotonic()
    processes = {}
    for name, extra in runs.items():
        command = [sys.executable, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", "-p", "no:cacheprovider",
                   "-q", "--timeout", "120", *extra, _SUITE, f"--junitxml={out / name}.xml",
                   *(f"--deselect=tests/{test_id}" for test_id in deselected)]
        log = (out / f"{name}.log").open("w")
        processes[name] = (subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    for name, (process, log) in processes.items():
        try:
            code = process.wait(timeout=max(1.0, _RUN_TIMEOUT - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            for other, _ in processes.values():
                other.kill()
            code = None
        log.close()
        if code not in (0, 1):  # 0: all passed, 1: some failed; anything else: the run itself broke
            tail = (out / f"{name}.log").read_text()[-3000:]
            pytest.fail(f"moto's suite ({name}) ended with {code!r} (None: timed out):\n{tail}", pytrace=False)
    return MotoRuns(_outcomes(out / "plain.xml"), _outcomes(out / "fixed.xml"), deselected,
                    time.monotonic() - started)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def moto_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MotoRuns:
    """Both runs of moto's suite, once per pytest run (the first xdist worker runs them, the other reads them)."""
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("moto-suite") if cache is not None else Path(tempfile.gettempdir()) / "earlyexit-moto-suite"
    cache_dir.mkdir(parents=True, exist_ok=True)
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's directory, common to its workers
    results = shared / "moto-suite.json"
    with _locked(shared / "moto-suite.lock"):
        if not results.exists():
            try:
                with _locked(cache_dir / "fetch.lock"):
                    root = _moto_tests(cache_dir)
                out = shared / "moto-suite"
                out.mkdir(exist_ok=True)
                runs = _run_both(root, out, [] if _docker_reachable() else list(NEEDS_DOCKER))
            except (pytest.fail.Exception, pytest.skip.Exception) as ended:  # the other worker ends the same way
                skipped = isinstance(ended, pytest.skip.Exception)
                results.write_text(json.dumps({"ended": str(ended.msg), "skip": skipped}))
                raise
            results.write_text(json.dumps({"plain": {k: vars(v) for k, v in runs.plain.items()},
                                           "fixed": {k: vars(v) for k, v in runs.fixed.items()},
                                           "deselected": runs.deselected, "seconds": runs.seconds}))
    saved = json.loads(results.read_text())
    if "ended" in saved:
        if saved["skip"]:
            pytest.skip(saved["ended"])
        pytest.fail(saved["ended"], pytrace=False)
    return MotoRuns({k: Outcome(**v) for k, v in saved["plain"].items()},
                    {k: Outcome(**v) for k, v in saved["fixed"].items()}, saved["deselected"], saved["seconds"])


def test_moto_suite_is_the_listed_one(moto_runs: MotoRuns) -> None:
    """The runs ran exactly the tests listed here (a moto bump or a collection error shows here)."""
    expected = sorted(set(MOTO_IDS) - set(moto_runs.deselected))
    assert sorted(moto_runs.plain) == expected
    assert sorted(moto_runs.fixed) == expected


@pytest.mark.parametrize("test_id", MOTO_IDS, ids=MOTO_IDS)
def test_passes_with_the_fixes(moto_runs: MotoRuns, test_id: str) -> None:
    """Every moto test that passes without the engine's fixes passes with them."""
    if test_id in moto_runs.deselected:
        pytest.skip("runs a Lambda function in Docker, and no Docker daemon answers here: fails without the fixes")
    plain, fixed = moto_runs.plain.get(test_id), moto_runs.fixed.get(test_id)
    assert plain is not None and fixed is not None, f"{test_id} did not run"
    if plain.outcome != "passed":
        pytest.skip(f"moto's test does not pass without the engine's fixes either ({plain.outcome}: {plain.message})")
    if test_id in EXPECTED_DIFFERENCES:
        pytest.xfail(f"moto contradicts AWS: {EXPECTED_DIFFERENCES[test_id]}")
    assert fixed.outcome == "passed", f"{test_id} passes plain, {fixed.outcome} with the fixes: {fixed.message}"


@pytest.mark.parametrize("test_id", sorted(EXPECTED_DIFFERENCES), ids=sorted(EXPECTED_DIFFERENCES))
def test_expected_difference_still_differs(moto_runs: MotoRuns, test_id: str) -> None:
    """Each listed difference is real: the test passes plain and not with the fixes (no stale entries)."""
    assert moto_runs.plain[test_id].outcome == "passed", moto_runs.plain[test_id]
    assert moto_runs.fixed[test_id].outcome != "passed", f"{test_id} passes with the fixes: remove it from the list"
