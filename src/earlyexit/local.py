"""Deploy the patterns' SAM templates locally: into the embedded engine or any AWS-compatible endpoint.

``deploy`` reads the same ``template.yaml`` that ``sam deploy`` uses, translates it with
aws-sam-translator, loads ``DefinitionUri`` and applies ``DefinitionSubstitutions``, then
provisions each resource through the service APIs. A resource type it cannot provision is
an error, never skipped.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from earlyexit.errors import EarlyExitError
from earlyexit.provisioners import PROVISIONERS

if TYPE_CHECKING:
    from earlyexit.engine import FaultInjector
    from earlyexit.gateway import LocalHttpServer

# How many finished executions an embedded cloud keeps per account and region by default (the oldest go first).
DEFAULT_MAX_FINISHED_EXECUTIONS = 10_000

__all__ = ["DEFAULT_MAX_FINISHED_EXECUTIONS", "PATTERNS", "STACKS", "Cloud", "DeployError", "EmbeddedCloud", "Stack",
           "embedded_cloud", "local_location", "pattern_dir", "physical_name"]

PATTERNS = ("either-or", "quorum")
STACKS = (*PATTERNS, "inbox")  # every stack folder: the two patterns and the optional approval inbox
_LOCAL_BUCKET = "earlyexit-local-definitions"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class DeployError(EarlyExitError):
    """The template cannot be deployed as it is (names the resource or parameter and why)."""


def pattern_dir(pattern: str) -> Path:
    """The folder of ``pattern`` or of the inbox (its template.yaml)."""
    if pattern not in STACKS:
        raise DeployError(f"unknown stack {pattern!r}: expected one of {', '.join(STACKS)}")
    for root in (Path.cwd(), _SOURCE_ROOT):
        if (root / pattern / "template.yaml").is_file():
            return root / pattern
    raise DeployError(f"{pattern}/template.yaml not found in {Path.cwd()} or {_SOURCE_ROOT}")


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its outputs and the physical id of each resource."""

    name: str
    pattern: str
    outputs: dict[str, str]
    resources: dict[str, str] = field(default_factory=dict)


