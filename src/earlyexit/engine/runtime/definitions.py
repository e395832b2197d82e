"""State machine definitions validated as AWS validates them, in one place.

``CreateStateMachine``, ``UpdateStateMachine`` (and so the local deploy, which creates state
machines through the API) and ``ValidateStateMachineDefinition`` all ask :func:`diagnostics`
for their verdict: Create and Update refuse a definition with an ERROR diagnostic with
``InvalidDefinition`` ("Invalid State Machine Definition: 'CODE: message at location, ...'",
as AWS words it), and ValidateStateMachineDefinition returns the diagnostics themselves
(``result`` OK or FAIL, ``diagnostics`` of ``severity``, ``code``, ``message``, ``location``,
``truncated``), https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html.

The checks here are the ones the Amazon States Language and the Developer Guide state, with the
diagnostic codes the API reference lists (INVALID_JSON_DESCRIPTION, MISSING_DESCRIPTION,
SCHEMA_VALIDATION_FAILED, MISSING_TRANSITION_TARGET, DUPLICATE_STATE_NAME, INVALID_STATE_NAME);
whatever they let through is then parsed by moto's ASL parser, whose refusal is a
SCHEMA_VALIDATION_FAILED diagnostic. The warnings AWS may add (NO_DOLLAR, NO_PATH,
PASS_RESULT_IS_STATIC) are not produced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from moto.stepfunctions.parser.api import InvalidDefinition
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

__all__ = ["DEFAULT_MAX_DIAGNOSTICS", "Diagnostic", "diagnostics", "invalid_definition", "refuse_invalid",
           "validation_result"]

DEFAULT_MAX_DIAGNOSTICS = 100

_STATE_TYPES = ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
_WITHOUT_NEXT_OR_END = ("Choice", "Succeed", "Fail")
_WITH_ASSIGN = ("Pass", "Task", "Map", "Parallel", "Choice", "Wait")
_QUERY_LANGUAGES = ("JSONPath", "JSONata")
# transforming-data.html: with JSONata "your workflow fields reduce from five JSONPath fields (InputPath,
# Parameters, ResultSelector, ResultPath, and OutputPath) to only two fields: Arguments and Output".
_JSONPATH_ONLY = ("InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath")
_JSONATA_ONLY = ("Arguments", "Output")
_MAX_NAME = 80
_MOTO_WRONG_LANGUAGE = re.compile(r"Unsupported declaration in QueryLanguage=(\w+) block: (.*)", re.DOTALL)


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the validation, as ValidateStateMachineDefinition reports it."""

    severity: str
    code: str
    message: str
    location: str | None = None

    def as_dict(self) -> dict[str, str]:
        found = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.location is not None:
            found["location"] = self.location
        return found

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" at {self.location}" if self.location else "")


