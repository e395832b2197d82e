"""The engine runs Python Lambda functions in-process: Invoke, EventBridge rule targets and HTTP API routes.

AWS behaviour shown here: the Lambda Python handler and context
(https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html,
https://docs.aws.amazon.com/lambda/latest/dg/python-context.html), errors of Invoke
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), log streams between START and END
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html), EventBridge's
asynchronous invocation with the event envelope
(https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html), and the HTTP API's
payload format 2.0 and its answers for a missing route or a failed function
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
"""

from __future__ import annotations

import base64
import json
import textwrap
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from earlyexit.gateway import api_base_url
from earlyexit.local import Cloud
from earlyexit.polling import wait_until
from earlyexit.provisioners import package_folder

pytestmark = [pytest.mark.engine, pytest.mark.deploys]

ECHO = """
import logging, os
logger = logging.getLogger()
logger.setLevel(logging.INFO)
GREETING = os.environ.get("GREETING")  # read at import, as Lambda's best practices advise
from helper import NAME

def handler(event, context):
    logger.info("handled %s", NAME)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"event": event, "greeting": GREETING, "helper": NAME, "function": context.function_name,
            "requestId": context.aws_request_id, "remaining": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def function(cloud: Cloud, tmp_path: Any) -> dict[str, str]:
    """A Python function (handler app.handler, a sibling module helper.py, GREETING in its environment)."""
    name = f"echo-{uuid.uuid4().hex[:8]}"
    (tmp_path / "app.py").write_text(textwrap.dedent(ECHO))
    (tmp_path / "helper.py").write_text(f"NAME = {name!r}\n")
    role = cloud.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    created = cloud.client("lambda").create_function(
        FunctionName=name, Runtime="python3.13", Role=role, Handler="app.handler",
        Code={"ZipFile": package_folder(tmp_path)}, Environment={"Variables": {"GREETING": f"hello {name}"}})
    return {"name": name, "arn": created["FunctionArn"]}


def log_lines(cloud: Cloud, function_name: str) -> list[str]:
    """The lines in the function's log group (none before its first invocation has created the group)."""
    logs = cloud.client("logs")
    group = f"/aws/lambda/{function_name}"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        return []
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def invoke(cloud: Cloud, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read())


def test_invoke_runs_the_python_handler_in_process_with_its_environment_and_context(
        cloud: Cloud, function: dict[str, str]) -> None:
    response, result = invoke(cloud, function["name"], {"x": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert result["event"] == {"x": 1}
    assert result["greeting"] == f"hello {function['name']}"
    assert result["function"] == function["name"]
    assert result["remaining"] > 0 and uuid.UUID(result["requestId"])


def test_modules_beside_the_handler_are_the_function_s_own(cloud: Cloud, function: dict[str, str],
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other")
    (other / "app.py").write_text(textwrap.dedent(ECHO))
    (other / "helper.py").write_text("NAME = 'the other one'\n")
    role = cloud.client("iam").get_role(RoleName=function["name"])["Role"]["Arn"]
    cloud.client("lambda").create_function(FunctionName=f"{function['name']}-other", Runtime="python3.13", Role=role,
                                           Handler="app.handler", Code={"ZipFile": package_folder(other)})
    assert invoke(cloud, f"{function['name']}-other", {})[1]["helper"] == "the other one"
    assert invoke(cloud, function["name"], {})[1]["helper"] == function["name"]


def test_a_handler_that_raises_is_a_function_error_with_lambda_s_error_document(
        cloud: Cloud, function: dict[str, str]) -> None:
    response, result = invoke(cloud, function["name"], {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert result == {"errorMessage": "asked to fail", "errorType": "ValueError"}


def test_the_handler_s_log_lines_go_to_its_log_group_between_start_and_end(
        cloud: Cloud, function: dict[str, str]) -> None:
    response, result = invoke(cloud, function["name"], {})
    messages = log_lines(cloud, function["name"])
    request_id = result["requestId"]
    start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
    end = messages.index(f"END RequestId: {request_id}")
    assert start < end
    assert any(f"handled {function['name']}" in line for line in messages[start:end])


def test_a_rule_delivers_to_its_function_and_its_queue_alike(cloud: Cloud, function: dict[str, str]) -> None:
    events, sqs, source = cloud.client("events"), cloud.client("sqs"), f"test.{function['name']}"
    queue = sqs.create_queue(QueueName=function["name"])["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=function["name"], EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=function["name"], Targets=[{"Id": "f", "Arn": function["arn"]},
                                                       {"Id": "q", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": source, "DetailType": "Ping", "Detail": json.dumps({"n": 8})}])
    message = wait_until(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), timeout=10,
                         what="the rule's delivery to the queue")[0]
    assert json.loads(message["Body"])["detail"] == {"n": 8}
    wait_until(lambda: any("handled" in line for line in log_lines(cloud, function["name"])), timeout=10,
               what="the rule's invocation")


def test_the_event_a_rule_delivers_to_a_function_is_eventbridge_s_envelope(cloud: Cloud, tmp_path: Any) -> None:
    """The function records its event in a table, so the test reads exactly what it received."""
    name = f"record-{uuid.uuid4().hex[:8]}"
    table = cloud.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])["TableDescription"]["TableName"]
    (tmp_path / "app.py").write_text(textwrap.dedent(f"""
        import json, boto3
        table = boto3.client("dynamodb")
        def handler(event, context):
            table.put_item(TableName={table!r}, Item={{"id": {{"S": "event"}}, "body": {{"S": json.dumps(event)}}}})
    """))
    role = cloud.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = cloud.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                                 Handler="app.handler",
                                                 Code={"ZipFile": package_folder(tmp_path)})["FunctionArn"]
    events = cloud.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [f"test.{name}"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "f", "Arn": arn}])
    events.put_events(Entries=[{"Source": f"test.{name}", "DetailType": "Ping", "Detail": json.dumps({"n": 7})}])
    item = wait_until(lambda: cloud.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "event"}}).get(
        "Item"), timeout=10, what="the function's record of its event")
    event = json.loads(item["body"]["S"])
    assert {k: event[k] for k in ("source", "detail-type", "detail", "region")} == {
        "source": f"test.{name}", "detail-type": "Ping", "detail": {"n": 7}, "region": cloud.region}
    assert event["account"].isdigit() and len(event["account"]) == 12
    assert event["time"].endswith("Z") and "T" in event["time"]
    assert "ingestion-time" not in event


