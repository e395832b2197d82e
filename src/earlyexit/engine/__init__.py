"""The embedded engine: moto's Step Functions interpreter, fixed to behave as AWS Step Functions does.

moto (pinned exactly, with jsonata-python) ports LocalStack's ASL interpreter; on the points
these patterns rely on it deviates from AWS. Each fix is a named function in the module of
its concern, whose docstring states the AWS behaviour it restores and links AWS's
documentation; ``tests/test_engine*.py`` show each behaviour on the engine.

:func:`install` applies every fix (checked first, all or nothing) and :func:`uninstall`
restores moto as it was; both are reference-counted, so ``embedded_cloud`` blocks may nest
and run beside ``earlyexit serve``.
"""

from __future__ import annotations

from earlyexit.engine.registry import PINS, EngineMismatch, Registry, check_versions

check_versions()  # a different moto or jsonata-python fails here, naming both versions, before its internals load

from earlyexit.engine import (  # noqa: E402 - after the version check
    asl,
    definitions,
    dynamodb,
    faults,
    functions,
    histories,
    jsonata,
    limits,
    mock_config,
    queues,
    runtime,
    services,
    shapes,
    stop,
    tokens,
    waits,
)
from earlyexit.engine.faults import FAULTS, Fault, FaultInjector, FaultRule, FiredFault  # noqa: E402
from earlyexit.engine.jsonata import evaluate_jsonata  # noqa: E402
from earlyexit.engine.runtime import max_finished_executions, set_max_finished_executions  # noqa: E402
from earlyexit.engine.waits import set_wait_time_scale, wait_time_scale  # noqa: E402

__all__ = ["FAULTS", "FIXES", "PINS", "EngineMismatch", "Fault", "FaultInjector", "FaultRule", "FiredFault",
           "evaluate_jsonata", "install", "installed", "max_finished_executions", "set_max_finished_executions",
           "set_wait_time_scale", "uninstall", "wait_time_scale"]

FIXES = (
    runtime.engine_runtime,
    runtime.shared_programs,
    runtime.thread_registry_off,
    runtime.tasks_without_a_timeout_run_inline,
    runtime.programs_without_a_timeout_run_inline,
    runtime.quiet_workflow_errors,
    jsonata.jsonata_evaluator,
    jsonata.states_copied_as_json,
    dynamodb.atomic_item_writes,
    dynamodb.update_expressions_parsed_once,
    tokens.tokens_end_with_their_task_attempt,
    tokens.callback_errors_keep_their_name,
    stop.stop_execution_aborts_at_once,
    stop.branch_errors_keep_their_name,
    stop.failed_iteration_stops_the_others,
    stop.stopped_flows_end_quietly,
    mock_config.mocked_throws_keep_their_name,
    services.service_errors_named_as_aws,
    services.reuse_service_clients,
    services.event_paths_compiled_once,
    services.requests_dispatched_fast,
    waits.scaled_waits,
    faults.injected_service_faults,
    limits.send_task_requests_validated,
    functions.lambda_functions_run_in_process,
    functions.rules_invoke_functions,
    queues.queue_operations_thread_safe,
    histories.history_and_describe_as_aws,
    histories.responses_encoded_fast,
    asl.choice_without_match_fails_no_choice_matched,
    asl.states_all_leaves_terminal_errors,
    asl.error_output_cause_only_when_there_is_one,
    asl.intrinsic_null_arguments_kept,
    asl.context_times_as_aws_strings,
    asl.definition_strings_read_as_json,
    definitions.definitions_parsed_independently,
    definitions.definitions_validated_as_aws,
    definitions.validate_state_machine_definition,
    shapes.list_executions_validated,
    shapes.describe_state_machine_for_execution_as_aws,
)


def _last_holder_left() -> None:
    runtime.stop_running_executions()
    FAULTS.clear()


_registry = Registry(FIXES, on_last_uninstall=_last_holder_left)


def install() -> None:
    """Apply every fix to moto's interpreter, or count one more holder if they are applied.

    Raises :class:`EngineMismatch` (nothing patched) if moto or jsonata-python is not the pinned
    version or lacks an internal a fix targets.
    """
    _registry.install()


def uninstall() -> None:
    """Count one holder less; the last one aborts the engine's running executions, clears the fault rules
    and restores moto as it was before :func:`install`."""
    _registry.uninstall()


def installed() -> bool:
    """Whether the fixes are applied (some holder has not uninstalled)."""
    return _registry.holders > 0
