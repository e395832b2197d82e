"""The fix registry: it refuses what it was not written for, applies all or nothing, and restores moto exactly."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from dataclasses import FrozenInstanceError, dataclass

import pytest
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit import engine
from earlyexit.engine.registry import EngineMismatch, Patcher, Registry
from earlyexit.errors import EarlyExitError

pytestmark = pytest.mark.engine


def test_another_moto_version_fails_install_naming_the_expected_and_the_found_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "5.3.0" if name == "moto" else real(name))
    with pytest.raises(EngineMismatch, match=r"moto 5\.2\.5 expected, found 5\.3\.0"):
        Registry(engine.FIXES).install()


def test_a_missing_patch_target_fails_install_naming_it_and_nothing_is_patched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As if moto renamed DynamoHandler.transact_get_items (no test here calls it).
    monkeypatch.setattr(DynamoHandler, "transact_get_items_renamed", DynamoHandler.transact_get_items, raising=False)
    monkeypatch.delattr(DynamoHandler, "transact_get_items")
    before = StepFunctionResponse.describe_execution
    registry = Registry(engine.FIXES)
    with pytest.raises(EngineMismatch, match=r"atomic_item_writes: .*DynamoHandler\.transact_get_items"):
        registry.install()
    assert StepFunctionResponse.describe_execution is before
    assert registry.holders == 0


class _Target:
    value = "original"


class _Child(_Target):
    pass


@dataclass(frozen=True)
class _Frozen:
    value: str = "original"


def test_a_failure_midway_undoes_what_was_applied() -> None:
    frozen = _Frozen()

    def first(p: Patcher) -> None:
        p.replace(_Target, "value", "patched")

    def second(p: Patcher) -> None:
        p.replace(frozen, "value", "patched")  # exists, but cannot be set

    registry = Registry([first, second])
    with pytest.raises(FrozenInstanceError):
        registry.install()
    assert (_Target.value, frozen.value, registry.holders) == ("original", "original", 0)


def test_install_is_reference_counted_and_the_last_uninstall_restores_exactly() -> None:
    undone = []

    def fix(p: Patcher) -> None:
        p.replace(_Child, "value", "patched")  # _Child inherits value: uninstall must delete its own copy
        p.hook(lambda: None, lambda: undone.append("hook"))

    registry = Registry([fix])
    registry.install()
    registry.install()
    registry.uninstall()
    assert (_Child.value, registry.holders, undone) == ("patched", 1, [])
    registry.uninstall()
    assert (_Child.value, "value" in vars(_Child), registry.holders, undone) == ("original", False, 0, ["hook"])
    with pytest.raises(EarlyExitError, match="without a matching install"):
        registry.uninstall()


def test_embedded_cloud_installs_nested_and_leaves_the_process_as_it_found_it() -> None:
    # In a fresh interpreter: the session's engine is installed here.
    script = textwrap.dedent('''
        import json, threading
        from earlyexit import engine
        from earlyexit.engine.registry import Patcher
        from earlyexit.local import embedded_cloud
        from earlyexit.polling import wait_until

        def snapshot():
            found = {}
            for fix in engine.ENTRIES:
                patcher = Patcher(fix.__name__)
                fix(patcher)
                for step in patcher.steps:
                    if hasattr(step, "owner"):
                        found[(id(step.owner), step.name)] = vars(step.owner).get(step.name, "absent")
            return found

        before, threads = snapshot(), threading.active_count()
        with embedded_cloud() as outer:
            with embedded_cloud():
                pass
            assert engine.installed(), "the inner block uninstalled the outer one's engine"
            sfn, iam = outer.client("stepfunctions"), outer.client("iam")
            role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            ask = {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
                   "Arguments": {"Entries": [{"Source": "s", "DetailType": "d",
                                              "Detail": {"t": "{% $states.context.Task.Token %}"}}]}, "End": True}
            arn = sfn.create_state_machine(name="m", roleArn=role, definition=json.dumps(
                {"QueryLanguage": "JSONata", "StartAt": "Ask", "States": {"Ask": ask}}))["stateMachineArn"]
            execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
            wait_until(lambda: any(e["type"] == "TaskSubmitted" for e in
                                   sfn.get_execution_history(executionArn=execution)["events"]),
                       timeout=10, what="the callback wait")
        assert not engine.installed()
        changed = [key for key, value in snapshot().items() if before.get(key) is not value]
        assert not changed, changed
        wait_until(lambda: threading.active_count() <= threads, timeout=10, what="the waiting execution's threads")
        print("ok")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-3000:]


class _Optional:
    fast = "original"


def test_optional_entries_are_applied_as_chosen_and_a_holder_asking_for_others_is_refused() -> None:
    def fix(p: Patcher) -> None:
        p.replace(_Target, "value", "fixed")

    def fast(p: Patcher) -> None:
        p.replace(_Optional, "fast", "fast")

    registry = Registry([fix], optional=[fast])
    registry.install(optional=[])
    assert (_Target.value, _Optional.fast, registry.chosen) == ("fixed", "original", frozenset())
    registry.install()  # no choice: whatever is applied
    with pytest.raises(EarlyExitError, match="installed with other speed-ups"):
        registry.install(optional=["fast"])
    with pytest.raises(EarlyExitError, match="no such optional engine entries: slow"):
        registry.install(optional=["slow"])
    registry.uninstall()
    registry.uninstall()
    registry.install()
    assert (_Target.value, _Optional.fast, registry.chosen) == ("fixed", "fast", frozenset({"fast"}))
    registry.uninstall()
    assert (_Target.value, _Optional.fast, registry.holders) == ("original", "original", 0)


def test_the_engine_names_its_speedups_and_installs_without_them_in_a_fresh_process() -> None:
    script = textwrap.dedent('''
        from moto.core.responses import ActionResult
        from earlyexit import engine
        before = ActionResult.execute_result
        engine.install(speedups=False)
        assert engine.installed_speedups() == frozenset()
        assert ActionResult.execute_result is before  # responses_encoded_fast is not applied
        engine.install()
        engine.uninstall()
        engine.uninstall()
        engine.install(speedups=["responses_encoded_fast"])
        assert engine.installed_speedups() == {"responses_encoded_fast"}
        assert ActionResult.execute_result is not before
        engine.uninstall()
        print("ok")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-3000:]
