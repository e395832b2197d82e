"""The inbox's notifier (EventBridge rule target).

Each ``ApprovalRequested`` event becomes a stored request with a link id of its own and one
SNS notification carrying the link; a duplicated event (same task token) finds the same id and
sends nothing. Each ``ApprovalReminder`` re-sends the approver's latest link, once per round.
The task token is stored for the page function and never written to a notification or a log line.

Each notice (the request's, round 0, and each reminder's) is claimed in the request item for
``LEASE_SECONDS`` before it is published and marked sent after: a copy of the event that arrives
meanwhile sends nothing, and if the function dies between the claim and the publish, Lambda's
retry (a minute later) finds the lease expired and sends it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import textwrap
import time
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

TABLE = os.environ["REQUESTS_TABLE"]
TOPIC_ARN = os.environ["TOPIC_ARN"]
INBOX_URL = os.environ["INBOX_URL"].rstrip("/")
LEASE_SECONDS = 30  # longer than the function's timeout (10 s), shorter than Lambda's first retry (1 min)

dynamodb = boto3.client("dynamodb")
sns = boto3.client("sns")
logger = logging.getLogger()
logger.setLevel(logging.INFO)


def token_key(task_token: str) -> str:
    """The item that maps a task token (by its hash) to its request's id."""
    return "token#" + hashlib.sha256(task_token.encode()).hexdigest()


def latest_key(execution_arn: str, approver: str) -> str:
    """The item that names an approver's latest request in an execution."""
    return "latest#" + hashlib.sha256(f"{execution_arn}\n{approver}".encode()).hexdigest()


def link(request_id: str) -> str:
    return f"{INBOX_URL}/requests/{request_id}"


def _text(detail: dict[str, Any], name: str) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"event detail: {name} must be a non-empty string")
    return value


def _deadline(detail: dict[str, Any]) -> int:
    text = _text(detail, "deadline")
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise ValueError(f"event detail: deadline {text!r} is not an ISO-8601 time") from None


def _stored_request(detail: dict[str, Any]) -> str:
    """The id of the request for this event's task token: a new one, or the one a duplicate already stored."""
    task_token = _text(detail, "taskToken")
    execution_arn, approver = _text(detail, "executionArn"), _text(detail, "approver")
    expires = {"N": str(_deadline(detail))}
    request_id = secrets.token_urlsafe(24)  # 192 random bits
    item = {
        "id": {"S": request_id}, "kind": {"S": "request"}, "taskToken": {"S": task_token},
        "nonce": {"S": secrets.token_urlsafe(24)}, "approver": {"S": approver},
        "pattern": {"S": _text(detail, "pattern")}, "executionArn": {"S": execution_arn},
        "request": {"S": json.dumps(detail.get("request", {}))}, "deadline": {"S": _text(detail, "deadline")},
        "expiresAt": expires, "createdAt": {"N": str(int(time.time()))}, "notices": {"M": {}},
    }
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "ConditionExpression": "attribute_not_exists(id)",
                     "Item": {"id": {"S": token_key(task_token)}, "requestId": {"S": request_id},
                              "expiresAt": expires}}},
            {"Put": {"TableName": TABLE, "ConditionExpression": "attribute_not_exists(id)", "Item": item}},
            {"Put": {"TableName": TABLE, "Item": {"id": {"S": latest_key(execution_arn, approver)},
                                                  "requestId": {"S": request_id}, "expiresAt": expires}}},
        ])
        return request_id
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
    existing = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": token_key(task_token)}}, ConsistentRead=True)
    if "Item" not in existing:
        raise RuntimeError("the request could not be stored and no earlier copy exists: retrying")
    logger.info("duplicated event for request %s", existing["Item"]["requestId"]["S"])
    return existing["Item"]["requestId"]["S"]


