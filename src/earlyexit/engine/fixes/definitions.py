"""State machine definitions read and validated as AWS reads and validates them, in one place.

The verdict is :func:`earlyexit.engine.runtime.definitions.diagnostics`; CreateStateMachine,
UpdateStateMachine (and so the local deploy) and ValidateStateMachineDefinition all ask it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.asl.parse import preprocessor as asl_preprocessor
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine.runtime.definitions import refuse_invalid, validation_result
from earlyexit.engine.runtime.validation import validate_request

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["definitions_parsed_independently", "definitions_validated_as_aws", "validate_state_machine_definition"]


def definitions_parsed_independently(p: Patcher) -> None:
    """Each definition is read on its own: the query language of one never applies to the next. moto's ASL
    preprocessor kept its stack of query-language scopes in a list shared by every instance (a class
    attribute); a definition refused while a JSONata scope was open (``Parameters`` in a JSONata state) left
    that scope on the stack, and every later definition without a QueryLanguage of its own (in the process,
    in any embedded cloud) was read as JSONata, so valid JSONPath definitions (Parameters, ResultPath, a
    Choice with Not) were refused. Here each preprocessor has its own stack. AWS reads a definition without
    QueryLanguage as JSONPath ("QueryLanguage (Optional; when omitted, defaults to JSONPath)").

    Test:
    tests/test_engine_definitions.py::test_after_a_refused_jsonata_definition_valid_ones_of_every_query_language_are_created
    https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html
    """
    preprocessor = asl_preprocessor.Preprocessor
    original_init = p.original(preprocessor, "__init__")
    p.original(preprocessor, "_query_language_per_scope")

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._query_language_per_scope = []

    p.replace(preprocessor, "__init__", init)


def definitions_validated_as_aws(p: Patcher) -> None:
    """CreateStateMachine and UpdateStateMachine refuse a definition AWS refuses, with InvalidDefinition naming
    each problem ("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: X at
    /States/A/Next'"): a ``Next``, ``Default`` or ``StartAt`` naming no state of its scope (a Parallel branch
    or a Map's ItemProcessor is a scope of its own, so a branch cannot go to a state outside it), a state
    unreachable from StartAt (AWS: ``State "X" is not reachable.``), ``Next`` in a member of a Choice rule's
    ``And``, ``Or`` or ``Not``, ``Output`` or ``Arguments`` in a JSONPath state, ``InputPath``,
    ``Parameters``, ``ResultSelector``, ``ResultPath`` or ``OutputPath`` in a JSONata state, an ``Assign`` of
    a name that is not a variable name (``$x``) or is reserved (``states``: ``$states``), an unknown state
    Type, a duplicated state name, a state with neither Next nor End, a retrier or catcher with ``States.ALL``
    that is not the last of its Retry or Catch (concepts-error-handling.html). moto accepted most of them (and
    ran into them at execution time). The same verdict as ValidateStateMachineDefinition (:func:`diagnostics`).

    The codes and the location format (``/States/<StateName>/<FieldName>``) are the API reference's; the
    unreachable-state message is the one AWS answers (not in its documentation: as reproduced against AWS in
    LocalStack's pull request 12487). The variable-name rule follows workflow-variables.html (the reserved
    variable ``$states``; names are written with ``$`` only where they are read); the identifier rule and the
    80-character limit could not be confirmed from the documentation text available here and follow the
    rule for state names and JSONata identifiers.

    Tests: tests/test_engine_definitions.py::test_an_invalid_definition_fails_validation_with_aws_s_code_and_location,
    tests/test_engine_definitions.py::test_the_refusal_names_the_problem_as_aws_words_it,
    tests/test_engine_aws_reference.py::test_states_all_must_be_the_last_catcher
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html
    https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
    https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
    https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-choice-state.html
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.original(StepFunctionsParserBackend, "_validate_definition")
    p.replace(StepFunctionsParserBackend, "_validate_definition", staticmethod(refuse_invalid))


def validate_state_machine_definition(p: Patcher) -> None:
    """ValidateStateMachineDefinition answers ``{"result": "OK"|"FAIL", "diagnostics": [...], "truncated":
    false}`` with the same checks as CreateStateMachine (``severity`` ERROR, the default, lists only errors;
    ``maxResults`` 0 or absent is 100); a request that breaks the API's constraints (an empty definition, a
    ``type`` or ``severity`` outside its values, ``maxResults`` above 100) is a ValidationException. moto
    had no such operation (an endpoint answered it as unknown).

    Tests: tests/test_engine_definitions.py::test_the_module_verdict_is_the_operation_s,
    tests/test_engine_definitions.py::test_validate_state_machine_definition_through_the_local_endpoint
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html
    """
    def backend_validate(self: StepFunctionBackend, definition: str, *, severity: str | None = None,
                         max_results: int | None = None) -> dict[str, Any]:
        return validation_result(definition, severity=severity, max_results=max_results)

    def respond(self: StepFunctionResponse) -> ActionResult:
        params = {name: self._get_param(name) for name in ("definition", "type", "severity", "maxResults")}
        validate_request("ValidateStateMachineDefinition", params)
        return ActionResult(self.stepfunction_backend.validate_state_machine_definition(
            params["definition"], severity=params["severity"], max_results=params["maxResults"]))

    p.add(StepFunctionBackend, "validate_state_machine_definition", backend_validate)
    p.add(StepFunctionResponse, "validate_state_machine_definition", respond)
