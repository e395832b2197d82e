"""DynamoDB update expressions parsed once per text."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from moto.dynamodb.parsing.expressions import UpdateExpressionParser

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["update_expressions_parsed_once"]


def update_expressions_parsed_once(p: Patcher) -> None:
    """Each distinct UpdateExpression text is parsed once; moto parsed it twice for every UpdateItem (a fifth
    of the call). The parse tree is only read afterwards (moto's validator works on a deep copy), so one tree
    serves every call. Performance only: a malformed expression is refused on every call, as before, and every
    result is unchanged.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html
    """
    parse = p.original(UpdateExpressionParser, "make")
    p.replace(UpdateExpressionParser, "make", staticmethod(functools.lru_cache(maxsize=1024)(parse)))
