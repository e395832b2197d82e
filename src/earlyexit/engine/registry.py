"""The registry of engine entries: checked before anything is patched, applied all or nothing, reference-counted.

An entry (a fix, a speed-up, the runtime's seam) is a function that receives a :class:`Patcher`
and declares what it replaces (``patcher.replace(owner, name, value)``) and, for a wrapper, reads
what it wraps (``patcher.original(owner, name)``). Nothing is changed while the entries declare:
the registry first checks the pinned versions, that every declared target exists and that the
source of every moto or jsonata-python target is the one the lock records
(:mod:`earlyexit.engine.lock`), then applies every patch, undoing the applied ones if one fails,
and undoes them all when its last holder uninstalls.
"""

from __future__ import annotations

import importlib.metadata
import threading
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from earlyexit.engine.lock import locked_target, read_lock, source_hash
from earlyexit.errors import EarlyExitError

__all__ = ["PINS", "EngineMismatch", "Fix", "Patcher", "Registry", "check_versions", "declared_sources"]

# The engine patches these two packages' internals: exactly these versions.
PINS: Mapping[str, str] = {"moto": "5.2.5", "jsonata-python": "0.7.1"}

Fix = Callable[["Patcher"], None]


class EngineMismatch(EarlyExitError):
    """The installed dependencies are not the ones the engine fixes were written for (version or internals)."""


def check_versions(pins: Mapping[str, str] = PINS) -> None:
    """Raise :class:`EngineMismatch` unless every distribution in ``pins`` is installed at exactly its version."""
    found = {name: _installed_version(name) for name in pins}
    wrong = [f"{name} {expected} expected, found {found[name] or 'none'}"
             for name, expected in pins.items() if found[name] != expected]
    if wrong:
        raise EngineMismatch("the embedded engine's fixes patch the internals of exact versions: "
                             + "; ".join(wrong) + " (install the versions pinned in pyproject.toml)")


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _label(owner: object) -> str:
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return f"{type(owner).__module__}.{type(owner).__qualname__} instance"


_ABSENT = object()


@dataclass(frozen=True)
class _Patch:
    fix: str
    owner: object
    name: str
    value: object


@dataclass(frozen=True)
class _Hook:
    """An action with its undo (a logging filter added and removed, say)."""

    fix: str
    apply: Callable[[], None]
    undo: Callable[[], None]