def _notice(request_id: str, round_number: int, send: Any) -> bool:
    """Send notice ``round_number`` of the request with ``send()`` unless it was sent or is being sent;
    True if this call sent it."""
    key, names = {"id": {"S": request_id}}, {"#round": str(round_number), "#until": "until"}
    now = int(time.time())
    try:
        dynamodb.update_item(
            TableName=TABLE, Key=key, ExpressionAttributeNames=names,
            UpdateExpression="SET notices.#round = :lease",
            ConditionExpression="attribute_exists(notices) AND attribute_not_exists(notices.#round.sentAt) AND "
                                "(attribute_not_exists(notices.#round) OR notices.#round.#until < :now)",
            ExpressionAttributeValues={":lease": {"M": {"until": {"N": str(now + LEASE_SECONDS)}}},
                                       ":now": {"N": str(now)}})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    try:
        send()
    except Exception:
        dynamodb.update_item(TableName=TABLE, Key=key, UpdateExpression="REMOVE notices.#round",
                             ExpressionAttributeNames={"#round": str(round_number)})
        raise
    dynamodb.update_item(TableName=TABLE, Key=key, UpdateExpression="SET notices.#round.sentAt = :now",
                         ExpressionAttributeNames={"#round": str(round_number)},
                         ExpressionAttributeValues={":now": {"N": str(int(time.time()))}})
    return True


def _publish(item: dict[str, Any], subject: str, opening: str) -> None:
    approver, pattern = item["approver"]["S"], item["pattern"]["S"]
    request = json.dumps(json.loads(item["request"]["S"]), indent=2, ensure_ascii=False)
    message = "\n".join([  # prose wrapped at 72 columns, as mail is; the link alone on its line, never cut
        textwrap.fill(opening, 72), "", "Request:", request, "",
        f"Open until {item['deadline']['S']}. Approve or reject here:",
        link(item["id"]["S"]), "",
        textwrap.fill(f"This link is {approver}'s alone: whoever has it can answer as {approver}. "
                      "Do not forward it.", 72),
    ])
    sns.publish(TopicArn=TOPIC_ARN, Subject=subject, Message=message, MessageAttributes={
        "approver": {"DataType": "String", "StringValue": approver},
        "pattern": {"DataType": "String", "StringValue": pattern},
    })


def _requested(detail: dict[str, Any]) -> str:
    request_id = _stored_request(detail)
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}}, ConsistentRead=True)["Item"]
    approver, pattern = item["approver"]["S"], item["pattern"]["S"]
    if not _notice(request_id, 0, lambda: _publish(item, f"Approval requested: {pattern}",
                                                   f"{approver}, your approval is requested ({pattern}).")):
        return "duplicate"
    logger.info("request %s notified", request_id)
    return "notified"


def _reminder(detail: dict[str, Any]) -> str:
    round_number = detail.get("reminder")
    if not isinstance(round_number, int) or isinstance(round_number, bool) or round_number < 1:
        raise ValueError("event detail: reminder must be a positive integer")
    latest = dynamodb.get_item(TableName=TABLE, ConsistentRead=True, Key={
        "id": {"S": latest_key(_text(detail, "executionArn"), _text(detail, "approver"))}}).get("Item")
    item = latest and dynamodb.get_item(TableName=TABLE, Key={"id": latest["requestId"]}, ConsistentRead=True).get(
        "Item")
    if not item:
        logger.warning("reminder %d for a request this inbox does not hold (never stored, or expired)", round_number)
        return "unknown"
    if "answer" in item or "closed" in item or time.time() >= int(item["expiresAt"]["N"]):
        return "settled"
    approver, pattern = item["approver"]["S"], item["pattern"]["S"]
    if not _notice(item["id"]["S"], round_number, lambda: _publish(
            item, f"Reminder ({round_number}): Approval requested: {pattern}",
            f"Reminder: {approver}, your approval is still requested ({pattern}).")):
        return "duplicate"
    logger.info("request %s reminded (round %d)", item["id"]["S"], round_number)
    return "reminded"


def handler(event: dict[str, Any], context: Any) -> str:
    """Store and notify an ApprovalRequested event, or re-send the link of an ApprovalReminder."""
    kind, detail = event.get("detail-type"), event.get("detail")
    if not isinstance(detail, dict):
        raise ValueError("event without a detail object")
    if kind == "ApprovalRequested":
        return _requested(detail)
    if kind == "ApprovalReminder":
        return _reminder(detail)
    logger.warning("ignored an event of detail-type %r", kind)
    return "ignored"
