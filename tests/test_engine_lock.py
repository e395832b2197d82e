"""The lock of moto's sources: it matches the installed moto, records every target, and a difference stops install.

These run in fresh interpreters: in this one the engine may be installed, and its patches hide moto's sources.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.engine


def _python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def sources() -> dict[str, Any]:
    """The lock as recorded, and the targets the engine's entries touch as the installed moto has them."""
    result = _python('''
        import json
        from earlyexit import engine
        from earlyexit.engine.lock import read_lock
        from earlyexit.engine.registry import declared_sources
        declared = declared_sources(engine.ENTRIES)
        print(json.dumps({"recorded": read_lock(), "installed": {k: v[0] for k, v in declared.items()},
                          "fixes": {k: v[1] for k, v in declared.items()}}))
    ''')
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


def test_every_target_a_fix_or_speedup_touches_is_in_the_lock(sources: dict[str, Any]) -> None:
    assert sources["installed"], "no moto target found"
    assert not sources["installed"].keys() - sources["recorded"].keys()
    assert not sources["recorded"].keys() - sources["installed"].keys(), "the lock records targets no entry touches"


def test_the_lock_matches_the_installed_moto(sources: dict[str, Any]) -> None:
    differ = [key for key, digest in sources["installed"].items() if sources["recorded"].get(key) != digest]
    assert not differ, f"moto's source differs from the lock: {differ}"


def test_the_lock_covers_wrapped_methods_inherited_module_globals_and_the_backend_class(
        sources: dict[str, Any]) -> None:
    fixes = sources["fixes"]
    assert "stop_execution_aborts_at_once" in fixes["moto.stepfunctions.responses.StepFunctionResponse.stop_execution"]
    assert "stopped_flows_record_nothing_more" in fixes[
        "moto.stepfunctions.parser.asl.eval.environment.Environment.set_stop"]
    assert "scaled_waits" in fixes["moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time"]
    assert "executions_run_in_the_engine" in fixes["moto.stepfunctions.parser.models.StepFunctionsParserBackend"]


def test_the_lock_check_command_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "earlyexit.engine.lock", "--check"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr[-3000:]


def test_a_changed_source_fails_install_naming_the_fix_and_the_function_and_patches_nothing() -> None:
    result = _python('''
        from moto.stepfunctions.parser import models
        from moto.stepfunctions.responses import StepFunctionResponse
        from earlyexit import engine
        from earlyexit.engine import EngineMismatch
        from earlyexit.errors import EarlyExitError

        def list_executions(self):  # as if moto's ListExecutions had been rewritten
            return None

        StepFunctionResponse.list_executions = list_executions
        before = {name: StepFunctionResponse.__dict__[name] for name in ("stop_execution", "describe_execution")}
        backend = models.stepfunctions_parser_backends.backend
        try:
            engine.install()
        except EngineMismatch as error:
            assert isinstance(error, EarlyExitError)
            print(error)
        assert not engine.installed()
        assert models.stepfunctions_parser_backends.backend is backend
        assert all(StepFunctionResponse.__dict__[name] is value for name, value in before.items())
    ''')
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("fix list_executions_validated replaces moto.stepfunctions.responses.StepFunctionResponse.list_executions"
            " whose source differs from the one it was written for") in result.stdout
    assert "python -m earlyexit.engine.lock --write" in result.stdout


def test_a_recorded_hash_that_differs_fails_install_the_same_way() -> None:
    result = _python('''
        from earlyexit import engine
        from earlyexit.engine import EngineMismatch, lock

        recorded = lock.read_lock()
        target = "moto.stepfunctions.parser.asl.component.state.choice.state_choice.StateChoice._eval_state"
        recorded[target] = "0" * 64
        lock.read_lock = lambda *args: recorded
        engine._registry._lock_file = lock.read_lock
        try:
            engine.install(speedups=False)
        except EngineMismatch as error:
            print(error)
        assert not engine.installed()
    ''')
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("fix choice_without_match_fails_no_choice_matched replaces moto.stepfunctions.parser.asl.component.state."
            "choice.state_choice.StateChoice._eval_state whose source differs") in result.stdout


def test_a_missing_lock_file_fails_install_with_engine_mismatch() -> None:
    result = _python('''
        from pathlib import Path
        from earlyexit import engine
        from earlyexit.engine import EngineMismatch, lock

        engine._registry._lock_file = lambda: lock.read_lock(Path("/nonexistent/moto.lock.json"))
        try:
            engine.install()
        except EngineMismatch as error:
            print(error)
        assert not engine.installed()
    ''')
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the engine's lock of moto's sources cannot be read (nothing was patched)" in result.stdout
