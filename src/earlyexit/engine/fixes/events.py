"""EventBridge rules and events are safe under concurrency, as EventBridge is.

EventBridge matches each event against the bus's rules while rules are created and deleted
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html). moto iterates the
bus's rules unguarded: a PutEvents while another thread put or deleted a rule raised
``RuntimeError: OrderedDict mutated during iteration`` (an HTTP 500), as when the engine's
executions put approval requests while a test, or ``earlyexit serve``'s user, routes them
with a rule of its own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from moto.events.models import EventsBackend

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["event_rules_thread_safe"]

# Every operation that reads or changes a bus's rules or their targets.
_RULE_OPERATIONS = ("put_events", "put_rule", "delete_rule", "put_targets", "remove_targets", "describe_rule",
                    "enable_rule", "disable_rule", "list_rules", "list_targets_by_rule", "list_rule_names_by_target")


def event_rules_thread_safe(p: Patcher) -> None:
    """PutEvents and the rule operations are atomic with respect to each other: an event is matched against the
    rules as they are before or after a concurrent change, never fails for it.

    Test: tests/test_engine_queues.py::test_events_put_while_rules_come_and_go_are_all_matched_without_an_error
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
    """
    p.serialise(EventsBackend, _RULE_OPERATIONS, threading.RLock())