class _Checker:
    """A walk over a parsed definition that records what the States Language forbids."""

    def __init__(self) -> None:
        self.found: list[Diagnostic] = []
        self.state_names: dict[str, str] = {}  # every state name of the machine, at its first location

    def error(self, code: str, message: str, location: str | None) -> None:
        self.found.append(Diagnostic("ERROR", code, message, location or "/"))

    # -- a state machine, a Parallel branch, a Map's ItemProcessor --------------------------------

    def machine(self, node: Any, at: str, inherited: str | None) -> None:
        if not isinstance(node, dict):
            self.error("SCHEMA_VALIDATION_FAILED", "Expected an object", at)
            return
        language = self.query_language(node, at, inherited)
        missing = [name for name in ("StartAt", "States") if name not in node]
        if missing:
            self.error("SCHEMA_VALIDATION_FAILED", f"These fields are required: [{', '.join(missing)}]", at)
        states = node.get("States")
        if "States" in node and (not isinstance(states, dict) or not states):
            self.error("SCHEMA_VALIDATION_FAILED", "States must be a non-empty object", f"{at}/States")
            states = None
        start = node.get("StartAt")
        if "StartAt" in node and not isinstance(start, str):
            self.error("SCHEMA_VALIDATION_FAILED", "StartAt must be a string", f"{at}/StartAt")
            start = None
        if not isinstance(states, dict):
            return
        targets: dict[str, list[str]] = {}  # state name -> the states it may go to
        for name, state in states.items():
            targets[name] = self.state(name, state, f"{at}/States/{name}", language, set(states))
        if start is not None and start not in states:
            self.error("MISSING_TRANSITION_TARGET", f"Missing 'StartAt' target: {start}", f"{at}/StartAt")
        if start in states:
            reached, pending = {start}, [start]
            while pending:
                for target in targets.get(pending.pop(), []):
                    if target not in reached:
                        reached.add(target)
                        pending.append(target)
            for name in states:
                if name not in reached:
                    self.error("MISSING_TRANSITION_TARGET", f'State "{name}" is not reachable.',
                               f"{at}/States/{name}")

    def query_language(self, node: dict[str, Any], at: str, inherited: str | None) -> str:
        declared = node.get("QueryLanguage")
        if declared is None:
            return inherited or "JSONPath"
        if declared not in _QUERY_LANGUAGES:
            self.error("SCHEMA_VALIDATION_FAILED", f"QueryLanguage must be one of {list(_QUERY_LANGUAGES)}, not "
                       f"{json.dumps(declared)}", f"{at}/QueryLanguage")
            return inherited or "JSONPath"
        if inherited == "JSONata" and declared == "JSONPath":
            self.error("SCHEMA_VALIDATION_FAILED", "A JSONPath state cannot be declared inside a JSONata scope",
                       f"{at}/QueryLanguage")
        return str(declared)

    # -- one state ----------------------------------------------------------------------------------

    def state(self, name: str, state: Any, at: str, inherited: str, scope: set[str]) -> list[str]:
        self.state_name(name, at)
        if not isinstance(state, dict):
            self.error("SCHEMA_VALIDATION_FAILED", "A state must be an object", at)
            return []
        kind = state.get("Type")
        if kind is None:
            self.error("SCHEMA_VALIDATION_FAILED", "These fields are required: [Type]", at)
            return []
        if kind not in _STATE_TYPES:
            self.error("SCHEMA_VALIDATION_FAILED", f"{json.dumps(kind)} is not a state type "
                       f"({', '.join(_STATE_TYPES)})", f"{at}/Type")
            return []
        language = self.query_language(state, at, inherited)
        self.fields(kind, state, at, language)
        targets = self.transitions(kind, state, at, scope)
        if kind == "Choice":
            targets.extend(self.choice(state, at, language, scope))
        targets.extend(self.catchers(state, at, language, scope))
        self.states_all_last(state, at)
        self.nested_machines(kind, state, at, language)
        return [target for target in targets if target]

    def state_name(self, name: str, at: str) -> None:
        if name in self.state_names:
            self.error("DUPLICATE_STATE_NAME", f"Duplicate State name: {name} (also at {self.state_names[name]})", at)
        else:
            self.state_names[name] = at
        if len(name) > _MAX_NAME or not name:
            self.error("INVALID_STATE_NAME", f"State names must be 1 to {_MAX_NAME} characters long", at)

    def fields(self, kind: str, state: dict[str, Any], at: str, language: str) -> None:
        forbidden = _JSONATA_ONLY if language == "JSONPath" else _JSONPATH_ONLY
        for field in forbidden:
            if field in state:
                self.error("SCHEMA_VALIDATION_FAILED", f"The field '{field}' is not supported in a {language} "
                           f"state", f"{at}/{field}")
        if "Assign" in state:
            if kind in _WITH_ASSIGN:
                self.assign(state["Assign"], f"{at}/Assign", language)
            else:
                self.error("SCHEMA_VALIDATION_FAILED", f"The field 'Assign' is not supported in a {kind} state",
                           f"{at}/Assign")

    def transitions(self, kind: str, state: dict[str, Any], at: str, scope: set[str]) -> list[str]:
        if kind in _WITHOUT_NEXT_OR_END:
            for field in ("Next", "End"):
                if field in state:
                    self.error("SCHEMA_VALIDATION_FAILED", f"The field '{field}' is not supported in a {kind} state",
                               f"{at}/{field}")
            return []
        has_next, ends = "Next" in state, state.get("End") is True
        if has_next == ends:
            self.error("SCHEMA_VALIDATION_FAILED", "A state must have exactly one of 'Next' and 'End': true"
                       if has_next else "These fields are required: [Next | End]", at)
        return [self.target(state["Next"], "Next", f"{at}/Next", scope)] if has_next else []

    def catchers(self, state: dict[str, Any], at: str, language: str, scope: set[str]) -> list[str]:
        targets = []
        for index, catcher in enumerate(state.get("Catch") or []):
            where = f"{at}/Catch[{index}]"
            if not isinstance(catcher, dict) or "Next" not in catcher:
                self.error("SCHEMA_VALIDATION_FAILED", "These fields are required: [Next]", where)
                continue
            targets.append(self.target(catcher["Next"], "Next", f"{where}/Next", scope))
            if "Assign" in catcher:
                self.assign(catcher["Assign"], f"{where}/Assign", language)
        return targets

    def states_all_last(self, state: dict[str, Any], at: str) -> None:
        for field in ("Retry", "Catch"):
            entries = state.get(field)
            for index, entry in enumerate(entries[:-1] if isinstance(entries, list) else []):
                if isinstance(entry, dict) and "States.ALL" in (entry.get("ErrorEquals") or []):
                    self.error("SCHEMA_VALIDATION_FAILED", f"States.ALL must be in the last element of {field}",
                               f"{at}/{field}[{index}]/ErrorEquals")

    def nested_machines(self, kind: str, state: dict[str, Any], at: str, language: str) -> None:
        if kind == "Parallel":
            branches = state.get("Branches")
            if not isinstance(branches, list) or not branches:
                self.error("SCHEMA_VALIDATION_FAILED", "Branches must be a non-empty array", f"{at}/Branches")
            else:
                for index, branch in enumerate(branches):
                    self.machine(branch, f"{at}/Branches[{index}]", language)
        if kind == "Map":
            field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
            if field not in state:
                self.error("SCHEMA_VALIDATION_FAILED", "These fields are required: [ItemProcessor]", at)
            else:
                self.machine(state[field], f"{at}/{field}", language)

    def target(self, name: Any, field: str, at: str, scope: set[str]) -> str:
        if not isinstance(name, str):
            self.error("SCHEMA_VALIDATION_FAILED", f"{field} must be a string", at)
            return ""
        if name not in scope:
            self.error("MISSING_TRANSITION_TARGET", f"Missing '{field}' target: {name}", at)
            return ""
        return name

    def choice(self, state: dict[str, Any], at: str, language: str, scope: set[str]) -> list[str]:
        rules = state.get("Choices")
        targets = []
        if not isinstance(rules, list) or not rules:
            self.error("SCHEMA_VALIDATION_FAILED", "Choices must be a non-empty array", f"{at}/Choices")
            rules = []
        for index, rule in enumerate(rules):
            where = f"{at}/Choices[{index}]"
            if not isinstance(rule, dict):
                self.error("SCHEMA_VALIDATION_FAILED", "A Choice rule must be an object", where)
                continue
            if "Next" not in rule:
                self.error("SCHEMA_VALIDATION_FAILED", "These fields are required: [Next]", where)
            else:
                targets.append(self.target(rule["Next"], "Next", f"{where}/Next", scope))
            if "Assign" in rule:
                self.assign(rule["Assign"], f"{where}/Assign", language)
            self.nested_rules(rule, where)
        if "Default" in state:
            targets.append(self.target(state["Default"], "Default", f"{at}/Default", scope))
        return targets

    def nested_rules(self, rule: dict[str, Any], at: str) -> None:
        """The members of And, Or and Not are conditions, not transitions: none may have Next (or Assign)."""
        members: list[tuple[Any, str]] = []
        for operator in ("And", "Or"):
            if isinstance(rule.get(operator), list):
                members.extend((member, f"{at}/{operator}[{i}]") for i, member in enumerate(rule[operator]))
        if "Not" in rule:
            members.append((rule["Not"], f"{at}/Not"))
        for member, where in members:
            if not isinstance(member, dict):
                continue
            for field in ("Next", "Assign"):
                if field in member:
                    self.error("SCHEMA_VALIDATION_FAILED", f"The field '{field}' is not supported in a nested "
                               "Choice rule (a member of And, Or or Not)", f"{where}/{field}")
            self.nested_rules(member, where)

    def assign(self, assign: Any, at: str, language: str) -> None:
        if isinstance(assign, str) and language == "JSONata":
            return  # a whole-object JSONata expression: its names are known when it runs
        if not isinstance(assign, dict):
            self.error("SCHEMA_VALIDATION_FAILED", "Assign must be an object", at)
            return
        for key in assign:
            name = key[:-2] if language == "JSONPath" and key.endswith(".$") else key
            problem = _variable_name_problem(name)
            if problem:
                self.error("SCHEMA_VALIDATION_FAILED", f"Invalid variable name {json.dumps(name)}: {problem}",
                           f"{at}/{key}")


