"""Step Functions Local's mock config file, wired into moto's interpreter.

AWS's format (``MockConfigFile.json``)::

    {"StateMachines": {"<state machine name>": {"TestCases": {"<test case>": {"<state>": "<response>"}}}},
     "MockedResponses": {"<response>": {"0": {"Return": {...}}, "1-2": {"Throw": {"Error": "...", "Cause": "..."}}}}}

As in Step Functions Local, ``StartExecution`` with ``stateMachineArn`` ``"<arn>#<test case>"``
runs the state machine with that test case from the file named by ``SFN_MOCK_CONFIG``
(read when the execution starts). The execution belongs to the state machine itself
(``arn:...:execution:<state machine name>:<name>``). A mocked task never calls its
service: call N (the first call and each retry, by the state's ``RetryCount``) gets
response N, a ``Return`` as the result (a ``.waitForTaskToken`` task completes at once,
without a callback), a ``Throw`` as a task failure that Retry and Catch see. States the
test case does not name run for real.

moto 5.2.5 ships the interpreter side (``moto.stepfunctions.parser.mocking``,
``Environment.is_mocked_mode``) but never hands a test case to an execution; this module
parses the file into moto's ``MockTestCase`` and passes it on.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.mocking.mock_config import MockTestCase, _mock_test_case_from_raw
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError, model_validator

__all__ = ["ENVIRONMENT_VARIABLE", "install", "load_test_case"]

ENVIRONMENT_VARIABLE = "SFN_MOCK_CONFIG"


# The file's shape, as moto's parser (_mock_test_case_from_raw) reads it.

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Return(RootModel[Any]):
    pass


class _Throw(_Strict):
    Error: str
    Cause: str


class _Response(_Strict):
    Return: _Return | None = None
    Throw: _Throw | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if not isinstance(data, dict) or sum(data.get(key) is not None for key in ("Return", "Throw")) != 1:
            raise ValueError("a mocked response has exactly one of 'Return' or 'Throw'")
        return data


class _TestCase(RootModel[dict[str, str]]):
    pass


class _StateMachine(_Strict):
    TestCases: dict[str, _TestCase]


class _MockConfig(_Strict):
    StateMachines: dict[str, _StateMachine]
    MockedResponses: dict[str, dict[str, _Response]]


def load_test_case(state_machine_name: str, test_case_name: str) -> MockTestCase:
    """Test case ``test_case_name`` of ``state_machine_name`` from the file named by SFN_MOCK_CONFIG."""
    path = os.environ.get(ENVIRONMENT_VARIABLE)
    if not path:
        raise ValidationException(f"Test case '{test_case_name}' requested, but {ENVIRONMENT_VARIABLE} "
                                  "names no mock config file.")
    try:
        with open(path, encoding="utf-8") as file:
            config = _MockConfig.model_validate_json(file.read())
    except OSError as error:
        raise ValidationException(f"Cannot read the mock config file '{path}': {error}") from None
    except ValidationError as error:
        raise ValidationException(f"Invalid mock config file '{path}': {error}") from None
    state_machine = config.StateMachines.get(state_machine_name)
    if state_machine is None:
        raise ValidationException(f"State machine '{state_machine_name}' is not defined in the mock config "
                                  f"file '{path}' (defined: {', '.join(sorted(config.StateMachines)) or 'none'}).")
    if test_case_name not in state_machine.TestCases:
        raise ValidationException(
            f"Test case '{test_case_name}' is not defined for state machine '{state_machine_name}' in the mock "
            f"config file '{path}' (defined: {', '.join(sorted(state_machine.TestCases)) or 'none'}).")
    try:
        return _mock_test_case_from_raw(state_machine_name, test_case_name, config)
    except (RuntimeError, ValueError) as error:  # a missing response name, a gap in the call numbers
        raise ValidationException(f"Invalid test case '{test_case_name}' in '{path}': {error}") from None


# The wiring: StartExecution peels "#TestCase" off the ARN, loads the test case, and the
# worker the execution creates (in the same thread, before it starts) receives it.

_installed = False
_install_lock = threading.Lock()
_starting = threading.local()


def install() -> None:
    """Wire the mock config into moto's interpreter (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        original_start = StepFunctionsParserBackend.start_execution
        original_worker = Execution._get_start_execution_worker

        def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: str | None = None,
                            execution_input: str | None = None, trace_header: str | None = None) -> Execution:
            arn, separator, test_case_name = state_machine_arn.partition("#")
            if not separator:
                return original_start(self, state_machine_arn, name, execution_input, trace_header)
            if not test_case_name:
                raise ValidationException(f"Invalid State Machine Arn: '{state_machine_arn}' names no test case.")
            test_case = load_test_case(self.describe_state_machine(arn).name, test_case_name)
            _starting.test_case = test_case
            try:
                return original_start(self, arn, name, execution_input, trace_header)
            finally:
                _starting.test_case = None

        def get_start_execution_worker(self: Execution) -> ExecutionWorker:
            worker = original_worker(self)
            test_case = getattr(_starting, "test_case", None)
            if test_case is not None:
                worker._mock_test_case = test_case  # type: ignore[misc]  # noqa: SLF001
            return worker

        StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
        Execution._get_start_execution_worker = get_start_execution_worker  # type: ignore[method-assign]
        _installed = True