class Cloud:
    """boto3 clients bound to one endpoint and region, and a local ``deploy``."""

    def __init__(self, *, region: str = "us-east-1", endpoint_url: str | None = None,
                 session: boto3.Session | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._session = session or boto3.Session(
            region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        self._clients: dict[str, BaseClient] = {}
        self.stacks: dict[str, Stack] = {}

    @classmethod
    def aws(cls, region: str | None = None) -> Cloud:
        """AWS itself, with the default credentials (and region, unless given)."""
        session = boto3.Session(region_name=region)
        if not session.region_name:
            raise DeployError("no AWS region: pass --region or configure one")
        return cls(region=session.region_name, session=session)

    def stack(self, name: str, pattern: str) -> Stack:
        """A stack deployed with CloudFormation (`sam deploy`), read from its outputs."""
        described = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return Stack(name, pattern, outputs)

    @property
    def runs_functions(self) -> bool:
        """Whether Lambda functions deployed here run (in this process, on the engine serving the endpoint)."""
        from earlyexit import engine
        from earlyexit.engine.functions import function_endpoint

        return engine.installed() and self.endpoint_url is not None and self.endpoint_url == function_endpoint()

    def http_api_base(self) -> str:
        """Where this cloud's HTTP APIs answer (under the endpoint's own address)."""
        if self.endpoint_url is None:
            raise DeployError("HTTP APIs are served locally only by the embedded engine or `earlyexit serve`")
        return self.endpoint_url

    def queue_fed_by(self, name: str, *, service: str, source_arn: str) -> tuple[str, str]:
        """An SQS queue ``name`` that ``service`` (``events``, ``sns``) may send to from ``source_arn`` only, as AWS
        needs it; returns its URL and ARN."""
        sqs: Any = self.client("sqs")
        queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        queue_arn = str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"])
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"},
                           "Action": "sqs:SendMessage", "Resource": queue_arn,
                           "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]})})
        return queue_url, queue_arn

    def client(self, service: str) -> BaseClient:
        """A boto3 client for ``service`` bound to this cloud (cached, thread-safe)."""
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard"}, max_pool_connections=64))
        return self._clients[service]

    def deploy(self, pattern: str, *, parameters: Mapping[str, str | int] | None = None,
               stack_name: str | None = None) -> Stack:
        """Translate and provision ``pattern``'s template.yaml; returns the stack and its outputs."""
        name = stack_name or pattern
        if name in self.stacks:
            raise DeployError(f"stack {name!r} already exists in this cloud; pass another stack_name")
        stack = _Deployment(self, pattern, name, dict(parameters or {})).run()
        self.stacks[name] = stack
        return stack


class EmbeddedCloud(Cloud):
    """A :class:`Cloud` on the embedded engine, with its fault injector."""

    _http_server: LocalHttpServer | None = None

    @property
    def runs_functions(self) -> bool:
        return True

    def http_api_base(self) -> str:
        """A loopback server of this cloud's own, started with its first HTTP API."""
        if self._http_server is None:
            from earlyexit.gateway import LocalHttpServer

            self._http_server = LocalHttpServer()
        return self._http_server.url

    def close(self) -> None:
        """Stop the HTTP APIs' server, if one was started."""
        if self._http_server is not None:
            self._http_server.close()
            self._http_server = None

    @property
    def faults(self) -> FaultInjector:
        """The engine's fault rules and fired-faults log (docs/fault-injection.md)."""
        from earlyexit import engine

        return engine.FAULTS


@contextmanager
def embedded_cloud(*, region: str = "us-east-1", wait_time_scale: float = 1.0,
                   max_finished_executions: int | None = DEFAULT_MAX_FINISHED_EXECUTIONS) -> Iterator[EmbeddedCloud]:
    """An in-process AWS (moto with the engine fixes): no account, no Docker, no network.

    ``wait_time_scale`` scales Wait states and Retry intervals (1.0 is AWS's timing);
    ``max_finished_executions`` bounds the finished executions the engine keeps per account and
    region, the oldest dropped first (None: all). Both are process-wide while the block runs and
    restored when it exits. The engine is installed on entry and, unless another holder (a
    nested block, ``earlyexit serve``) still uses it, uninstalled on exit: running executions are
    aborted and moto is restored.
    """
    from moto import mock_aws

    from earlyexit import engine

    engine.install()
    previous = engine.wait_time_scale(), engine.max_finished_executions()
    try:
        engine.set_wait_time_scale(wait_time_scale)
        engine.set_max_finished_executions(max_finished_executions)
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                              "iam": {"load_aws_managed_policies": True}}):
            cloud = EmbeddedCloud(region=region)
            try:
                yield cloud
            finally:
                cloud.close()
    finally:
        engine.set_wait_time_scale(previous[0])
        engine.set_max_finished_executions(previous[1])
        engine.uninstall()


def physical_name(stack: str, logical_id: str, limit: int) -> str:
    """A generated physical name, as CloudFormation makes one: ``stack-LogicalId-SUFFIX`` within ``limit``."""
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    base = re.sub(r"[^A-Za-z0-9-]", "-", f"{stack}-{logical_id}")
    return f"{base[: limit - 13]}-{suffix}"


def local_location(bucket: object, key: object) -> str | None:
    """The local path an S3 location of the local deploy stands for (None for any other location)."""
    return str(key) if bucket == _LOCAL_BUCKET and isinstance(key, str) else None


_NO_VALUE = object()  # Ref AWS::NoValue: the property is removed


def _with_version(policy: dict[str, Any]) -> dict[str, Any]:
    # SAM omits Version; IAM then assumes the 2008 grammar, which has no policy variables.
    return {"Version": "2012-10-17", **policy}


