"""Targets: where a case runs. ``parse_device_spec`` reads a ``--device`` value (no connection);
``resolve_target`` builds the target, which connects on first use.

    host                      this process (default)
    adb:SERIAL                an Android device through the adb server (Python runner, or benchmark_model when
                              ``benchmark_model=PATH`` is given); a bare SERIAL or HOST:PORT works too
    ssh://user@host[:port]    a Linux board through SSH with key authentication (Python runner)

Transport modules (adbutils, paramiko) are imported only when such a target connects, and this module imports
nothing heavy: it is also shipped to devices inside the runner bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..run.job import Job, Measurement, Timing
from .base import Target, TargetError, close_all

__all__ = ["DeviceSpec", "Job", "Measurement", "Target", "TargetError", "Timing", "close_all", "parse_device_spec",
           "resolve_target"]

ACCEPTED_FORMS = "host, adb:SERIAL or ssh://user@host[:port]"
UNAVAILABLE = "unavailable:"  # a device a helper script could not provide: refused at start, never the host instead
_BARE_SERIAL = re.compile(r"^[\w.\-]+$")  # emulator-5554, 0123456789ABCDEF
_NETWORK_SERIAL = re.compile(r"^[\w.\-]+:\d+$|^\[[0-9A-Fa-f:.]+\]:\d+$")  # 192.168.1.7:5555, [::1]:5555


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # "host" | "adb" | "ssh"
    address: str  # "" for host, the adb serial, or the ssh:// URL
    user: str | None = None
    port: int | None = None


def parse_device_spec(spec: str | None) -> DeviceSpec:
    """Read a ``--device`` value without touching the device. A bad one is a TargetError listing the forms."""
    text = (spec or "host").strip()
    if text == "host":
        return DeviceSpec("host", "")
    if text.startswith(UNAVAILABLE):  # printed by a helper that found its device down (scripts/arm-board.sh args)
        raise TargetError(f"--device={text}: the {text[len(UNAVAILABLE):] or 'device'} is not available (the command "
                          "that printed this option found it down and said why above); nothing was run on the host "
                          "in its place")
    if text.startswith("ssh://"):
        from .ssh import parse_ssh_spec

        user, host, port = parse_ssh_spec(text)
        return DeviceSpec("ssh", host, user, port)
    serial = text[4:] if text.startswith("adb:") else text
    if serial and not any(c.isspace() for c in serial) and (text.startswith("adb:") or _BARE_SERIAL.match(serial)
                                                            or _NETWORK_SERIAL.match(serial)):
        return DeviceSpec("adb", serial)
    raise TargetError(f"--device={text!r}: expected {ACCEPTED_FORMS}")


def resolve_target(spec: str | None, **options: Any) -> Target:
    """Build the target for ``spec`` without connecting. ``options`` are the target's keyword options (None
    values are dropped, so the plugin can pass its command-line values through as they are):
    ``benchmark_model``, ``python``, ``workdir_base``, ``deadline_s``, ``io_timeout_s``, ``keep_results``,
    ``adb_host``, ``adb_port``, ``key_filename``, ``known_hosts``."""
    device = parse_device_spec(spec)
    options = {k: v for k, v in options.items() if v is not None}
    if device.kind == "host":
        from .host import HostTarget

        return HostTarget()
    if device.kind == "ssh":
        from .ssh import SshTarget

        options.pop("adb_host", None), options.pop("adb_port", None)
        if options.pop("benchmark_model", None):
            raise TargetError(f"{spec}: the benchmark_model runner is for adb devices; ssh devices run Python")
        return SshTarget(device.user, device.address, device.port, **options)
    for key in ("key_filename", "known_hosts"):
        options.pop(key, None)
    benchmark_model = options.pop("benchmark_model", None)
    if benchmark_model:
        from .benchmark_model import BenchmarkModelTarget

        options.pop("python", None)
        return BenchmarkModelTarget(device.address, benchmark_model=benchmark_model, **options)
    from .adb import AdbTarget

    return AdbTarget(device.address, **options)
