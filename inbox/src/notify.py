"""The inbox's notifier (EventBridge rule target).

Each ``ApprovalRequested`` event becomes a stored request with a link id of its own and one
SNS notification carrying the link; a duplicated event (same task token) finds the same id and
sends nothing. Each ``ApprovalReminder`` re-sends the approver's latest link. The task token is
stored for the page function and never written to a notification or a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

TABLE = os.environ["REQUESTS_TABLE"]
TOPIC_ARN = os.environ["TOPIC_ARN"]
INBOX_URL = os.environ["INBOX_URL"].rstrip("/")

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
        "expiresAt": expires, "createdAt": {"N": str(int(time.time()))},
    }
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "ConditionExpression": "attribute_not_exists(id)",
                     "Item": {"id": {"S": token_key(task_token)}, "requestId": {"S": request_id}, "expiresAt": expires}}},
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


def _claim(request_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
    """Mark the request as notified (for this round) unless it already is: True if this call marked it."""
    try:
        dynamodb.update_item(TableName=TABLE, Key={"id": {"S": request_id}}, UpdateExpression=update,
                             ConditionExpression=condition, ExpressionAttributeValues=values)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def _publish(item: dict[str, Any], subject: str, opening: str) -> None:
    approver, pattern = item["approver"]["S"], item["pattern"]["S"]
    request = json.dumps(json.loads(item["request"]["S"]), indent=2, ensure_ascii=False)
    message = "\n".join([
        f"{opening}", "", "Request:", request, "",
        f"Open until {item['deadline']['S']}. Approve or reject here:",
        link(item["id"]["S"]), "",
        f"This link is {approver}'s alone: whoever has it can answer as {approver}. Do not forward it.",
    ])
    sns.publish(TopicArn=TOPIC_ARN, Subject=subject, Message=message, MessageAttributes={
        "approver": {"DataType": "String", "StringValue": approver},
        "pattern": {"DataType": "String", "StringValue": pattern},
    })


def _requested(detail: dict[str, Any]) -> str:
    request_id = _stored_request(detail)
    now = {":now": {"N": str(int(time.time()))}}
    if not _claim(request_id, "SET notifiedAt = :now", "attribute_not_exists(notifiedAt)", now):
        return "duplicate"
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}}, ConsistentRead=True)["Item"]
    try:
        _publish(item, f"Approval requested: {item['pattern']['S']}",
                 f"{item['approver']['S']}, your approval is requested ({item['pattern']['S']}).")
    except Exception:
        dynamodb.update_item(TableName=TABLE, Key={"id": {"S": request_id}}, UpdateExpression="REMOVE notifiedAt",
                             ConditionExpression="notifiedAt = :now", ExpressionAttributeValues=now)
        raise
    logger.info("request %s notified", request_id)
    return "notified"


def _reminder(detail: dict[str, Any]) -> str:
    round_number = detail.get("reminder")
    if not isinstance(round_number, int) or isinstance(round_number, bool) or round_number < 1:
        raise ValueError("event detail: reminder must be a positive integer")
    latest = dynamodb.get_item(TableName=TABLE, ConsistentRead=True, Key={
        "id": {"S": latest_key(_text(detail, "executionArn"), _text(detail, "approver"))}})
    if "Item" not in latest:
        logger.warning("reminder %d for a request this inbox never stored", round_number)
        return "unknown"
    request_id = latest["Item"]["requestId"]["S"]
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}}, ConsistentRead=True)["Item"]
    if "answer" in item:
        return "answered"
    if not _claim(request_id, "SET remindedRound = :round",
                  "attribute_not_exists(remindedRound) OR remindedRound < :round", {":round": {"N": str(round_number)}}):
        return "duplicate"
    _publish(item, f"Reminder ({round_number}): Approval requested: {item['pattern']['S']}",
             f"Reminder: {item['approver']['S']}, your approval is still requested ({item['pattern']['S']}).")
    logger.info("request %s reminded (round %d)", request_id, round_number)
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
