"""The local deploy's provisioners, one per resource type: log groups, roles, tables, state machines,
functions and their permissions, rules, HTTP APIs, topics and queues.

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

from earlyexit.errors import DeployError

if TYPE_CHECKING:
    from earlyexit.deploy import Deployment

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


def _code(deployment: Deployment, logical_id: str, code: dict[str, Any]) -> bytes:
    folder = deployment.local_file(code.get("S3Bucket"), code.get("S3Key"))
    if folder is None:
        raise DeployError(f"resource {logical_id}: Code must come from a local CodeUri")
    if not folder.is_dir():
        raise DeployError(f"resource {logical_id}: CodeUri {code['S3Key']} is not a folder of {deployment.folder.name}")
    return package_folder(folder)


def lambda_function(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:

    if not deployment.cloud.runs_functions:
        raise DeployError(f"resource {logical_id}: a Lambda function runs only in the embedded engine or in "
                          f"`earlyexit serve` (in-process), not at {deployment.cloud.endpoint_url}")
    name = props.get("FunctionName") or deployment.physical_name(logical_id, 64)
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


def lambda_permission(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request = {"FunctionName": props["FunctionName"], "StatementId": logical_id, "Action": props["Action"],
               "Principal": props["Principal"]}
    if "SourceArn" in props:
        request["SourceArn"] = props["SourceArn"]
    deployment.cloud.client("lambda").add_permission(**request)
    deployment.physical[logical_id] = logical_id


def events_rule(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:

    events = deployment.cloud.client("events")
    name = props.get("Name") or deployment.physical_name(logical_id, 64)
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


def http_api(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    from earlyexit.gateway import api_base_url

    if "Body" not in props:
        raise DeployError(f"resource {logical_id}: an HTTP API without an OpenAPI Body cannot be deployed locally")
    apigatewayv2 = deployment.cloud.client("apigatewayv2")
    name = props["Body"].get("info", {}).get("title") or deployment.physical_name(logical_id, 128)
    api_id = apigatewayv2.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
    apigatewayv2.reimport_api(ApiId=api_id, Body=json.dumps(props["Body"]))  # its routes and integrations
    deployment.physical[logical_id] = api_id
    deployment.attributes[logical_id] = {"ApiId": api_id,
                                         "ApiEndpoint": api_base_url(deployment.cloud.http_api_base(), api_id)}


def http_api_stage(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request: dict[str, Any] = {"ApiId": props["ApiId"], "StageName": props["StageName"],
                               "AutoDeploy": props.get("AutoDeploy", False)}
    for key in ("AccessLogSettings", "DefaultRouteSettings", "StageVariables"):
        if key in props:
            request[key] = props[key]
    deployment.cloud.client("apigatewayv2").create_stage(**request)
    deployment.physical[logical_id] = props["StageName"]


def sns_topic(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:

    name = props.get("TopicName") or deployment.physical_name(logical_id, 256)
    attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
    arn = deployment.cloud.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    deployment.physical[logical_id] = arn
    deployment.attributes[logical_id] = {"TopicArn": arn, "TopicName": name}


def sqs_queue(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:

    sqs = deployment.cloud.client("sqs")
    name = props.get("QueueName") or deployment.physical_name(logical_id, 80)
    attributes = {key: str(props[key]) for key in ("MessageRetentionPeriod", "KmsMasterKeyId",
                                                    "SqsManagedSseEnabled", "VisibilityTimeout") if key in props}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deployment.physical[logical_id] = url
    deployment.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}


def queue_policy(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    sqs = deployment.cloud.client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    deployment.physical[logical_id] = logical_id


def event_invoke_config(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    request = {key: props[key] for key in ("FunctionName", "Qualifier", "MaximumRetryAttempts",
                                           "MaximumEventAgeInSeconds", "DestinationConfig") if key in props}
    deployment.cloud.client("lambda").put_function_event_invoke_config(**request)
    deployment.physical[logical_id] = logical_id


def log_group(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    name = props.get("LogGroupName") or deployment.physical_name(logical_id, 512)
    logs = deployment.cloud.client("logs")
    logs.create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    deployment.physical[logical_id] = name
    deployment.attributes[logical_id] = {"Arn": deployment.arn("logs", f"log-group:{name}:*")}

def iam_role(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    name = props.get("RoleName") or deployment.physical_name(logical_id, 64)
    iam = deployment.cloud.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        props["AssumeRolePolicyDocument"]))["Role"]["Arn"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(_with_version(policy["PolicyDocument"])))
    for managed in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    deployment.physical[logical_id] = name
    deployment.attributes[logical_id] = {"Arn": arn}

def dynamodb_table(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    name = props.get("TableName") or deployment.physical_name(logical_id, 255)
    ddb = deployment.cloud.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": name, "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"], "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True, "SSEType": props["SSESpecification"].get("SSEType", "KMS")}
    arn = ddb.create_table(**request)["TableDescription"]["TableArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)
    deployment.physical[logical_id] = name
    deployment.attributes[logical_id] = {"Arn": arn}

def state_machine(deployment: Deployment, logical_id: str, props: dict[str, Any]) -> None:
    definition = deployment.definition(logical_id, props)
    name = props.get("StateMachineName") or deployment.physical_name(logical_id, 80)
    request: dict[str, Any] = {
        "name": name, "definition": definition, "roleArn": props["RoleArn"],
        "type": props.get("StateMachineType", "STANDARD"),
    }
    if "LoggingConfiguration" in props:
        request["loggingConfiguration"] = _lower_first(props["LoggingConfiguration"])
    if "TracingConfiguration" in props:
        request["tracingConfiguration"] = _lower_first(props["TracingConfiguration"])
    if props.get("Tags"):
        request["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in props["Tags"]]
    arn = deployment.cloud.client("stepfunctions").create_state_machine(**request)["stateMachineArn"]
    deployment.physical[logical_id] = arn
    deployment.attributes[logical_id] = {"Arn": arn, "Name": name}



def _with_version(policy: dict[str, Any]) -> dict[str, Any]:
    # SAM omits Version; IAM then assumes the 2008 grammar, which has no policy variables.
    return {"Version": "2012-10-17", **policy}



def _lower_first(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the Step Functions API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_first(v) for v in value]
    return value


PROVISIONERS = {
    "AWS::Logs::LogGroup": log_group,
    "AWS::IAM::Role": iam_role,
    "AWS::DynamoDB::Table": dynamodb_table,
    "AWS::StepFunctions::StateMachine": state_machine,
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
