"""Requests checked against the Step Functions API's constraints, worded as AWS words its refusals.

AWS checks every request against the API's constraints (lengths, enumerations, ranges) before it
acts, and answers ValidationException ("1 validation error detected: Value 'NOPE' at
'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [...]");
botocore checks them on the client too, but the AWS CLI and SDKs with parameter validation off
send the request as it is. The constraints are read from botocore's Step Functions model, the
same ones AWS publishes.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from moto.stepfunctions.exceptions import ValidationException

if TYPE_CHECKING:
    from botocore.model import Shape, StructureShape

__all__ = ["validate_lengths", "validate_request"]


@cache
def _input_shape(operation: str) -> StructureShape:
    return botocore.session.get_session().get_service_model("stepfunctions").operation_model(operation).input_shape


def _raise(problems: list[str]) -> None:
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ValidationException(f"{len(problems)} validation error{plural} detected: " + "; ".join(problems))


def _length_problems(name: str, shape: Shape, value: str) -> list[str]:
    shown = "" if shape.metadata.get("sensitive") else f" '{value}'"
    maximum, minimum = shape.metadata.get("max"), shape.metadata.get("min")
    problems = []
    if maximum is not None and len(value) > maximum:
        problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length less "
                        f"than or equal to {maximum}")
    if minimum is not None and len(value) < minimum:
        problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length "
                        f"greater than or equal to {minimum}")
    return problems


def validate_lengths(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationException, worded as AWS words it, if a string parameter breaks its length constraint."""
    _raise([problem for name, shape in _input_shape(operation).members.items()
            if isinstance(params.get(name), str) for problem in _length_problems(name, shape, params[name])])


def _value_problem(name: str, shape: Shape, value: Any) -> str | None:
    if isinstance(value, str) and shape.enum and value not in shape.enum:
        shown = "" if shape.metadata.get("sensitive") else f" '{value}'"
        return (f"Value{shown} at '{name}' failed to satisfy constraint: Member must satisfy enum value "
                f"set: [{', '.join(shape.enum)}]")
    if isinstance(value, int) and not isinstance(value, bool) and shape.type_name in ("integer", "long"):
        maximum, minimum = shape.metadata.get("max"), shape.metadata.get("min")
        if maximum is not None and value > maximum:
            return (f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                    f"less than or equal to {maximum}")
        if minimum is not None and value < minimum:
            return (f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                    f"greater than or equal to {minimum}")
    return None


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationException, worded as AWS words it, if a parameter breaks its constraint in the API's
    model: a string outside its enumeration, an integer outside its range (checked first), a string of the
    wrong length."""
    members = _input_shape(operation).members.items()
    _raise([problem for name, shape in members if (problem := _value_problem(name, shape, params.get(name)))])
    validate_lengths(operation, params)
