"""The embedded engine: moto's Step Functions interpreter, fixed to behave as AWS Step Functions does.

moto (pinned exactly, with jsonata-python) ports LocalStack's ASL interpreter; on the points
these patterns rely on it deviates from AWS. The engine has three parts, one package each:

- :mod:`earlyexit.engine.runtime`: the shared runtime (the engine's backend, execution and
  environment classes, task tokens, the fault model, JSONata evaluation, in-process Lambda
  functions, the verdict on definitions); it imports no fix or speed-up. Its one entry,
  :data:`RUNTIME`, makes moto's backends the engine's.
- :mod:`earlyexit.engine.fixes`: :data:`FIXES`, each one behaviour, named after it, whose
  docstring states the AWS behaviour, links AWS's documentation and names the test that proves it.
- :mod:`earlyexit.engine.speedups`: :data:`SPEEDUPS`, each performance only, proven equal to what
  it replaces by ``tests/test_engine_speedups.py`` (same outcome, output and history).

This module composes them. :func:`install` applies the runtime, every fix and the speed-ups
(all, or ``speedups=False``, or a selection by name), checked first, all or nothing;
:func:`uninstall` restores moto as it was; both are reference-counted, so ``embedded_cloud``
blocks may nest and run beside ``earlyexit serve``.

Installing checks moto's code, not only its version: ``moto.lock.json`` records the SHA-256 of
the source of every moto and jsonata-python function or class an entry replaces or wraps, and a
difference raises :class:`EngineMismatch` naming the fix and the function. After reviewing the
fixes against a new moto, regenerate it with ``python -m earlyexit.engine.lock --write``
(``--check`` compares).
"""

from __future__ import annotations

from collections.abc import Collection

from earlyexit.engine.registry import PINS, EngineMismatch, Registry, check_versions

check_versions()  # a different moto or jsonata-python fails here, naming both versions, before its internals load

from earlyexit.engine.fixes import (  # noqa: E402 - after the version check
    asl,
    definitions,
    dynamodb,
    events,
    executions,
    faults,
    functions,
    histories,
    jsonata,
    jsonpath,
    limits,
    maps,
    mock_config,
    queues,
    services,
    shapes,
    stopping,
    task_errors,
    tokens,
    waits,
)
from earlyexit.engine.runtime import backend  # noqa: E402
from earlyexit.engine.runtime.backend import max_finished_executions, set_max_finished_executions  # noqa: E402
from earlyexit.engine.runtime.faults import FAULTS, Fault, FaultInjector, FaultRule, FiredFault  # noqa: E402
from earlyexit.engine.runtime.jsonata import evaluate_jsonata  # noqa: E402
from earlyexit.engine.runtime.waits import set_wait_time_scale, wait_time_scale  # noqa: E402
from earlyexit.engine.speedups import dynamodb as dynamodb_speedups  # noqa: E402
from earlyexit.engine.speedups import evaluation, responses, states  # noqa: E402
from earlyexit.engine.speedups import services as service_speedups  # noqa: E402

__all__ = ["ENTRIES", "FAULTS", "FIXES", "PINS", "RUNTIME", "SPEEDUPS", "EngineMismatch", "Fault", "FaultInjector",
           "FaultRule", "FiredFault", "evaluate_jsonata", "install", "installed", "installed_speedups",
           "max_finished_executions", "set_max_finished_executions", "set_wait_time_scale", "uninstall",
           "wait_time_scale"]

RUNTIME = (backend.executions_run_in_the_engine,)

