"""Targets: where a case runs. ``resolve_target`` maps a --device value to one."""

from __future__ import annotations

from .base import Job, Measurement, Target, TargetError


def resolve_target(spec: str | None, **options) -> Target:
    spec = (spec or "host").strip()
    if spec == "host":
        from .host import HostTarget

        return HostTarget()
    if spec.startswith("ssh://"):
        from .ssh import SshTarget

        return SshTarget(spec, **options)
    from .adb import AdbTarget

    return AdbTarget(spec.removeprefix("adb:"), **options)


__all__ = ["Job", "Measurement", "Target", "TargetError", "resolve_target"]
