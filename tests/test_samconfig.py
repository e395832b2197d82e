"""samconfig.toml: one config env per pattern, usable as `sam validate|deploy|delete --config-env PATTERN`."""

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

from earlyexit.local import PATTERNS

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text())


def _deploy(config: dict[str, Any], pattern: str) -> dict[str, Any]:
    return config[pattern]["deploy"]["parameters"]


def test_samconfig_has_version_0_1(config: dict[str, Any]) -> None:
    assert config["version"] == 0.1


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_command_of_a_pattern_env_names_its_template(config: dict[str, Any], pattern: str) -> None:
    for command in ("deploy", "validate"):
        template = config[pattern][command]["parameters"]["template_file"]
        assert template == f"{pattern}/template.yaml"
        assert (ROOT / template).is_file()


def test_each_pattern_deploys_to_its_own_stack(config: dict[str, Any]) -> None:
    names = {pattern: _deploy(config, pattern)["stack_name"] for pattern in PATTERNS}
    assert names == {pattern: f"earlyexit-{pattern}" for pattern in PATTERNS}
    for pattern in PATTERNS:
        assert config[pattern]["delete"]["parameters"]["stack_name"] == names[pattern]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_deploy_acknowledges_iam_and_runs_unattended(config: dict[str, Any], pattern: str) -> None:
    deploy = _deploy(config, pattern)
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is False


@pytest.mark.parametrize("pattern", PATTERNS)
def test_parameter_overrides_name_only_declared_parameters(config: dict[str, Any], pattern: str) -> None:
    declared = yaml_parse((ROOT / pattern / "template.yaml").read_text())["Parameters"]
    overrides = dict(item.split("=", 1) for item in shlex.split(_deploy(config, pattern)["parameter_overrides"]))
    assert overrides, "no parameter_overrides"
    assert set(overrides) <= set(declared)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_sam_validate_with_the_pattern_config_env_passes(pattern: str) -> None:
    assert SAMCONFIG.is_file()
    sam = Path(sys.executable).with_name("sam")
    result = subprocess.run(
        [str(sam), "validate", "--config-env", pattern, "--config-file", "samconfig.toml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{pattern}/template.yaml is a valid SAM Template" in result.stdout + result.stderr
