"""Framework registry: every framework, built-in or third-party, comes through the ``aiotbench.frameworks``
entry-point group. Loading an entry point imports only our thin module, never the runtime itself."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from .base import Framework, FrameworkUnavailable, ModelLoadError, PrepareOptions, Session, TensorSpec

GROUP = "aiotbench.frameworks"

__all__ = ["Framework", "FrameworkUnavailable", "ModelLoadError", "PrepareOptions", "Session", "TensorSpec",
           "available_frameworks", "get_framework", "UnknownFramework"]


class UnknownFramework(LookupError):
    @classmethod
    def for_name(cls, name: str) -> "UnknownFramework":
        return cls(f"unknown framework {name!r}; registered: {', '.join(available_frameworks()) or 'none'} "
                   f"(a package adds one under the {GROUP!r} entry-point group)")


def available_frameworks() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)})


@lru_cache(maxsize=None)
def get_framework(name: str) -> Framework:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            obj = ep.load()
            return obj() if isinstance(obj, type) else obj
    raise UnknownFramework.for_name(name)
