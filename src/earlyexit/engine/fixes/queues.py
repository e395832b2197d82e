"""SQS message operations are safe under concurrency, as SQS is.

SQS serves any number of producers and consumers of one queue at once
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
moto's queue is not thread-safe: a ReceiveMessage while another thread received or deleted
messages raised ``RuntimeError: Set changed size during iteration`` (an HTTP 500), with
EventBridge rule targets sending from the engine's threads and consumers receiving at once.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from moto.sqs.models import SQSBackend

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["queue_operations_thread_safe"]

_MESSAGE_OPERATIONS = ("send_message", "send_message_batch", "delete_message", "delete_message_batch",
                       "change_message_visibility", "change_message_visibility_batch", "purge_queue")


def queue_operations_thread_safe(p: Patcher) -> None:
    """Each message operation on a queue is atomic: concurrent sends, receives and deletes lose, repeat and
    fail no message. A long poll (WaitTimeSeconds) waits outside the lock, so senders are never held up by it.

    Tests: tests/test_engine_queues.py::test_concurrent_senders_receivers_and_deleters_lose_and_repeat_no_message,
    tests/test_engine_queues.py::test_a_long_poll_returns_a_message_sent_while_it_waits
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
    """
    lock = threading.RLock()
    p.serialise(SQSBackend, _MESSAGE_OPERATIONS, lock)
    receive = p.original(SQSBackend, "receive_message")

    def receive_message(self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int,
                        visibility_timeout: int, message_attribute_names: list[str] | None = None) -> Any:
        polling_end = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with lock:  # one attempt that does not wait: moto's loop with a zero wait
                result = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = polling_end - time.monotonic()
            if result or remaining <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))  # type: ignore[arg-type]

    p.replace(SQSBackend, "receive_message", receive_message)
