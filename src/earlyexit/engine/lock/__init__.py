"""The lock: a hash of the source of every moto and jsonata-python function or class the engine replaces or wraps.

``moto.lock.json`` (beside the engine's modules) maps each target, named
``<module>.<class>.<attribute>`` or ``<module>.<attribute>``, to the SHA-256 of its source as
:func:`inspect.getsource` reads it (a property: its getter's, setter's and deleter's; a module
global that is neither a function nor a class: its module's). The registry compares them before
it patches anything. Regenerate the file with ``python -m earlyexit.engine.lock --write``;
``--check`` compares without writing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import types
from collections.abc import Mapping
from pathlib import Path

__all__ = ["LOCK_FILE", "LOCKED_PACKAGES", "Target", "locked_target", "read_lock", "source_hash", "write_lock"]

LOCK_FILE = Path(__file__).resolve().parent.parent / "moto.lock.json"
LOCKED_PACKAGES = ("moto", "jsonata")  # jsonata-python's import name is jsonata

Target = tuple[str, object]  # its name in the lock, and what its hash is taken of


def _locked(module: str) -> bool:
    return module.split(".", 1)[0] in LOCKED_PACKAGES


def _has_source(value: object) -> bool:
    return isinstance(value, (types.FunctionType, type, property, staticmethod, classmethod))


def locked_target(owner: object, name: str) -> Target | None:
    """The lock's entry for ``owner.name`` as it is now, or None when moto or jsonata-python does not define
    it (an attribute of the engine's own classes, of another package, or missing)."""
    if isinstance(owner, types.ModuleType):
        if not _locked(owner.__name__) or not hasattr(owner, name):
            return None
        value = getattr(owner, name)
        return f"{owner.__name__}.{name}", value if _has_source(value) else owner
    if isinstance(owner, type):
        definer = next((cls for cls in owner.__mro__ if name in vars(cls)), None)
        if definer is None or not _locked(definer.__module__):
            return None
        value = vars(definer)[name]
        return f"{definer.__module__}.{definer.__qualname__}.{name}", value if _has_source(value) else definer
    value = getattr(owner, name, None)
    if not _has_source(value) or not _locked(getattr(value, "__module__", "")):
        return None
    return f"{value.__module__}.{value.__qualname__}", value  # type: ignore[union-attr]


_hashed: dict[int, tuple[object, str]] = {}  # id -> (the object, kept alive so that its id stays its own; hash)


def source_hash(value: object) -> str:
    """The SHA-256 of ``value``'s source (a function, class, property or module), computed once per object."""
    known = _hashed.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    digest = _source_hash(value)
    _hashed[id(value)] = (value, digest)
    return digest


def _source_hash(value: object) -> str:
    if isinstance(value, property):
        parts = [inspect.getsource(f) for f in (value.fget, value.fset, value.fdel) if f is not None]
    elif isinstance(value, (staticmethod, classmethod)):
        parts = [inspect.getsource(value.__func__)]
    else:
        parts = [inspect.getsource(value)]  # type: ignore[arg-type]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """The recorded hash of each target."""
    return dict(json.loads(path.read_text(encoding="utf-8"))["sources"])


def write_lock(sources: Mapping[str, str], pins: Mapping[str, str], path: Path = LOCK_FILE) -> None:
    """Record ``sources`` (target -> hash) for the versions ``pins``."""
    document = {"pins": dict(pins), "sources": dict(sorted(sources.items()))}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
