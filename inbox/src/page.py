"""The inbox's page function (HTTP API, payload format 2.0): ``GET /requests/{id}`` shows a request,
``POST /requests/{id}`` answers it.

A GET never changes anything (mail scanners and link previews open links). A POST checks the
form's nonce, marks the request answered with a conditional write, then sends
``SendTaskSuccess`` once; if Step Functions refuses the token the page names the outcome.
The task token never leaves this function: it is in no page and no log line.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import boto3
import pages
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TABLE = os.environ["REQUESTS_TABLE"]
MAX_COMMENT = 1000
DECISIONS = ("approve", "reject")
# Step Functions' answers for a token it no longer accepts (its task ended, or the execution did).
CLOSED_TOKEN_ERRORS = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")

# Every call answers well inside the function's 10 s timeout, so that a failure is handled, never cut off.
_QUICK = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})
dynamodb = boto3.client("dynamodb", config=_QUICK)
stepfunctions = boto3.client("stepfunctions", config=_QUICK)
logger = logging.getLogger()
logger.setLevel(logging.INFO)


def _respond(status: int, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": dict(pages.HEADERS), "body": body}


def _load(request_id: str | None) -> dict[str, Any] | None:
    """The stored request ``request_id`` names, or None (unknown id, or an item that is not a request)."""
    if not request_id or len(request_id) > 64:
        return None
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}}, ConsistentRead=True).get("Item")
    return item if item and item.get("kind", {}).get("S") == "request" else None


def _expired(item: dict[str, Any]) -> bool:
    return time.time() >= int(item["expiresAt"]["N"])


def _execution_state(item: dict[str, Any]) -> str | None:
    """What the execution's status says of the request: None while it runs (or cannot be read), else the
    outcome or the status."""
    try:
        described = stepfunctions.describe_execution(executionArn=item["executionArn"]["S"])
    except (ClientError, BotoCoreError) as error:
        code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
        logger.warning("cannot read the execution of request %s: %s", item["id"]["S"], code)
        return None
    if described["status"] == "RUNNING":
        return None
    if described["status"] == "SUCCEEDED":
        try:
            outcome = json.loads(described.get("output") or "{}").get("outcome")
        except ValueError:
            outcome = None
        if outcome:
            return f"Already decided: {outcome}"
    return f"The approval ended: {described['status']}"


def _answered_text(answer: dict[str, Any]) -> str:
    return f"Already answered by you: {answer['M']['decision']['S']}"


def show(item: dict[str, Any] | None) -> dict[str, Any]:
    """GET: the form, or the request's state."""
    if item is None:
        return _respond(404, pages.state(None, "Not found", "This link is unknown or has expired."))
    if "answer" in item:
        return _respond(200, pages.state(item, "Answered", _answered_text(item["answer"])))
    if "closed" in item:
        return _respond(200, pages.state(item, "Decided", item["closed"]["S"]))
    if _expired(item):
        return _respond(200, pages.state(item, "Expired", "This request has expired: its deadline has passed."))
    decided = _execution_state(item)
    if decided:
        return _respond(200, pages.state(item, "Decided", decided))
    return _respond(200, pages.form(item))


def _form(event: dict[str, Any]) -> dict[str, str]:
    body = event.get("body") or ""
    text = base64.b64decode(body).decode("utf-8", "replace") if event.get("isBase64Encoded") else body
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _close(item: dict[str, Any], at: str, state: str) -> None:
    """The token was refused: the answer did not count; the request keeps what was decided instead."""
    dynamodb.update_item(TableName=TABLE, Key={"id": item["id"]}, UpdateExpression="REMOVE answer SET closed = :state",
                         ConditionExpression="answer.#at = :at", ExpressionAttributeNames={"#at": "at"},
                         ExpressionAttributeValues={":at": {"S": at}, ":state": {"S": state}})


def _withdraw(item: dict[str, Any], at: str) -> None:
    """Sending failed for a reason of its own (throttling, an outage): the answer is withdrawn, to be sent again."""
    dynamodb.update_item(TableName=TABLE, Key={"id": item["id"]}, UpdateExpression="REMOVE answer",
                         ConditionExpression="answer.#at = :at", ExpressionAttributeNames={"#at": "at"},
                         ExpressionAttributeValues={":at": {"S": at}})


def answer(item: dict[str, Any] | None, form: dict[str, str]) -> dict[str, Any]:
    """POST: record the decision once and send it to Step Functions."""
    if item is None or _expired(item):
        return _respond(404, pages.state(None, "Not found", "This link is unknown or has expired."))
    if not hmac.compare_digest(form.get("nonce", "").encode(), item["nonce"]["S"].encode()):
        return _respond(403, pages.state(None, "Forbidden", "This form is not valid: open the link again."))
    decision, comment = form.get("decision", ""), form.get("comment", "")
    if decision not in DECISIONS:
        return _respond(400, pages.state(item, "Bad request", "The decision must be approve or reject."))
    if len(comment) > MAX_COMMENT:
        return _respond(400, pages.state(item, "Bad request",
                                         f"The comment has {len(comment)} characters: at most {MAX_COMMENT}."))
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    recorded = {"decision": {"S": decision}, "at": {"S": at}, "comment": {"S": comment} if comment else {"NULL": True}}
    try:
        dynamodb.update_item(TableName=TABLE, Key={"id": item["id"]}, UpdateExpression="SET answer = :answer",
                             ConditionExpression="attribute_not_exists(answer) AND attribute_not_exists(closed)",
                             ExpressionAttributeValues={":answer": {"M": recorded}})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        current = _load(item["id"]["S"]) or item
        text = _answered_text(current["answer"]) if "answer" in current else current.get("closed", {}).get("S", "")
        return _respond(409, pages.state(current, "Already used", text or "This link was already used."))
    try:
        stepfunctions.send_task_success(taskToken=item["taskToken"]["S"], output=json.dumps(
            {"decision": decision, "comment": comment or None}))
    except (ClientError, BotoCoreError) as error:
        code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
        if code not in CLOSED_TOKEN_ERRORS:
            _withdraw(item, at)
            logger.error("request %s: SendTaskSuccess failed with %s", item["id"]["S"], code)
            return _respond(503, pages.state(item, "Not recorded", "Your answer could not be sent: try again."))
        state = _execution_state(item) or "This request was replaced by a newer one: use the latest link you got."
        _close(item, at, state)
        logger.info("request %s: the token was refused (%s)", item["id"]["S"], code)
        return _respond(409, pages.state(item, "Already decided", state))
    logger.info("request %s answered: %s", item["id"]["S"], decision)
    verb = "approved" if decision == "approve" else "rejected"
    return _respond(200, pages.state(item, "Recorded", f"Recorded: you {verb}."
                                     + (f" Your comment: {comment}" if comment else "")))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve ``GET`` and ``POST`` on ``/requests/{id}``."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    item = _load((event.get("pathParameters") or {}).get("id"))
    if method == "GET":
        return show(item)
    if method == "POST":
        return answer(item, _form(event))
    return _respond(405, pages.state(None, "Method not allowed", "Use GET to read a request, POST to answer it."))
