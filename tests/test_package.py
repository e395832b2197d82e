"""The package stands on its own: installed from its wheel it deploys the stacks from any directory, declares
what it imports, and exports its public API."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import threading
import tomllib
import zipfile
from pathlib import Path

import pytest

import earlyexit
from earlyexit.cloud import Cloud
from earlyexit.patterns import STACKS, stack_folder

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "earlyexit"
SHIPPED = ("template.yaml", "statemachine/*.asl.json", "src/*.py")  # what a deploy reads from a stack folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built as a wheel, as `pip install .` builds it (setuptools fetched from the package registry)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
                   check=True, timeout=240, capture_output=True)
    (built,) = out.glob("earlyexit-*.whl")
    return built


def test_the_wheel_carries_every_file_a_deploy_reads_from_each_stack(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for stack in STACKS:
        wanted = {f"earlyexit/stacks/{stack}/{path.relative_to(ROOT / stack).as_posix()}"
                  for pattern in SHIPPED for path in (ROOT / stack).glob(pattern)}
        assert wanted, stack
        assert wanted - names == set(), stack


def test_the_installed_wheel_runs_the_demo_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "100"}
    where = subprocess.run([sys.executable, "-c", "import earlyexit; print(earlyexit.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    demo = subprocess.run([sys.executable, "-m", "earlyexit", "demo", "quorum"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "APPROVED" in demo.stdout and "REJECTED" in demo.stdout
    assert "alice approves in the inbox" in demo.stdout  # the inbox's stack and functions, from the wheel


def test_a_stack_folder_is_found_through_the_package_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for stack in STACKS:
        shipped = stack_folder(stack).path / "template.yaml"
        assert shipped.read_bytes() == (ROOT / stack / "template.yaml").read_bytes()


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"earlyexit"}


def test_every_third_party_module_the_package_imports_is_a_declared_dependency() -> None:
    declared = {re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()
                for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    undeclared = {module: distributions.get(module) for module in _imported_top_level_modules()
                  if not {d.lower() for d in distributions.get(module, [])} & declared}
    assert undeclared == {}


def test_the_public_api_is_exported_from_the_package() -> None:
    assert {"embedded_cloud", "Cloud", "approvals", "rules", "EarlyExitError", "DeployError", "WaitTimeout",
            "ApprovalError"} <= set(earlyexit.__all__)
    assert all(hasattr(earlyexit, name) for name in earlyexit.__all__)


def test_every_error_the_package_exports_derives_from_its_base_error() -> None:
    errors = [getattr(earlyexit, name) for name in earlyexit.__all__
              if isinstance(getattr(earlyexit, name), type) and issubclass(getattr(earlyexit, name), Exception)]
    assert len(errors) >= 4
    assert all(issubclass(error, earlyexit.EarlyExitError) for error in errors)


def test_clients_asked_for_from_many_threads_at_once_are_one_client_per_service() -> None:
    cloud = Cloud(endpoint_url="http://127.0.0.1:9")  # never called: clients are only created
    start = threading.Barrier(32)
    got: list[object] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            start.wait(timeout=30)
            got.append(cloud.client("stepfunctions"))
        except BaseException as error:  # reported below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(got) == 32
    assert len({id(client) for client in got}) == 1
