"""Distributed Map states as AWS runs them: failure thresholds and item readers that cannot read.

Each fix here restores a behaviour the Step Functions Developer Guide documents and that moto 5.2.5's
interpreter gets wrong; ``tests/test_engine_aws_reference.py`` shows each one on the engine.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.item_reader_decl import ItemReader
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

if TYPE_CHECKING:
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from earlyexit.engine.registry import Patcher

__all__ = ["distributed_maps_fail_past_their_tolerance", "tolerated_failure_percentage_read_as_a_number",
           "unreadable_items_fail_item_reader_failed"]


def _failure(env: Environment, typ: StatesErrorNameType, cause: str) -> FailureEventException:
    error = StatesErrorName(typ=typ)
    return FailureEventException(FailureEvent(
        env=env, error_name=error, event_type=HistoryEventType.ExecutionFailed,
        event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
            error=error.error_name, cause=cause))))


def distributed_maps_fail_past_their_tolerance(p: Patcher) -> None:
    """A Distributed Map fails with ``States.ExceedToleratedFailureThreshold`` once more of its items fail than
    ToleratedFailureCount and ToleratedFailurePercentage allow (both 0 unless set: any failed item fails it);
    moto counted failed items and let the Map succeed whatever their number. The Developer Guide does not say
    how the two thresholds combine when both are set: the Map fails when both are exceeded, which gives each
    one its documented meaning when it is the only one set.

    Test: tests/test_engine_aws_reference.py::test_tolerated_failures_of_a_distributed_map
    https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
    """
    original = p.original(DistributedIterationComponent, "_map_run")

    def map_run(self: DistributedIterationComponent, env: Environment, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        failed, total = record.item_counter.failed.get(), record.item_counter.total.get()
        if failed > record.tolerated_failure_count and failed * 100 > record.tolerated_failure_percentage * total:
            raise _failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                           f"The specified tolerated failure threshold was exceeded: {failed} of {total} items "
                           "failed.")

    p.replace(DistributedIterationComponent, "_map_run", map_run)


def unreadable_items_fail_item_reader_failed(p: Patcher) -> None:
    """A Map whose ItemReader cannot read its source (a missing S3 object, items that are not the JSON or CSV
    its ReaderConfig names) fails with ``States.ItemReaderFailed`` ("A Map state failed because it couldn't
    read from the item source specified in the ItemReader field"); moto failed it with States.Runtime. Errors
    of the reader's Parameters keep their names. The cause's wording is not documented: it is the reader's
    error.

    Test: tests/test_engine_aws_reference.py::test_an_item_reader_that_cannot_read_fails_item_reader_failed
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.original(ItemReader, "_eval_body")

    def eval_body(self: ItemReader, env: Environment) -> None:
        # moto's, with the reading itself (the resource and its output's transformer) made ItemReaderFailed.
        resource_config = None
        if self.reader_config:
            self.reader_config.eval(env=env)
            resource_config = env.stack.pop()
        if self.parargs:
            self.parargs.eval(env=env)
        else:
            env.stack.append({})
        try:
            self.resource_eval.eval_resource(env=env)
            if self.reader_config:
                env.stack.append(resource_config)
                self.resource_output_transformer.eval(env=env)
        except (ClientError, ValueError) as unreadable:
            raise _failure(env, StatesErrorNameType.StatesItemReaderFailed, str(unreadable)) from unreadable

    p.replace(ItemReader, "_eval_body", eval_body)


# An integer ToleratedFailurePercentage field (a JSON number without a fraction).
_INTEGER_PERCENTAGE = re.compile(r'("ToleratedFailurePercentage"\s*:\s*)(\d+)(?=\s*[,}])')


def tolerated_failure_percentage_read_as_a_number(p: Patcher) -> None:
    """ToleratedFailurePercentage is a number from 0 to 100, written as any JSON number (``50`` as well as
    ``50.0``); moto's grammar took only a number with a fraction and refused the definition
    (SCHEMA_VALIDATION_FAILED) otherwise. The definition's text is parsed with that field's integer written
    with a fraction.

    Test: tests/test_engine_aws_reference.py::test_tolerated_failures_of_a_distributed_map
    https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
    """
    original = p.original(AmazonStateLanguageParser, "parse")

    def parse(definition: str) -> Any:
        return original(_INTEGER_PERCENTAGE.sub(r"\1\2.0", definition))

    p.replace(AmazonStateLanguageParser, "parse", staticmethod(parse))