class _Deployment:
    def __init__(self, cloud: Cloud, pattern: str, stack_name: str, overrides: dict[str, str | int]) -> None:
        self.cloud = cloud
        self.pattern = pattern
        self.stack_name = stack_name
        self.folder = pattern_dir(pattern)
        self.account = cloud.client("sts").get_caller_identity()["Account"]
        self.partition = "aws"
        self.overrides = overrides
        self.parameter_values: dict[str, str] = {}
        self.physical: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self.conditions: dict[str, bool] = {}

    # -- translation -------------------------------------------------------------------

    def translate(self, template: dict[str, Any]) -> dict[str, Any]:
        function_globals = template.get("Globals", {}).get("Function", {})
        if isinstance(function_globals.get("CodeUri"), str):
            function_globals["CodeUri"] = f"s3://{_LOCAL_BUCKET}/{function_globals['CodeUri'].rstrip('/')}"
        for logical_id, resource in template.get("Resources", {}).items():
            props = resource.get("Properties", {})
            uri = props.get("DefinitionUri")
            if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(uri, str):
                # What `sam package` does: the local file becomes an S3 location.
                props["DefinitionUri"] = f"s3://{_LOCAL_BUCKET}/{uri}"
            code = props.get("CodeUri")
            if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code, str):
                props["CodeUri"] = f"s3://{_LOCAL_BUCKET}/{code.rstrip('/')}"
        session = boto3.Session(region_name=self.cloud.region)
        metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
        translated = Translator(None, Parser(), metrics=metrics, boto_session=session).translate(
            template, dict(self.parameter_values), get_managed_policy_map=lambda: {})
        metrics.publish()
        return translated

    def parameters(self, template: dict[str, Any]) -> dict[str, str]:
        declared = template.get("Parameters", {})
        unknown = set(self.overrides) - set(declared)
        if unknown:
            raise DeployError(f"unknown parameter(s) {', '.join(sorted(unknown))} for {self.pattern}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            value = str(self.overrides.get(name, spec.get("Default", "")))
            if spec.get("Type") == "Number":
                try:
                    number = float(value)
                except ValueError:
                    raise DeployError(f"parameter {name}: {value!r} is not a number") from None
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    raise DeployError(f"parameter {name}: {value} is below MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    raise DeployError(f"parameter {name}: {value} is above MaxValue {spec['MaxValue']}")
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                raise DeployError(f"parameter {name}: {value!r} is not one of {spec['AllowedValues']}")
            values[name] = value
        return values

    # -- intrinsic functions -----------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in map(self.resolve, value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key in _CONDITION_FUNCTIONS:
                return self.condition_value(value)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.conditions[name] else if_false)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                try:
                    return self.attributes[logical_id][attribute]
                except KeyError:
                    raise DeployError(f"Fn::GetAtt {logical_id}.{attribute} is not available") from None
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                resolved = {k: str(self.resolve(v)) for k, v in variables.items()}
                return re.sub(r"\$\{([^}]+)\}", lambda m: resolved.get(m.group(1)) or self.sub_name(m.group(1)), text)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(i)) for i in items)
            if key.startswith("Fn::") or key == "Condition":
                raise DeployError(f"intrinsic function {key} is not supported by the local deploy")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def condition_value(self, value: Any) -> bool:
        """A condition's truth: Fn::Equals, Fn::Not, Fn::And, Fn::Or and references to other conditions."""
        (key, arg), = value.items()
        if key == "Condition":
            return self.conditions[arg]
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        results = [self.condition_value(a) if isinstance(a, dict) and set(a) & {"Condition", *_CONDITION_FUNCTIONS}
                   else bool(self.resolve(a)) for a in arg]
        return {"Fn::Not": lambda: not results[0], "Fn::And": lambda: all(results),
                "Fn::Or": lambda: any(results)}[key]()

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.cloud.region, "AWS::Partition": self.partition,
                  "AWS::AccountId": self.account, "AWS::StackName": self.stack_name, "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameter_values:
            return self.parameter_values[name]
        if name in self.physical:
            return self.physical[name]
        raise DeployError(f"Ref {name} names no parameter or provisioned resource")

    def sub_name(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return str(self.resolve({"Fn::GetAtt": [logical_id, attribute]}))
        return self.ref(name)

    # -- provisioning ------------------------------------------------------------------

    def run(self) -> Stack:
        template = yaml_parse((self.folder / "template.yaml").read_text())
        self.parameter_values = self.parameters(template)
        translated = self.translate(template)
        for name, condition in translated.get("Conditions", {}).items():
            self.conditions[name] = self.condition_value(condition)
        resources = {logical_id: resource for logical_id, resource in translated["Resources"].items()
                     if self.conditions.get(resource.get("Condition", ""), True)}
        for logical_id in _dependency_order(resources):
            resource = resources[logical_id]
            handler = _PROVISIONERS.get(resource["Type"])
            if handler is None:
                raise DeployError(f"resource {logical_id}: type {resource['Type']} cannot be provisioned locally")
            handler(self, logical_id, self.resolve(resource.get("Properties", {})))
        outputs = {name: str(self.resolve(spec["Value"])) for name, spec in translated.get("Outputs", {}).items()
                   if self.conditions.get(spec.get("Condition", ""), True)}
        return Stack(self.stack_name, self.pattern, outputs, dict(self.physical))

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.cloud.region}:{self.account}:{resource}"

    def log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("LogGroupName") or physical_name(self.stack_name, logical_id, 512)
        logs = self.cloud.client("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        self.physical[logical_id] = name
        self.attributes[logical_id] = {"Arn": self.arn("logs", f"log-group:{name}:*")}

    def role(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("RoleName") or physical_name(self.stack_name, logical_id, 64)
        iam = self.cloud.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            props["AssumeRolePolicyDocument"]))["Role"]["Arn"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps(_with_version(policy["PolicyDocument"])))
        for managed in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=managed)
        self.physical[logical_id] = name
        self.attributes[logical_id] = {"Arn": arn}

    def table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or physical_name(self.stack_name, logical_id, 255)
        ddb = self.cloud.client("dynamodb")
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
        self.physical[logical_id] = name
        self.attributes[logical_id] = {"Arn": arn}

    def state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        definition = self.definition(logical_id, props)
        name = props.get("StateMachineName") or physical_name(self.stack_name, logical_id, 80)
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
        arn = self.cloud.client("stepfunctions").create_state_machine(**request)["stateMachineArn"]
        self.physical[logical_id] = arn
        self.attributes[logical_id] = {"Arn": arn, "Name": name}

    def definition(self, logical_id: str, props: dict[str, Any]) -> str:
        if "DefinitionS3Location" in props:
            location = props["DefinitionS3Location"]
            if location.get("Bucket") != _LOCAL_BUCKET:
                raise DeployError(f"resource {logical_id}: DefinitionS3Location must come from a local DefinitionUri")
            text = (self.folder / location["Key"]).read_text()
        elif "DefinitionString" in props:
            text = props["DefinitionString"]
        elif "Definition" in props:
            text = json.dumps(props["Definition"])
        else:
            raise DeployError(f"resource {logical_id}: no definition")
        substitutions = {k: str(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in substitutions:
                raise DeployError(f"resource {logical_id}: ${{{key}}} has no DefinitionSubstitutions entry")
            return substitutions[key]

        text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", substitute, text)
        json.loads(text)
        return text


_CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")

_PROVISIONERS = {
    "AWS::Logs::LogGroup": _Deployment.log_group,
    "AWS::IAM::Role": _Deployment.role,
    "AWS::DynamoDB::Table": _Deployment.table,
    "AWS::StepFunctions::StateMachine": _Deployment.state_machine,
    **PROVISIONERS,
}


def _lower_first(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the Step Functions API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_first(v) for v in value]
    return value


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(arg, str):
                    found |= _references(arg[1])
            else:
                found |= _references(arg)
    return found


def _dependency_order(resources: dict[str, Any]) -> list[str]:
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in ordered:
            return
        if logical_id in visiting:
            raise DeployError(f"circular dependency through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        for dependency in sorted((_references(resource) | set([depends] if isinstance(depends, str) else depends))
                                 & set(resources)):
            visit(dependency)
        visiting.discard(logical_id)
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return ordered
