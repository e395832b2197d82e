"""The stacks this project ships, each named once: the two patterns and the optional approval inbox."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from earlyexit.errors import DeployError

__all__ = ["EVENT_SOURCE", "PATTERNS", "STACKS", "StackFolder", "stack_folder"]

EVENT_SOURCE = "earlyexit"  # the Source of every event the stacks put (ApprovalRequested, ApprovalReminder)


@dataclass(frozen=True)
class StackFolder:
    """A stack folder: its name (``either-or``), whether it is an approval pattern, and where it is."""

    name: str
    is_pattern: bool

    @property
    def path(self) -> Path:
        """The folder with template.yaml, shipped inside the package (``earlyexit/stacks/NAME``)."""
        folder = Path(str(resources.files("earlyexit") / "stacks" / self.name))
        if not (folder / "template.yaml").is_file():
            raise DeployError(f"{self.name}/template.yaml is missing from the installed package (reinstall earlyexit)")
        return folder

    @property
    def default_stack_name(self) -> str:
        """The stack name samconfig.toml, ``earlyexit serve`` and the CLI use unless told otherwise."""
        return f"earlyexit-{self.name}"


_FOLDERS = (StackFolder("either-or", True), StackFolder("quorum", True), StackFolder("inbox", False))
PATTERNS: tuple[str, ...] = tuple(f.name for f in _FOLDERS if f.is_pattern)  # either-or, quorum
STACKS: tuple[str, ...] = tuple(f.name for f in _FOLDERS)  # the patterns and the inbox


def stack_folder(name: str) -> StackFolder:
    """The stack folder called ``name``; :class:`DeployError` naming the known ones for any other name."""
    for folder in _FOLDERS:
        if folder.name == name:
            return folder
    raise DeployError(f"unknown stack {name!r}: expected one of {', '.join(STACKS)}")
