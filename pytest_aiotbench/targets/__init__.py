"""Targets: where a case runs. ``resolve_target`` turns a ``--device`` value into one.

    host                      this process (default)
    adb:SERIAL | SERIAL       an Android device through the adb server (Python runner, or benchmark_model when
                              ``benchmark_model=PATH`` is given)
    ssh://user@host[:port]    a Linux board through SSH with key authentication (Python runner)

Transport modules (adbutils, paramiko) are imported only when such a target is asked for, and this module imports
nothing heavy: it is also shipped to devices inside the runner bundle.
"""

from __future__ import annotations

from typing import Any

from .base import Job, Measurement, Target, TargetError, Timing

__all__ = ["Job", "Measurement", "Target", "TargetError", "Timing", "resolve_target"]


def resolve_target(spec: str, **options: Any) -> Target:
    """Build the target for ``spec``. ``options`` are the target's keyword options (None values are dropped, so
    the plugin can pass its command-line values through as they are): ``benchmark_model``, ``python``,
    ``workdir_base``, ``deadline_s``, ``io_timeout_s``, ``keep_results``, ``adb_host``, ``adb_port``,
    ``key_filename``, ``known_hosts``."""
    spec = (spec or "host").strip()
    options = {k: v for k, v in options.items() if v is not None}
    if spec == "host":
        from .host import HostTarget

        return HostTarget()
    if spec.startswith("ssh://"):
        from .ssh import SshTarget

        options.pop("adb_host", None), options.pop("adb_port", None)
        if options.pop("benchmark_model", None):
            raise TargetError(f"{spec}: the benchmark_model runner is for adb devices; ssh devices run Python")
        return SshTarget(spec, **options)
    serial = spec[4:] if spec.startswith("adb:") else spec
    if not serial or any(c.isspace() for c in serial):
        raise TargetError(f"--device={spec!r}: expected host, adb:SERIAL, SERIAL or ssh://user@host[:port]")
    for key in ("key_filename", "known_hosts"):
        options.pop(key, None)
    benchmark_model = options.pop("benchmark_model", None)
    if benchmark_model:
        from .benchmark_model import BenchmarkModelTarget

        options.pop("python", None)
        return BenchmarkModelTarget(serial, benchmark_model=benchmark_model, **options)
    from .adb import AdbTarget

    return AdbTarget(serial, **options)