FIXES = (
    executions.start_execution_as_aws,
    executions.engine_faults_fail_the_execution,
    executions.executions_end_once_with_their_output,
    executions.stopped_flows_record_nothing_more,
    jsonata.jsonata_evaluated_as_aws,
    jsonata.non_boolean_conditions_fail_query_evaluation,
    jsonata.string_keeps_characters_as_javascript_does,
    dynamodb.atomic_item_writes,
    tokens.tokens_end_with_their_task_attempt,
    tokens.answers_to_ended_tasks_time_out,
    tokens.callback_errors_keep_their_name,
    stopping.stop_execution_aborts_at_once,
    stopping.branch_errors_keep_their_name,
    stopping.failed_iteration_stops_the_others,
    stopping.stopped_flows_end_quietly,
    mock_config.mocked_throws_keep_their_name,
    mock_config.extension_responses_call_the_service,
    services.service_errors_named_as_aws,
    waits.scaled_waits,
    waits.timestamps_waited_until_in_utc,
    faults.injected_service_faults,
    limits.send_task_requests_validated,
    functions.lambda_functions_run_in_process,
    functions.rules_invoke_functions,
    queues.queue_operations_thread_safe,
    events.event_rules_thread_safe,
    histories.history_paged_as_aws,
    histories.describe_execution_as_aws,
    asl.choice_without_match_fails_no_choice_matched,
    asl.states_all_leaves_terminal_errors,
    asl.error_output_cause_only_when_there_is_one,
    asl.intrinsic_null_arguments_kept,
    asl.context_times_as_aws_strings,
    asl.state_context_as_aws,
    asl.definition_strings_read_as_json,
    jsonpath.definite_paths_select_one_value,
    jsonpath.result_path_match_failure,
    jsonpath.string_format_placeholders_only,
    jsonpath.string_matches_as_aws,
    task_errors.heartbeat_timeouts_caught_by_name,
    maps.distributed_maps_fail_past_their_tolerance,
    maps.unreadable_items_fail_item_reader_failed,
    maps.tolerated_failure_percentage_read_as_a_number,
    definitions.definitions_parsed_independently,
    definitions.definitions_validated_as_aws,
    definitions.validate_state_machine_definition,
    shapes.list_executions_validated,
    shapes.describe_state_machine_for_execution_as_aws,
)

SPEEDUPS = (
    evaluation.programs_parsed_once,
    evaluation.thread_registry_off,
    evaluation.tasks_without_a_timeout_run_inline,
    evaluation.programs_without_a_timeout_run_inline,
    evaluation.quiet_workflow_errors,
    states.states_copied_as_json,
    dynamodb_speedups.update_expressions_parsed_once,
    service_speedups.reuse_service_clients,
    service_speedups.event_paths_compiled_once,
    service_speedups.requests_dispatched_fast,
    responses.responses_encoded_fast,
)

ENTRIES = RUNTIME + FIXES + SPEEDUPS


def _last_holder_left() -> None:
    backend.stop_running_executions()
    FAULTS.clear()


_registry = Registry(RUNTIME + FIXES, optional=SPEEDUPS, on_last_uninstall=_last_holder_left)


def install(*, speedups: bool | Collection[str] | None = None) -> None:
    """Apply the runtime, every fix and the speed-ups to moto, or count one more holder if they are applied.

    ``speedups``: True every speed-up, False none, or the names of those wanted; None (the default) every
    one for the first holder, and whatever is applied for the others. A holder that asks for other speed-ups
    than those applied is refused (:class:`~earlyexit.errors.EarlyExitError`). Raises
    :class:`EngineMismatch` (nothing patched) if moto or jsonata-python is not the pinned version, lacks an
    internal an entry targets, or has code that differs from the lock.
    """
    if speedups is None or speedups is True:
        chosen = None if speedups is None else [fix.__name__ for fix in SPEEDUPS]
    else:
        chosen = [] if speedups is False else list(speedups)
    _registry.install(optional=chosen)


def uninstall() -> None:
    """Count one holder less; the last one aborts the engine's running executions, clears the fault rules
    and restores moto as it was before :func:`install`."""
    _registry.uninstall()


def installed() -> bool:
    """Whether the engine is applied (some holder has not uninstalled)."""
    return _registry.holders > 0


def installed_speedups() -> frozenset[str]:
    """The names of the speed-ups applied (empty while the engine is not installed)."""
    return _registry.chosen
