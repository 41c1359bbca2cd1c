"""Fences: the upstream code an override replaces or depends on, pinned by a hash of its source.

``python -m app.patches`` prints the current hash of every registered target (after an
upgrade: read the upstream change, adapt the override, then update the hash).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fence:
    target: str  # dotted path: "engineio.socket.Socket.schedule_ping"
    sha256: str  # of inspect.getsource(target) at the locked version
    why: str


FENCES: list[Fence] = []
#: Upstream objects that an override replaced by assignment, by dotted path: their fences keep
#: hashing the upstream source once the override is installed.
REPLACED: dict[str, Any] = {}


def fence(target: str, sha256: str, why: str) -> None:
    """Register ``target`` as upstream code an override replaces or relies on."""
    FENCES.append(Fence(target, sha256, why))


def replace(owner: type, name: str, new: Any) -> None:
    """``setattr(owner, name, new)``, keeping the upstream object for the fence (idempotent)."""
    target = f"{owner.__module__}.{owner.__qualname__}.{name}"
    REPLACED.setdefault(target, inspect.getattr_static(owner, name))
    setattr(owner, name, new)


def resolve(target: str) -> Any:
    """The object at a dotted path (the upstream one if an override replaced it): the longest
    importable module, then attributes."""
    if target in REPLACED:
        return REPLACED[target]
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = inspect.getattr_static(obj, name)
            if isinstance(obj, staticmethod | classmethod):
                obj = obj.__func__
            elif isinstance(obj, property) and obj.fget is not None:
                obj = obj.fget
        return obj
    raise ImportError(target)


def source_hash(target: str) -> str:
    return hashlib.sha256(inspect.getsource(resolve(target)).encode()).hexdigest()


def load_all() -> list[Fence]:
    """Import every patch module (registering its fences) and return the fences."""
    import app.patches as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"{package.__name__}.{module.name}")
    return FENCES
