"""The approval inbox seen from outside: where a deployed inbox is, and each pending request's link.

The inbox stack (``inbox/``) stores each request under a random link id and maps its task token
to that id by the token's SHA-256 (``token#<hex>``), so that a link can be found from the token
without the token being stored twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from earlyexit.errors import EarlyExitError
from earlyexit.local import Cloud
from earlyexit.patterns import stack_folder

__all__ = ["DEFAULT_INBOX_STACK", "NOTIFICATION_QUEUE", "Inbox", "InboxNotFound", "deploy_inbox", "find_inbox"]

DEFAULT_INBOX_STACK = stack_folder("inbox").default_stack_name
NOTIFICATION_QUEUE = "earlyexit-notifications"  # locally, the inbox topic's subscriber: the mails, to read


class InboxNotFound(EarlyExitError):
    """No inbox stack of that name where the command looked."""


@dataclass(frozen=True)
class Inbox:
    """A deployed inbox: its base URL and its requests table."""

    url: str
    table: str

    def link(self, dynamodb: Any, task_token: str) -> str | None:
        """The link of the request that carries ``task_token`` (None while the inbox has not stored it)."""
        key = "token#" + hashlib.sha256(task_token.encode()).hexdigest()
        item = dynamodb.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
        return f"{self.url.rstrip('/')}/requests/{item['requestId']['S']}" if item else None


def find_inbox(cloud: Cloud, stack: str = DEFAULT_INBOX_STACK) -> Inbox:
    """The inbox deployed as ``stack``: from its CloudFormation outputs, or, on a local endpoint (where
    stacks are deployed without CloudFormation), from the HTTP API and table the stack's name generated."""
    try:
        described = cloud.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ValidationError":
            raise
        return _locally_deployed(cloud, stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if not {"InboxUrl", "RequestsTableName"} <= set(outputs):
        raise InboxNotFound(f"stack {stack} has no InboxUrl and RequestsTableName outputs: is it an earlyexit inbox?")
    return Inbox(outputs["InboxUrl"], outputs["RequestsTableName"])


def _locally_deployed(cloud: Cloud, stack: str) -> Inbox:
    from earlyexit.gateway import api_base_url

    apis = [api for api in cloud.client("apigatewayv2").get_apis().get("Items", []) if api.get("Name") == stack]
    prefix = f"{stack}-RequestsTable-"
    tables = [name for page in cloud.client("dynamodb").get_paginator("list_tables").paginate()
              for name in page["TableNames"] if name.startswith(prefix)]
    if len(apis) != 1 or len(tables) != 1 or cloud.endpoint_url is None:
        raise InboxNotFound(f"no inbox stack {stack}: deploy it (sam deploy --config-env inbox; `earlyexit serve` "
                            f"deploys one), or name it with --inbox-stack")
    return Inbox(api_base_url(cloud.endpoint_url, apis[0]["ApiId"]), tables[0])


def deploy_inbox(cloud: Cloud, *, stack_name: str = DEFAULT_INBOX_STACK) -> tuple[dict[str, str], str]:
    """Deploy the inbox into ``cloud`` (where functions run in-process) and subscribe the SQS queue
    ``earlyexit-notifications`` to its topic, so that the notifications can be read; returns the inbox's
    outputs and the queue's URL."""
    outputs = cloud.deploy("inbox", stack_name=stack_name).outputs
    topic_arn = outputs["NotificationTopicArn"]
    queue_url, queue_arn = cloud.queue_fed_by(NOTIFICATION_QUEUE, service="sns", source_arn=topic_arn)
    cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return outputs, queue_url