@pytest.fixture
def http_api(cloud: Cloud, function: dict[str, str]) -> str:
    """An HTTP API with GET /items/{id} and POST /items to the function (payload 2.0), as SAM writes its Body."""
    uri = f"arn:aws:apigateway:{cloud.region}:lambda:path/2015-03-31/functions/{function['arn']}/invocations"
    integration = {"type": "aws_proxy", "httpMethod": "POST", "uri": uri, "payloadFormatVersion": "2.0"}
    body = {"openapi": "3.0.1", "info": {"title": function["name"]}, "paths": {
        "/items/{id}": {"get": {"x-amazon-apigateway-integration": integration}},
        "/items": {"post": {"x-amazon-apigateway-integration": integration}}}}
    apigatewayv2 = cloud.client("apigatewayv2")
    api_id = apigatewayv2.create_api(Name=function["name"], ProtocolType="HTTP")["ApiId"]
    apigatewayv2.reimport_api(ApiId=api_id, Body=json.dumps(body))
    return api_base_url(cloud.http_api_base(), api_id)


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_http_api_route_invokes_its_function_with_the_payload_2_0_event(http_api: str) -> None:
    status, result = request(f"{http_api}/items/42?colour=red&colour=blue", headers={"X-Trace": "abc"})
    assert status == 200
    event = result["event"]
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "GET /items/{id}", "/items/42")
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"colour": "red,blue"}
    assert event["rawQueryString"] == "colour=red&colour=blue"
    assert event["headers"]["x-trace"] == "abc"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["isBase64Encoded"] is False


def test_a_form_post_arrives_base64_encoded(http_api: str) -> None:
    status, result = request(f"{http_api}/items", data=b"decision=approve&comment=ok",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    event = result["event"]
    assert event["routeKey"] == "POST /items" and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"decision=approve&comment=ok"


def test_a_path_without_a_route_is_404_not_found(http_api: str) -> None:
    assert request(f"{http_api}/nothing/here") == (404, {"message": "Not Found"})
    assert request(f"{http_api}/items/1", data=b"x") == (404, {"message": "Not Found"})


def test_a_function_that_fails_is_500_internal_server_error(cloud: Cloud, http_api: str, tmp_path: Any,
                                                           function: dict[str, str]) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    raise RuntimeError('broken')\n")
    cloud.client("lambda").update_function_code(FunctionName=function["name"], ZipFile=package_folder(tmp_path))
    assert request(f"{http_api}/items/1") == (500, {"message": "Internal Server Error"})
