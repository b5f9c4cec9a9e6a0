"""Targets: where a case runs. ``parse_device_spec`` reads a ``--device`` value (no connection);
``resolve_target`` builds the target, which connects on first use.

    host                      this process (default)
    adb:SERIAL                an Android device through the adb server (Python runner, or benchmark_model when
                              ``benchmark_model=PATH`` is given); a bare SERIAL or HOST:PORT works too
    ssh://user@host[:port]    a Linux board through SSH with key authentication (Python runner)

Every target, built-in or third-party, comes through the ``aiotbench.targets`` entry-point group (as frameworks
come through ``aiotbench.frameworks``): the entry point names a class offering ``base.TargetType`` (its scheme, its
forms, the options it takes, ``accepts`` and ``from_spec``), so a new transport is one module and one entry point.
A value goes first to the target whose scheme it starts with, then to each target in turn (built-in ones first:
the bare adb serial); ``unavailable:...`` is refused before any of them.

Loading an entry point imports only that target's module (adbutils and paramiko are imported when a target
connects), and only the targets a value needs are loaded. This module imports nothing heavy at module level: it is
also shipped to devices inside the runner bundle.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..run.job import Job, Measurement, Timing
from .base import DeviceSpec, SchemeTarget, Target, TargetError, TargetType, close_all

GROUP = "aiotbench.targets"

__all__ = ["DeviceSpec", "GROUP", "Job", "Measurement", "SchemeTarget", "Target", "TargetError", "TargetType",
           "Timing", "accepted_forms", "available_targets", "close_all", "parse_device_spec", "resolve_target",
           "target_type"]

UNAVAILABLE = "unavailable:"  # a device a helper script could not provide: refused at start, never the host instead
BUILTIN = {  # listed (and tried) first, in this order; other registered targets after, by name
    "host": "pytest_aiotbench.targets.host:HostTarget",
    "adb": "pytest_aiotbench.targets.adb:AdbTarget",
    "ssh": "pytest_aiotbench.targets.ssh:SshTarget",
}


@lru_cache(maxsize=None)
def _entry_points() -> dict:
    """name -> entry point, without loading any (the first one of a name wins). The built-in ones are also known
    here: metadata written before the group existed (an older editable install, a stale egg-info on sys.path) must
    not leave the plugin without a host."""
    from importlib.metadata import EntryPoint, entry_points

    found: dict = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    for name, value in BUILTIN.items():
        found.setdefault(name, EntryPoint(name, value, GROUP))
    return found


def available_targets() -> list[str]:
    """The registered schemes: the built-in ones first, then the others by name."""
    names = _entry_points()
    return [n for n in BUILTIN if n in names] + sorted(n for n in names if n not in BUILTIN)


@lru_cache(maxsize=None)
def target_type(name: str) -> TargetType:
    """The registered target class of scheme ``name`` (its module imported now, not before)."""
    ep = _entry_points().get(name)
    if ep is None:
        raise TargetError(f"no target {name!r} is registered; registered: {', '.join(available_targets()) or 'none'} "
                          f"(a package adds one under the {GROUP!r} entry-point group)")
    try:
        cls = ep.load()
    except Exception as exc:  # a broken third-party package: one line naming it, never a traceback
        from ..errors import one_line

        raise TargetError(f"target {name!r} ({ep.value}) cannot be loaded: {one_line(exc, with_type=True)}") from None
    missing = [a for a in ("scheme", "forms", "options", "accepts", "from_spec") if not hasattr(cls, a)]
    if missing:
        raise TargetError(f"target {name!r} ({ep.value}) is not a target class: it has no {', '.join(missing)} "
                          "(see pytest_aiotbench.targets.base.TargetType)")
    return cls


def accepted_forms() -> str:
    """'host, adb:SERIAL or ssh://user@host[:port]' (and every other registered target's forms)."""
    forms = [target_type(n).forms for n in available_targets()]
    return forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"


def __getattr__(name: str) -> Any:  # ACCEPTED_FORMS: built from the registry when first read
    if name == "ACCEPTED_FORMS":
        return accepted_forms()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _owner(text: str) -> str | None:
    """The registered scheme ``text`` is written in ("adb" for "adb:x", "ssh" for "ssh://x", "host" for "host")."""
    head = text.split(":", 1)[0]
    return head if head and head in _entry_points() else None


def parse_device_spec(spec: str | None) -> DeviceSpec:
    """Read a ``--device`` value without touching the device. A bad one is a TargetError listing the forms."""
    text = (spec or "host").strip()
    if text.startswith(UNAVAILABLE):  # printed by a helper that found its device down (scripts/arm-board.sh args)
        raise TargetError(f"--device={text}: the {text[len(UNAVAILABLE):] or 'device'} is not available (the command "
                          "that printed this option found it down and said why above); nothing was run on the host "
                          "in its place")
    owner = _owner(text)
    for name in ([owner] if owner else []) + [n for n in available_targets() if n != owner]:
        device = target_type(name).accepts(text)
        if device is not None:
            return device if device.text else DeviceSpec(device.kind, device.address, device.user, device.port, text)
    raise TargetError(f"--device={text!r}: expected {accepted_forms()}")


def resolve_target(spec: str | None, **options: Any) -> Target:
    """Build the target for ``spec`` without connecting. ``options`` are the targets' keyword options (None values
    are dropped, so the plugin can pass its command-line values through as they are; each target gets those it
    takes, ``TargetType.options``): ``benchmark_model``, ``python``, ``workdir_base``, ``deadline_s``,
    ``io_timeout_s``, ``keep_results``, ``adb_host``, ``adb_port``, ``key_filename``, ``known_hosts``."""
    device = parse_device_spec(spec)
    cls = target_type(device.kind)
    return cls.from_spec(device, **{k: v for k, v in options.items() if v is not None and k in cls.options})
