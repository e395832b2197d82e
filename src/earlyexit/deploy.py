"""The local deploy: a stack's template.yaml translated with aws-sam-translator and provisioned through the
service APIs, as CloudFormation would (parameters, conditions, intrinsic functions, dependency order).

A resource type it cannot provision is an error, never skipped (:mod:`earlyexit.provisioners`
holds one provisioner per resource type).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from earlyexit.errors import DeployError
from earlyexit.patterns import stack_folder
from earlyexit.provisioners import PROVISIONERS

if TYPE_CHECKING:
    from earlyexit.cloud import Cloud

__all__ = ["Deployment", "Stack", "is_physical_name", "physical_name"]

_LOCAL_BUCKET = "earlyexit-local-definitions"  # what `sam package` would upload to: here, the stack's own folder


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its outputs and the physical id of each resource."""

    name: str
    pattern: str
    outputs: dict[str, str]
    resources: dict[str, str] = field(default_factory=dict)


def physical_name(stack: str, logical_id: str, limit: int) -> str:
    """A generated physical name, as CloudFormation makes one: ``stack-LogicalId-SUFFIX`` within ``limit``."""
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    base = re.sub(r"[^A-Za-z0-9-]", "-", f"{stack}-{logical_id}")
    return f"{base[: limit - 13]}-{suffix}"


def is_physical_name(name: str, stack: str, logical_id: str) -> bool:
    """Whether ``name`` is one :func:`physical_name` generated for ``logical_id`` of ``stack``."""
    base = re.sub(r"[^A-Za-z0-9-]", "-", f"{stack}-{logical_id}")
    return re.fullmatch(rf"{re.escape(base)}-[A-Z0-9]{{12}}", name) is not None


class Deployment:
    """One stack being deployed: its template translated, parameters and conditions resolved, resources
    provisioned in dependency order."""


    def __init__(self, cloud: Cloud, pattern: str, stack_name: str, overrides: dict[str, str | int]) -> None:
        self.cloud = cloud
        self.pattern = pattern
        self.stack_name = stack_name
        self.folder = stack_folder(pattern).path
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
        for resource in template.get("Resources", {}).values():
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
            handler = PROVISIONERS.get(resource["Type"])
            if handler is None:
                raise DeployError(f"resource {logical_id}: type {resource['Type']} cannot be provisioned locally")
            handler(self, logical_id, self.resolve(resource.get("Properties", {})))
        outputs = {name: str(self.resolve(spec["Value"])) for name, spec in translated.get("Outputs", {}).items()
                   if self.conditions.get(spec.get("Condition", ""), True)}
        return Stack(self.stack_name, self.pattern, outputs, dict(self.physical))

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.cloud.region}:{self.account}:{resource}"

    def physical_name(self, logical_id: str, limit: int) -> str:
        """The name CloudFormation would generate for ``logical_id`` in this stack."""
        return physical_name(self.stack_name, logical_id, limit)

    def local_file(self, bucket: object, key: object) -> Path | None:
        """The file in the stack's folder that an S3 location of the local deploy stands for (None: not local)."""
        return self.folder / key if bucket == _LOCAL_BUCKET and isinstance(key, str) else None

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


_NO_VALUE = object()  # Ref AWS::NoValue: the property is removed
_CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")

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
