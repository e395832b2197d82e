"""samconfig.toml: one config env per stack (both patterns and the inbox), usable as
`sam validate|deploy|delete --config-env STACK`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from earlyexit.patterns import STACKS, stack_folder

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text())


def _deploy(config: dict[str, Any], stack: str) -> dict[str, Any]:
    return config[stack]["deploy"]["parameters"]


def _overrides(config: dict[str, Any], stack: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(_deploy(config, stack)["parameter_overrides"]))


def test_samconfig_has_version_0_1(config: dict[str, Any]) -> None:
    assert config["version"] == 0.1


def test_there_is_one_config_env_per_stack(config: dict[str, Any]) -> None:
    assert set(config) - {"version"} == set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_each_command_of_a_stack_env_names_its_template(config: dict[str, Any], stack: str) -> None:
    for command in ("deploy", "validate"):
        template = config[stack][command]["parameters"]["template_file"]
        assert template == f"{stack}/template.yaml"
        assert (ROOT / template).is_file()


@pytest.mark.parametrize("stack", STACKS)
def test_validate_lints_the_template(config: dict[str, Any], stack: str) -> None:
    assert config[stack]["validate"]["parameters"].get("lint") is True


def test_each_stack_deploys_to_its_own_stack_name(config: dict[str, Any]) -> None:
    names = {stack: _deploy(config, stack)["stack_name"] for stack in STACKS}
    assert names == {stack: stack_folder(stack).default_stack_name for stack in STACKS}
    for stack in STACKS:
        assert config[stack]["delete"]["parameters"]["stack_name"] == names[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_deploy_acknowledges_iam_and_runs_unattended(config: dict[str, Any], stack: str) -> None:
    deploy = _deploy(config, stack)
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_parameter_overrides_name_only_declared_parameters(config: dict[str, Any], stack: str) -> None:
    declared = yaml_parse((stack_folder(stack).path / "template.yaml").read_text())["Parameters"]
    overrides = _overrides(config, stack)
    assert overrides, "no parameter_overrides"
    assert set(overrides) <= set(declared)


def test_the_inbox_listens_on_the_bus_the_patterns_publish_to(config: dict[str, Any]) -> None:
    buses = {stack: _overrides(config, stack).get("EventBusName") for stack in STACKS}
    assert None not in buses.values(), buses
    assert len(set(buses.values())) == 1, buses


@pytest.mark.parametrize("stack", STACKS)
def test_sam_validate_with_the_stack_config_env_passes(stack: str) -> None:
    assert SAMCONFIG.is_file()
    sam = Path(sys.executable).with_name("sam")
    result = subprocess.run(
        [str(sam), "validate", "--config-env", stack, "--config-file", "samconfig.toml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{stack}/template.yaml is a valid SAM Template" in result.stdout + result.stderr