class Patcher:
    """What one fix declares; nothing is applied until every fix has declared and been checked."""

    def __init__(self, fix: str) -> None:
        self.fix = fix
        self.steps: list[_Patch | _Hook] = []
        self.missing: list[str] = []
        self.touched: list[tuple[object, str]] = []  # every (owner, name) read or replaced

    def original(self, owner: object, name: str) -> Any:
        """``owner.name`` as it is now (what a wrapper calls); a missing one is reported at install."""
        self.touched.append((owner, name))
        if not hasattr(owner, name):
            self.missing.append(f"{_label(owner)}.{name}")
            return None
        return getattr(owner, name)

    def replace(self, owner: object, name: str, value: object) -> None:
        """Set ``owner.name`` to ``value`` at install and restore it at uninstall; ``owner.name`` must exist."""
        self.touched.append((owner, name))
        if not hasattr(owner, name):
            self.missing.append(f"{_label(owner)}.{name}")
        self.steps.append(_Patch(self.fix, owner, name, value))

    def add(self, owner: object, name: str, value: object) -> None:
        """Set ``owner.name`` to ``value`` at install and remove it at uninstall: something moto lacks (an
        operation); ``owner.name`` must not exist."""
        if hasattr(owner, name):
            self.missing.append(f"{_label(owner)}.{name} (expected absent: it would be replaced, not added)")
        self.steps.append(_Patch(self.fix, owner, name, value))

    def serialise(self, owner: type, names: Iterable[str], lock: threading.RLock) -> None:
        """Replace each method ``names`` of ``owner`` by one that runs it holding ``lock``: operations that moto
        does not guard against one another become atomic with respect to each other."""
        for name in names:
            original = self.original(owner, name)

            def serialised(instance: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
                with lock:
                    return _original(instance, *args, **kwargs)

            self.replace(owner, name, serialised)

    def hook(self, apply: Callable[[], None], undo: Callable[[], None]) -> None:
        """Run ``apply`` at install (in order with the patches) and ``undo`` at uninstall."""
        self.steps.append(_Hook(self.fix, apply, undo))


def _declare(fixes: Iterable[Fix]) -> list[Patcher]:
    patchers = []
    for fix in fixes:
        patcher = Patcher(fix.__name__)
        fix(patcher)
        patchers.append(patcher)
    return patchers


def declared_sources(fixes: Iterable[Fix]) -> dict[str, tuple[str, list[str]]]:
    """The moto and jsonata-python targets ``fixes`` read or replace, as they are now: each one's name in the
    lock, its source's hash and the fixes that touch it."""
    found: dict[str, tuple[str, list[str]]] = {}
    for patcher in _declare(fixes):
        for owner, name in patcher.touched:
            target = locked_target(owner, name)
            if target is not None:
                key, value = target
                found.setdefault(key, (source_hash(value), []))[1].append(patcher.fix)
    return found


def _current_hash(value: object) -> str | None:
    """The hash of ``value``'s source; None when it has none to read (it is not the code the lock records)."""
    try:
        return source_hash(value)
    except (OSError, TypeError):
        return None


def _check_sources(patchers: list[Patcher], recorded: Mapping[str, str]) -> None:
    wrong = []
    for patcher in patchers:
        for owner, name in patcher.touched:
            target = locked_target(owner, name)
            if target is None:
                continue
            key, value = target
            if key not in recorded:
                wrong.append(f"fix {patcher.fix} replaces {key}, which the lock does not record")
            elif _current_hash(value) != recorded[key]:
                wrong.append(f"fix {patcher.fix} replaces {key} whose source differs from the one it was written for")
    if wrong:
        raise EngineMismatch("the embedded engine's fixes do not match this moto/jsonata-python (nothing was "
                             "patched): " + "; ".join(dict.fromkeys(wrong)) + " (review the fixes, then regenerate "
                             "the lock: python -m earlyexit.engine.lock --write)")


class Registry:
    """Entries installed together, the ``optional`` ones (speed-ups) by choice; :meth:`install` and
    :meth:`uninstall` are reference-counted."""

    def __init__(self, fixes: Iterable[Fix], *, optional: Iterable[Fix] = (), pins: Mapping[str, str] = PINS,
                 lock: Callable[[], Mapping[str, str]] = read_lock,
                 on_last_uninstall: Callable[[], None] | None = None) -> None:
        self._fixes = tuple(fixes)
        self._optional = {fix.__name__: fix for fix in optional}
        self._pins = dict(pins)
        self._lock_file = lock
        self._on_last_uninstall = on_last_uninstall
        self._lock = threading.RLock()
        self._holders = 0
        self._chosen: frozenset[str] = frozenset()
        self._applied: list[tuple[_Patch | _Hook, object]] = []

    @property
    def holders(self) -> int:
        """How many installs are not yet matched by an uninstall (0: nothing is patched)."""
        return self._holders

    @property
    def chosen(self) -> frozenset[str]:
        """The names of the optional entries applied (empty while nothing is installed)."""
        return self._chosen

    def install(self, *, optional: Collection[str] | None = None) -> None:
        """Apply every entry and the optional ones named in ``optional`` (None: all of them) as the first
        holder, or count one more holder; a holder that names other optional entries than those applied is
        refused."""
        with self._lock:
            wanted = frozenset(self._optional if optional is None else optional)
            unknown = wanted - self._optional.keys()
            if unknown:
                raise EarlyExitError(f"no such optional engine entries: {', '.join(sorted(unknown))}")
            if self._holders == 0:
                self._applied = self._apply(self._plan(self._fixes + tuple(
                    fix for name, fix in self._optional.items() if name in wanted)))
                self._chosen = wanted
            elif optional is not None and wanted != self._chosen:
                raise EarlyExitError("the engine is installed with other speed-ups ("
                                     + (", ".join(sorted(self._chosen)) or "none") + "): uninstall it first")
            self._holders += 1

    def uninstall(self) -> None:
        """Count one holder less; the last one restores everything the entries replaced."""
        with self._lock:
            if self._holders == 0:
                raise EarlyExitError("engine uninstall without a matching install")
            if self._holders == 1:
                if self._on_last_uninstall is not None:
                    self._on_last_uninstall()
                _undo(self._applied)
                self._applied = []
                self._chosen = frozenset()
            self._holders -= 1

    def _plan(self, fixes: tuple[Fix, ...]) -> list[_Patch | _Hook]:
        check_versions(self._pins)
        patchers = _declare(fixes)
        missing = [f"{p.fix}: {target}" for p in patchers for target in p.missing]
        if missing:
            raise EngineMismatch("the embedded engine's fixes target internals that this moto/jsonata-python does "
                                 "not have (nothing was patched): " + "; ".join(missing))
        try:
            recorded = self._lock_file()
        except OSError as error:
            raise EngineMismatch(f"the engine's lock of moto's sources cannot be read (nothing was patched): {error}"
                                 ) from error
        _check_sources(patchers, recorded)
        steps = [step for p in patchers for step in p.steps]
        targets = [(id(s.owner), s.name) for s in steps if isinstance(s, _Patch)]
        if len(targets) != len(set(targets)):
            raise EarlyExitError("two engine fixes replace the same attribute")
        return steps

    @staticmethod
    def _apply(steps: list[_Patch | _Hook]) -> list[tuple[_Patch | _Hook, object]]:
        applied: list[tuple[_Patch | _Hook, object]] = []
        try:
            for step in steps:
                if isinstance(step, _Hook):
                    step.apply()
                    applied.append((step, None))
                else:
                    before = vars(step.owner).get(step.name, _ABSENT)
                    setattr(step.owner, step.name, step.value)
                    applied.append((step, before))
        except BaseException:
            _undo(applied)
            raise
        return applied


def _undo(applied: list[tuple[_Patch | _Hook, object]]) -> None:
    for step, before in reversed(applied):
        if isinstance(step, _Hook):
            step.undo()
        elif before is _ABSENT:
            delattr(step.owner, step.name)
        else:
            setattr(step.owner, step.name, before)
