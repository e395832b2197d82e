"""Step Functions Local's mock config file, on the embedded engine.

AWS's format (``MockConfigFile.json``,
https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html)::

    {"StateMachines": {"<state machine name>": {"TestCases": {"<test case>": {"<state>": "<response>"}}}},
     "MockedResponses": {"<response>": {"0": {"Return": {...}}, "1-2": {"Throw": {"Error": "...", "Cause": "..."}}}}}

As in Step Functions Local, ``StartExecution`` with ``stateMachineArn`` ``"<arn>#<test case>"``
runs the state machine with that test case from the file named by ``SFN_MOCK_CONFIG`` (read
when the execution starts); the execution belongs to the state machine itself. Call N of a
named state (the first call and each retry, by the state's ``RetryCount``) gets response N:
a ``Return`` is the result without a call (a ``.waitForTaskToken`` task completes at once), a
``Throw`` fails the task without a call, with the error exactly as given.

This engine adds responses that make the *real* call with a fault (docs/fault-injection.md):
``{"Earlyexit:LostResponse": {"Error": "<wire code>", "Cause": "..."}}`` (applied, then the
error), ``{"Earlyexit:Delay": {"Seconds": 2, "After": true}}``,
``{"Earlyexit:Duplicate": {}}`` and ``{"Earlyexit:Passthrough": {}}`` (the call as it is). A
state whose responses are all of these calls the real service on every attempt.
"""

from __future__ import annotations

import os
from typing import Any

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.faults import Fault, FaultResponse

__all__ = ["ENVIRONMENT_VARIABLE", "is_mocked_attempt", "load_test_case"]

ENVIRONMENT_VARIABLE = "SFN_MOCK_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Throw(_Strict):
    Error: str
    Cause: str


class _LostResponse(_Strict):
    Error: str
    Cause: str | None = None


class _Delay(_Strict):
    Seconds: float = Field(ge=0)
    After: bool = False


class _Nothing(_Strict):
    pass


_KINDS = ("Return", "Throw", "Earlyexit:LostResponse", "Earlyexit:Delay", "Earlyexit:Duplicate",
          "Earlyexit:Passthrough")


class _Response(_Strict):
    Return: RootModel[Any] | None = None
    Throw: _Throw | None = None
    LostResponse: _LostResponse | None = Field(None, alias="Earlyexit:LostResponse")
    Delay: _Delay | None = Field(None, alias="Earlyexit:Delay")
    Duplicate: _Nothing | None = Field(None, alias="Earlyexit:Duplicate")
    Passthrough: _Nothing | None = Field(None, alias="Earlyexit:Passthrough")

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if not isinstance(data, dict) or len(data) != 1 or next(iter(data)) not in _KINDS:
            raise ValueError(f"a mocked response has exactly one of {', '.join(_KINDS)}")
        return data

    def parsed(self, start: int, end: int) -> MockedResponse:
        if self.Return is not None:
            return MockedResponseReturn(range_start=start, range_end=end, payload=self.Return.root)
        if self.Throw is not None:
            return MockedResponseThrow(range_start=start, range_end=end, error=self.Throw.Error, cause=self.Throw.Cause)
        fault = None
        if self.LostResponse is not None:
            fault = Fault.lost_response(self.LostResponse.Error, cause=self.LostResponse.Cause)
        elif self.Delay is not None:
            fault = Fault.delay(self.Delay.Seconds, after=self.Delay.After)
        elif self.Duplicate is not None:
            fault = Fault.duplicate()
        return FaultResponse(start, end, fault)


class _StateMachine(_Strict):
    TestCases: dict[str, dict[str, str]]


class _MockConfig(_Strict):
    StateMachines: dict[str, _StateMachine]
    MockedResponses: dict[str, dict[str, _Response]]


def _range(text: str) -> tuple[int, int]:
    parts = text.strip().split("-")
    if len(parts) not in (1, 2) or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"call numbers '{text}' are neither 'N' nor 'N-M'")
    return int(parts[0]), int(parts[-1])


def load_test_case(state_machine_name: str, test_case_name: str, *, arn: str) -> MockTestCase:
    """Test case ``test_case_name`` of ``state_machine_name`` (started as ``arn``) from the file named by
    SFN_MOCK_CONFIG; raises moto's ValidationException (the StartExecution error) naming what is wrong."""
    if not test_case_name:
        raise ValidationException(f"Invalid State Machine Arn: '{arn}' names no test case.")
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
    test_case = state_machine.TestCases.get(test_case_name)
    if test_case is None:
        raise ValidationException(
            f"Test case '{test_case_name}' is not defined for state machine '{state_machine_name}' in the mock "
            f"config file '{path}' (defined: {', '.join(sorted(state_machine.TestCases)) or 'none'}).")
    try:
        states = []
        for state, response_name in test_case.items():
            if response_name not in config.MockedResponses:
                raise ValueError(f"state '{state}' names response '{response_name}', which MockedResponses "
                                 "does not define")
            responses = [response.parsed(*_range(calls))
                         for calls, response in config.MockedResponses[response_name].items()]
            states.append(StateMockedResponses(state_name=state, mocked_response_name=response_name,
                                               mocked_responses=responses))
        return MockTestCase(state_machine_name=state_machine_name, test_case_name=test_case_name,
                            state_mocked_responses_list=states)
    except (RuntimeError, ValueError) as error:  # a gap in the call numbers, an unknown response name
        raise ValidationException(f"Invalid test case '{test_case_name}' in '{path}': {error}") from None


def is_mocked_attempt(env: EngineEnvironment) -> bool:
    """Whether this attempt of the current state is answered by the test case without a call: a ``Return``
    or ``Throw`` response (or none left: moto then fails the state naming the missing call number)."""
    test_case = env.mock_test_case
    if test_case is None:
        return False
    responses = test_case.state_mocked_responses.get(env.next_state_name)
    if responses is None:
        return False
    attempt = env.states.context_object.context_object_data.get("State", {}).get("RetryCount", 0)
    return attempt >= len(responses.mocked_responses) or \
        not isinstance(responses.mocked_responses[attempt], FaultResponse)
