"""$states copied as the JSON data it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moto.stepfunctions.parser.asl.eval import states as states_module

from earlyexit.engine.runtime.jsonata import json_copy

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["states_copied_as_json"]


class _JSONCopy:
    """``copy`` as moto's $states store sees it: its deep copies are copies of JSON data."""

    deepcopy = staticmethod(json_copy)


def states_copied_as_json(p: Patcher) -> None:
    """$states (input, result, errorOutput, context) is JSON data; moto deep-copied it with ``copy.deepcopy``
    on every read and write, a large share of the interpreter's time. Copies stay copies (no state sees
    another's changes). Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
    """
    p.replace(states_module, "copy", _JSONCopy)
