"""The repository stands alone: its documents point only inside it, and say what the code does."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from earlyexit.patterns import PATTERNS, stack_folder
from earlyexit.rules import check_input
from earlyexit.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CONTRACT = (ROOT / "docs" / "contract.md").read_text()
SAMPLES = "https://github.com/aws-samples/step-functions-workflows-collection/tree/main/"
ORIGINAL = {"either-or": "either-or-parallel-pattern", "quorum": "quorum-with-parallel-pattern"}


def _files() -> list[Path]:
    """Every file git tracks or would track (untracked files that are not ignored too)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(ROOT / name for name in set(listed) if (ROOT / name).is_file())


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        return None


TEXT_FILES = [path for path in _files() if _text(path) is not None]
MARKDOWN = [path for path in TEXT_FILES if path.suffix == ".md"]

# An absolute path on someone's machine.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|Users|root|mnt|tmp)/[\w.-]+")
# A relative path that climbs: resolved from the file's folder, it must be a file of the repository.
CLIMBING_PATH = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-][\w./-]*")
# Folders that exist beside the repository on its authors' machines, never in it.
FOREIGN_FOLDER = re.compile(r"(?<![\w./-])(?:notes|shared)/[\w.-]+")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _outside(path: Path, target: str) -> bool:
    return not (path.parent / target).resolve().is_relative_to(ROOT)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", TEXT_FILES, ids=_relative)
def test_no_file_refers_to_a_file_outside_the_repository(path: Path) -> None:
    text = _text(path) or ""
    found = MACHINE_PATH.findall(text)
    found += [m for m in CLIMBING_PATH.findall(text) if _outside(path, m) or not (path.parent / m).exists()]
    found += [m for m in FOREIGN_FOLDER.findall(text) if not (ROOT / m.split("/")[0]).is_dir()]
    assert not found, f"{_relative(path)} refers outside the repository: {', '.join(found)}"


@pytest.mark.parametrize("path", MARKDOWN, ids=_relative)
def test_every_relative_link_of_a_document_leads_to_a_file_of_the_repository(path: Path) -> None:
    targets = [t.split("#")[0] for t in MARKDOWN_LINK.findall(path.read_text())
               if not re.match(r"[a-z]+:|#", t)]
    broken = [t for t in targets if _outside(path, t) or not (path.parent / t).exists()]
    assert not broken, f"{_relative(path)} links to no file of the repository: {', '.join(broken)}"


# -- README ---------------------------------------------------------------------------------------


def _code_blocks(text: str) -> list[list[str]]:
    """Each fenced code block's lines."""
    return [block.splitlines() for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)]


def test_the_readme_opens_with_make_demo_and_make_test() -> None:
    first = _code_blocks(README)[0]
    assert [line.split("#")[0].strip() for line in first] == ["make demo", "make test"]


def test_the_readme_walks_the_local_path_before_aws() -> None:
    steps = ["make demo", "source .venv/bin/activate", "earlyexit serve", "earlyexit start",
             "aws stepfunctions send-task-success --endpoint-url", "sam deploy --config-env", "sam delete"]
    positions = [README.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions, strict=True))


@pytest.mark.parametrize("section", ["Where the contract is silent", "Fault model", "Error names", "Cost"])
def test_the_readme_has_the_sections_the_contract_leaves_to_it(section: str) -> None:
    assert re.search(rf"^#+ {section}$", README, flags=re.M)


def test_the_readme_points_to_the_fault_injection_guide() -> None:
    assert "](docs/fault-injection.md)" in README


def _error_names(states: dict[str, Any]) -> set[str]:
    """The error names of every Retry, Catch and Fail state of an ASL's states (nested ones included)."""
    names: set[str] = set()
    for state in states.values():
        for handler in state.get("Retry", []) + state.get("Catch", []):
            names.update(handler["ErrorEquals"])
        error = state.get("Error", "")
        if error.startswith("{%"):  # the names the expression can result in
            names.update(re.findall(r"(?:^{%|[?:])\s*'([A-Z][A-Za-z.]*)'", error))
        elif error:
            names.add(error)
        for branch in state.get("Branches", []):
            names |= _error_names(branch["States"])
        if "ItemProcessor" in state:
            names |= _error_names(state["ItemProcessor"]["States"])
    return names


ASL_ERRORS = sorted(set().union(*(_error_names(json.loads(
    (stack_folder(p).path / "statemachine" / f"{p}.asl.json").read_text())["States"]) for p in PATTERNS)))


@pytest.mark.parametrize("name", ASL_ERRORS)
def test_the_readme_lists_each_error_name_of_the_state_machines_with_its_source(name: str) -> None:
    rows = [line for line in README.splitlines() if line.startswith("|") and f"`{name}`" in line]
    assert rows, f"{name} is not in the README's error names"
    source = "https://docs.aws.amazon.com/" if "." in name else "this project"
    assert any(source in row for row in rows)


@pytest.mark.parametrize(("url", "price"), [
    ("https://aws.amazon.com/step-functions/pricing/", "$0.025 per 1,000 state transitions"),
    ("https://aws.amazon.com/dynamodb/pricing/on-demand/", "$0.625 per million write request units"),
    ("https://aws.amazon.com/dynamodb/pricing/on-demand/", "$0.125 per million read request units"),
    ("https://aws.amazon.com/eventbridge/pricing/", "$1.00 per million"),
])
def test_each_price_cites_its_pricing_page(url: str, price: str) -> None:
    assert url in README and price in " ".join(README.split())


