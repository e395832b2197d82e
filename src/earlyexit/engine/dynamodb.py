"""DynamoDB item writes are atomic, as on AWS, and update expressions are parsed once.

AWS applies each item write atomically, and concurrent writes to one item are serialized
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters).
moto's DynamoDB backend is not thread-safe: parallel branches updating one tally item lost
ADDs. The item-level request handlers run one at a time.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.responses import DynamoHandler

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["atomic_item_writes", "update_expressions_parsed_once"]

_ITEM_ACTIONS = ("put_item", "get_item", "update_item", "delete_item", "batch_write_item", "batch_get_item", "query",
                 "scan", "transact_get_items", "transact_write_items")


def atomic_item_writes(p: Patcher) -> None:
    """Each DynamoDB item operation is atomic: concurrent ADDs to one string set lose no member, and each
    returns the item as it stood right after it.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html
    """
    lock = threading.RLock()
    for action in _ITEM_ACTIONS:
        original = p.original(DynamoHandler, action)

        def serialised(self: DynamoHandler, _original: Callable[..., Any] = original) -> Any:
            with lock:
                return _original(self)

        p.replace(DynamoHandler, action, serialised)


def update_expressions_parsed_once(p: Patcher) -> None:
    """Each distinct UpdateExpression text is parsed once; moto parsed it twice for every UpdateItem (a fifth
    of the call). The parse tree is only read afterwards (moto's validator works on a deep copy), so one tree
    serves every call. Performance only: a malformed expression is refused on every call, as before, and every
    result is unchanged.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html
    """
    parse = p.original(UpdateExpressionParser, "make")
    p.replace(UpdateExpressionParser, "make", staticmethod(functools.lru_cache(maxsize=1024)(parse)))
