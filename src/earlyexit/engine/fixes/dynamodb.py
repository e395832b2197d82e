"""DynamoDB item writes are atomic, as on AWS.

AWS applies each item write atomically, and concurrent writes to one item are serialized
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters).
moto's DynamoDB backend is not thread-safe: parallel branches updating one tally item lost
ADDs. The item-level request handlers run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.dynamodb.responses import DynamoHandler

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["atomic_item_writes"]

_ITEM_ACTIONS = ("put_item", "get_item", "update_item", "delete_item", "batch_write_item", "batch_get_item", "query",
                 "scan", "transact_get_items", "transact_write_items")


def atomic_item_writes(p: Patcher) -> None:
    """Each DynamoDB item operation is atomic: concurrent ADDs to one string set lose no member, and each
    returns the item as it stood right after it.

    Test: tests/test_engine.py::test_concurrent_add_to_one_string_set_loses_no_update
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html
    """
    lock = threading.RLock()
    for action in _ITEM_ACTIONS:
        original = p.original(DynamoHandler, action)

        def serialised(self: DynamoHandler, _original: Callable[..., Any] = original) -> Any:
            with lock:
                return _original(self)

        p.replace(DynamoHandler, action, serialised)