def test_the_prices_say_when_they_were_read() -> None:
    assert re.search(r"read on \d{4}-\d{2}-\d{2}", README)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_readmes_link_the_original_sample(pattern: str) -> None:
    link = SAMPLES + ORIGINAL[pattern]
    assert link in README and link in (ROOT / pattern / "README.md").read_text()


def test_the_license_is_the_mit_0_that_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "MIT-0"
    assert (ROOT / "LICENSE").read_text().startswith("MIT No Attribution\n")


# -- pattern READMEs ------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_readme_has_the_serverless_patterns_sections_in_order(pattern: str) -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / pattern / "README.md").read_text(), flags=re.M)
    assert headings == ["Requirements", "Deploy", "How it works", "Testing", "Cleanup"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("command", ["earlyexit serve", "aws stepfunctions start-execution", "aws sqs receive-message",
                                     "aws stepfunctions send-task-success", "sam deploy --config-env",
                                     "sam delete --config-env"])
def test_each_pattern_readme_tests_with_the_plain_aws_cli_locally_and_on_aws(pattern: str, command: str) -> None:
    assert command in (ROOT / pattern / "README.md").read_text()


def test_the_quorum_diagram_shows_the_map_over_n_approvers() -> None:
    diagram = next(b for b in re.findall(r"```mermaid\n(.*?)```", (ROOT / "quorum" / "README.md").read_text(),
                                         flags=re.S))
    assert "Map" in diagram and "N - k" in diagram


# -- docs/contract.md -----------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "execution_input"), [
    ("either-or", {}), ("quorum", {}), ("either-or", {"approvers": ["a", "b"], "timeoutSeconds": 0}),
    ("either-or", {"approvers": ["a", "b"], "request": []}),
])
def test_the_contract_states_each_fixed_invalid_input_cause(pattern: str, execution_input: dict[str, Any]) -> None:
    violation = check_input(pattern, execution_input)
    assert violation is not None and f"`{violation.cause}`" in CONTRACT


@pytest.mark.parametrize(("execution_input", "default_quorum"), [
    ({"approvers": ["a", "b", "c"], "quorum": 0}, None), ({"approvers": ["a", "b", "c"]}, 4)])
def test_the_contract_states_the_quorum_causes_with_n_and_d(execution_input: dict[str, Any],
                                                           default_quorum: int | None) -> None:
    violation = check_input("quorum", execution_input, default_quorum=default_quorum)
    assert violation is not None
    generic = violation.cause.replace("(3)", "(N)").replace("to 3", "to N").replace("(4)", "(D)")
    assert f"`{generic}`" in CONTRACT


@pytest.mark.parametrize("command", sorted(main.commands))
def test_the_contract_describes_each_command(command: str) -> None:
    assert f"`earlyexit {command}" in CONTRACT


# -- Makefile -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["demo", "test"])
def test_make_says_what_it_installs_before_each_quiet_install(target: str, tmp_path: Path) -> None:
    planned = subprocess.run(["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}",
                              f"CHECKOV_VENV={tmp_path / 'checkov'}"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    installs = [i for i, line in enumerate(planned) if "pip install --quiet" in line and "--upgrade pip" not in line]
    assert installs
    for index in installs:
        said = next(line for line in reversed(planned[:index]) if line.startswith("echo "))
        assert said.startswith('echo "make: installing ') and "once)" in said, said


# -- the README as a newcomer reads it (issue 18) -------------------------------------------------


LOCAL_READMES = [ROOT / "README.md", *(ROOT / folder / "README.md" for folder in ("either-or", "quorum", "inbox"))]


def _options() -> list[str]:
    """Every long option of every command (--help aside)."""
    return sorted({option for command in main.commands.values() for param in command.params
                   for option in param.opts if option.startswith("--") and option != "--help"})


@pytest.mark.parametrize("option", _options())
def test_the_readme_names_every_option_of_the_command_line(option: str) -> None:
    assert f"`{option}" in README or f" {option} " in README or f"{option}`" in README, option


@pytest.mark.parametrize("path", LOCAL_READMES, ids=_relative)
def test_a_readme_that_runs_the_aws_cli_locally_says_how_to_install_it(path: Path) -> None:
    text = path.read_text()
    assert ".venv/bin/pip install awscli" in text
    if path == ROOT / "README.md":
        assert README.index(".venv/bin/pip install awscli") < README.index("aws sqs")


@pytest.mark.parametrize("path", LOCAL_READMES, ids=_relative)
def test_a_readme_empties_a_local_queue_before_it_reads_one_execution_s_messages(path: Path) -> None:
    commands = [line for block in _code_blocks(path.read_text()) for line in block]
    for queue in ("earlyexit-approval-requests", "earlyexit-notifications"):
        reads = [i for i, line in enumerate(commands) if "aws sqs receive-message" in line and queue in line]
        purges = [i for i, line in enumerate(commands) if "aws sqs purge-queue" in line and queue in line]
        starts = [i for i, line in enumerate(commands) if "earlyexit start" in line or "start-execution" in line]
        for read in reads:
            start = max(i for i in starts if i < read)
            assert any(purge < start for purge in purges), f"{_relative(path)}: {commands[read]}"
            if queue == "earlyexit-approval-requests":  # the requests of this execution only
                assert "contains(Body, '$ARN')" in commands[read + 1]
