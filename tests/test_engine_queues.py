"""SQS on the engine under concurrency, as SQS behaves: producers and consumers of one queue at once.

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from earlyexit.local import Cloud

pytestmark = [pytest.mark.engine, pytest.mark.deploys]

PRODUCERS, CONSUMERS, PER_PRODUCER = 4, 6, 100


@pytest.fixture
def frequent_thread_switches() -> Any:
    """Threads switch every microsecond, so that interleavings a busy server sees happen in a short test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def queue_url(cloud: Cloud) -> str:
    return str(cloud.client("sqs").create_queue(QueueName=f"load-{uuid.uuid4().hex[:8]}")["QueueUrl"])


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_senders_receivers_and_deleters_lose_and_repeat_no_message(cloud: Cloud, queue_url: str) -> None:
    sqs: Any = cloud.client("sqs")
    sent = {f"{p}-{n}" for p in range(PRODUCERS) for n in range(PER_PRODUCER)}
    received: list[str] = []
    lock, done = threading.Lock(), threading.Event()

    def produce(producer: int) -> None:
        for n in range(PER_PRODUCER):
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"{producer}-{n}")

    def consume() -> None:
        while not done.is_set():
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                with lock:
                    received.append(message["Body"])
                    if len(received) >= len(sent):
                        done.set()

    with ThreadPoolExecutor(PRODUCERS + CONSUMERS) as pool:
        consumers = [pool.submit(consume) for _ in range(CONSUMERS)]
        producers = [pool.submit(produce, p) for p in range(PRODUCERS)]
        for future in producers:
            future.result(timeout=60)
        done.wait(timeout=60)
        done.set()
        for future in consumers:
            future.result(timeout=10)  # a 500 from the queue would raise here
    assert sorted(received) == sorted(sent)


def test_a_long_poll_returns_a_message_sent_while_it_waits(cloud: Cloud, queue_url: str) -> None:
    sqs: Any = cloud.client("sqs")
    sender = threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="late"))
    sender.start()
    try:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10).get("Messages", [])
    finally:
        sender.join(timeout=10)
    assert [m["Body"] for m in messages] == ["late"]


def test_a_long_poll_on_an_empty_queue_answers_no_message(cloud: Cloud, queue_url: str) -> None:
    assert cloud.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []


@pytest.mark.usefixtures("frequent_thread_switches")
def test_events_put_while_rules_come_and_go_are_all_matched_without_an_error(cloud: Cloud, queue_url: str) -> None:
    """EventBridge matches every event while other rules are created and deleted: none fails, each is routed once."""
    events: Any = cloud.client("events")
    sqs: Any = cloud.client("sqs")
    source = f"churn-{uuid.uuid4().hex[:8]}"
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{source}-kept", EventPattern=f'{{"source": ["{source}"]}}')
    events.put_targets(Rule=f"{source}-kept", Targets=[{"Id": "queue", "Arn": queue_arn}])
    sent = {f"{p}-{n}" for p in range(PRODUCERS) for n in range(PER_PRODUCER // 4)}
    done = threading.Event()

    def produce(producer: int) -> None:
        for n in range(PER_PRODUCER // 4):
            entry = {"Source": source, "DetailType": "t", "Detail": json.dumps({"id": f"{producer}-{n}"})}
            answer = events.put_events(Entries=[entry])
            assert answer["FailedEntryCount"] == 0, answer

    def churn() -> None:
        while not done.is_set():
            name = f"{source}-{uuid.uuid4().hex[:8]}"
            events.put_rule(Name=name, EventPattern=f'{{"source": ["{source}-other"]}}')
            events.delete_rule(Name=name)

    with ThreadPoolExecutor(PRODUCERS + 2) as pool:
        churners = [pool.submit(churn) for _ in range(2)]
        try:
            for future in [pool.submit(produce, p) for p in range(PRODUCERS)]:
                future.result(timeout=60)  # a 500 from PutEvents would raise here
        finally:
            done.set()
        for future in churners:
            future.result(timeout=10)
    received: list[str] = []
    while len(received) < len(sent):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
        assert messages, f"{len(received)} of {len(sent)} events routed"
        for message in messages:
            received.append(json.loads(message["Body"])["detail"]["id"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received) == sorted(sent)
