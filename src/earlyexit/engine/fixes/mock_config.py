"""Step Functions Local's mock config file on the engine: mocked responses as Step Functions Local gives them.

The file and its ``Earlyexit:`` extension are read by :mod:`earlyexit.engine.runtime.mock_config`
(https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils

from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.mock_config import is_mocked_attempt
from earlyexit.engine.runtime.services import reported_error_name

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["extension_responses_call_the_service", "mocked_throws_keep_their_name"]


def mocked_throws_keep_their_name(p: Patcher) -> None:
    """A mocked ``Throw`` fails the task with its error exactly as given, ``States.*`` names included
    (``States.Timeout`` simulates a timed-out task); moto raised ValueError for a ``States.`` name.

    Test: tests/test_engine_faults.py::test_mock_config_extension_responses_call_the_real_service
    https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html
    """
    p.replace(mock_eval_utils, "CustomErrorName", reported_error_name)


def extension_responses_call_the_service(p: Patcher) -> None:
    """An attempt answered by a response of the ``Earlyexit:`` extension (a lost response, a delay, a
    duplicate, a passthrough) calls the real service, with the fault; an attempt answered by ``Return`` or
    ``Throw`` (or with no response left) is mocked, as in Step Functions Local. moto mocked every attempt of
    a state the test case names.

    Test: tests/test_engine_faults.py::test_mock_config_extension_responses_call_the_real_service
    https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html
    """
    p.original(EngineEnvironment, "is_mocked_mode")
    p.replace(EngineEnvironment, "is_mocked_mode", is_mocked_attempt)