def _variable_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a workflow variable (None if it can)."""
    if name.startswith("$"):
        return "a variable is named without its leading '$'"
    if name == "states":
        return "'states' is reserved ($states)"
    if not name.isidentifier():
        return "a variable name is an identifier (letters, digits and underscores, not starting with a digit)"
    if len(name) > _MAX_NAME:
        return f"a variable name is at most {_MAX_NAME} characters long"
    return None


def diagnostics(definition: str | None) -> list[Diagnostic]:
    """Every problem AWS would report for ``definition`` (the JSON text of a state machine), errors first."""
    if definition is None or not definition.strip():
        return [Diagnostic("ERROR", "MISSING_DESCRIPTION", "The definition is empty", "/")]
    try:
        document = json.loads(definition)
    except ValueError as error:
        return [Diagnostic("ERROR", "INVALID_JSON_DESCRIPTION", f"Invalid JSON: {error}", "/")]
    checker = _Checker()
    checker.machine(document, "", None)
    if checker.found:
        return checker.found
    try:
        AmazonStateLanguageParser.parse(definition)
    except ASLParserException as error:
        return [Diagnostic("ERROR", "SCHEMA_VALIDATION_FAILED", "; ".join(error.errors) or repr(error), "/")]
    except Exception as error:  # noqa: BLE001 - any refusal of moto's parser is a refused definition
        detail = " ".join(str(arg) for arg in error.args) or type(error).__name__
        wrong_language = _MOTO_WRONG_LANGUAGE.match(detail)
        if wrong_language:  # moto names the language the declaration needs, as if it were the state's
            detail = f"{wrong_language[2]} is supported only in {wrong_language[1]} states"
        return [Diagnostic("ERROR", "SCHEMA_VALIDATION_FAILED", detail, "/")]
    return []


def invalid_definition(found: list[Diagnostic]) -> InvalidDefinition:
    """The error CreateStateMachine and UpdateStateMachine answer for a definition with these diagnostics."""
    errors = ", ".join(str(d) for d in found if d.severity == "ERROR")
    return InvalidDefinition(f"Invalid State Machine Definition: '{errors}'", exception_type=InvalidDefinition.code)


def validation_result(definition: str | None, *, severity: str | None = None,
                      max_results: int | None = None) -> dict[str, Any]:
    """ValidateStateMachineDefinition's response for ``definition``: ``severity`` WARNING also lists warnings
    (ERROR, the default, only errors); at most ``max_results`` diagnostics (0 or None: 100), ``truncated`` when
    more were found."""
    found = diagnostics(definition)
    shown = [d for d in found if d.severity == "ERROR" or severity == "WARNING"]
    limit = max_results or DEFAULT_MAX_DIAGNOSTICS
    return {"result": "FAIL" if any(d.severity == "ERROR" for d in found) else "OK",
            "diagnostics": [d.as_dict() for d in shown[:limit]], "truncated": len(shown) > limit}


def refuse_invalid(definition: str) -> None:
    """Raise InvalidDefinition if ``definition`` has an ERROR diagnostic."""
    found = diagnostics(definition)
    if any(d.severity == "ERROR" for d in found):
        raise invalid_definition(found)
