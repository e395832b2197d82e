"""The local deploy's provisioners for serverless resources: functions, their permissions, rules, HTTP APIs,
topics and queues.

Each takes the deployment, the resource's logical id and its resolved properties, creates the
resource through the service's API and records its physical id and attributes. A Lambda
function can only be deployed where the engine runs it in this process (the embedded engine,
or ``earlyexit serve``'s endpoint): anywhere else it would exist and never run.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from earlyexit.local import _Deployment

__all__ = ["PROVISIONERS", "package_folder"]


def package_folder(folder: Path) -> bytes:
    """``folder`` as a deployment package: a zip of its files (``sam build`` for a function without
    dependencies), caches left out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _code(deployment: _Deployment, logical_id: str, code: dict[str, Any]) -> bytes:
    from earlyexit.local import DeployError, local_location

    key = local_location(code.get("S3Bucket"), code.get("S3Key"))
    if key is None:
        raise DeployError(f"resource {logical_id}: Code must come from a local CodeUri")
    folder = deployment.folder / key
    if not folder.is_dir():
        raise DeployError(f"resource {logical_id}: CodeUri {key} is not a folder of {deployment.folder.name}")
    return package_folder(folder)


def lambda_function(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.local import DeployError, physical_name

    if not deployment.cloud.runs_functions:
        raise DeployError(f"resource {logical_id}: a Lambda function runs only in the embedded engine or in "
                          f"`earlyexit serve` (in-process), not at {deployment.cloud.endpoint_url}")
    name = props.get("FunctionName") or physical_name(deployment.stack_name, logical_id, 64)
    request: dict[str, Any] = {
        "FunctionName": name, "Runtime": props["Runtime"], "Role": props["Role"], "Handler": props["Handler"],
        "Code": {"ZipFile": _code(deployment, logical_id, props["Code"])},
    }
    for key in ("Environment", "Timeout", "MemorySize", "Architectures", "Description"):
        if key in props:
            request[key] = props[key]
    if "TracingConfig" in props:
        request["TracingConfig"] = props["TracingConfig"]
    arn = deployment.cloud.client("lambda").create_function(**request)["FunctionArn"]
    deployment.physical[logical_id] = name
    deployment.attributes[logical_id] = {"Arn": arn}


def lambda_permission(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request = {"FunctionName": props["FunctionName"], "StatementId": logical_id, "Action": props["Action"],
               "Principal": props["Principal"]}
    if "SourceArn" in props:
        request["SourceArn"] = props["SourceArn"]
    deployment.cloud.client("lambda").add_permission(**request)
    deployment.physical[logical_id] = logical_id


def events_rule(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.local import physical_name

    events = deployment.cloud.client("events")
    name = props.get("Name") or physical_name(deployment.stack_name, logical_id, 64)
    bus = props.get("EventBusName", "default")
    request: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    arn = events.put_rule(**request)["RuleArn"]
    if props.get("Targets"):
        events.put_targets(Rule=name, EventBusName=bus, Targets=props["Targets"])
    deployment.physical[logical_id] = name
    deployment.attributes[logical_id] = {"Arn": arn}


def http_api(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.gateway import api_base_url
    from earlyexit.local import DeployError, physical_name

    if "Body" not in props:
        raise DeployError(f"resource {logical_id}: an HTTP API without an OpenAPI Body cannot be deployed locally")
    apigatewayv2 = deployment.cloud.client("apigatewayv2")
    name = props["Body"].get("info", {}).get("title") or physical_name(deployment.stack_name, logical_id, 128)
    api_id = apigatewayv2.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
    apigatewayv2.reimport_api(ApiId=api_id, Body=json.dumps(props["Body"]))  # its routes and integrations
    deployment.physical[logical_id] = api_id
    deployment.attributes[logical_id] = {"ApiId": api_id,
                                         "ApiEndpoint": api_base_url(deployment.cloud.http_api_base(), api_id)}


def http_api_stage(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request: dict[str, Any] = {"ApiId": props["ApiId"], "StageName": props["StageName"],
                               "AutoDeploy": props.get("AutoDeploy", False)}
    for key in ("AccessLogSettings", "DefaultRouteSettings", "StageVariables"):
        if key in props:
            request[key] = props[key]
    deployment.cloud.client("apigatewayv2").create_stage(**request)
    deployment.physical[logical_id] = props["StageName"]


def sns_topic(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.local import physical_name

    name = props.get("TopicName") or physical_name(deployment.stack_name, logical_id, 256)
    attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
    arn = deployment.cloud.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    deployment.physical[logical_id] = arn
    deployment.attributes[logical_id] = {"TopicArn": arn, "TopicName": name}


def sqs_queue(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.local import physical_name

    sqs = deployment.cloud.client("sqs")
    name = props.get("QueueName") or physical_name(deployment.stack_name, logical_id, 80)
    attributes = {key: str(props[key]) for key in ("MessageRetentionPeriod", "KmsMasterKeyId",
                                                    "SqsManagedSseEnabled", "VisibilityTimeout") if key in props}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deployment.physical[logical_id] = url
    deployment.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}


def queue_policy(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    sqs = deployment.cloud.client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    deployment.physical[logical_id] = logical_id


def event_invoke_config(deployment: _Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request = {key: props[key] for key in ("FunctionName", "Qualifier", "MaximumRetryAttempts",
                                           "MaximumEventAgeInSeconds", "DestinationConfig") if key in props}
    deployment.cloud.client("lambda").put_function_event_invoke_config(**request)
    deployment.physical[logical_id] = logical_id


PROVISIONERS = {
    "AWS::Lambda::EventInvokeConfig": event_invoke_config,
    "AWS::Lambda::Function": lambda_function,
    "AWS::Lambda::Permission": lambda_permission,
    "AWS::Events::Rule": events_rule,
    "AWS::ApiGatewayV2::Api": http_api,
    "AWS::ApiGatewayV2::Stage": http_api_stage,
    "AWS::SNS::Topic": sns_topic,
    "AWS::SQS::Queue": sqs_queue,
    "AWS::SQS::QueuePolicy": queue_policy,
}
