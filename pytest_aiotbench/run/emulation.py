"""Emulated devices: an ARM userland under QEMU user-mode emulation (``scripts/arm-board.sh``) runs the real aarch64
builds of the runtimes, so its predictions are an ARM device's, but its latencies are the emulator's (~60x slower
than the host it runs on), not any device's speed. They are reported, flagged, and kept out of every device score,
rank and latency gate.

A device is emulated when it says so (``/etc/aiotbench-emulated``, written by the board script) or when its
userland's architecture family differs from its kernel's (``uname -m`` is what QEMU reports, while
``/proc/sys/kernel/arch`` is the real kernel's: aarch64 on x86_64 is user-mode emulation; armv7l on aarch64 is not).
Pure stdlib: this module runs on devices too (it is in the runner bundle)."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

MARKER = "/etc/aiotbench-emulated"

# Lines for the device-facts shell script (targets.remote.FACTS_SCRIPT): the marker and the kernel's own arch.
FACTS_PROBE = f"""
[ -r {MARKER} ] && echo "emulated_marker=$(head -n 1 {MARKER})"
echo "kernel_arch=$(cat /proc/sys/kernel/arch 2>/dev/null)"
"""


def _family(machine: str) -> str:
    m = machine.lower()
    if m.startswith(("aarch64", "arm")):
        return "arm"
    if m in ("x86_64", "amd64") or (len(m) == 4 and m[0] == "i" and m.endswith("86")):
        return "x86"
    return m


def emulation_of(machine: str | None, kernel_arch: str | None, marker: str | None) -> str | None:
    """What emulates this userland, or None for native hardware."""
    if marker:
        return marker.strip()
    if machine and kernel_arch and _family(machine) != _family(kernel_arch):
        return f"user-mode emulation: {machine} on a {kernel_arch} kernel"
    return None


def mark_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Device facts (parsed from FACTS_PROBE's lines) get ``emulated``: a description, or False."""
    facts["emulated"] = emulation_of(facts.get("machine"), facts.get("kernel_arch"),
                                     facts.pop("emulated_marker", None)) or False
    return facts


@lru_cache(maxsize=1)
def local_emulation() -> str | None:
    """Whether the interpreter running this code is emulated (read once per process, never on a timed path)."""
    try:
        marker = Path(MARKER).read_text().strip() or None
    except OSError:
        marker = None
    try:
        kernel_arch = Path("/proc/sys/kernel/arch").read_text().strip()
    except OSError:
        kernel_arch = None
    return emulation_of(platform.machine(), kernel_arch, marker)


def with_emulation(info: dict[str, Any]) -> dict[str, Any]:
    """A measurement's runtime info, flagged when it was measured under emulation."""
    emulated = local_emulation()
    return {**info, "emulated": emulated} if emulated else info


def is_emulated(case: dict) -> bool:
    """A report's case entry measured under emulation (its latencies are not a device's)."""
    return bool((case.get("runtime") or {}).get("emulated"))


def emulated_ids(cases: Iterable[dict]) -> list[str]:
    return [case["id"] for case in cases if is_emulated(case)]


def excluding_emulated(cases: Iterable[dict]) -> tuple[list[dict], list[str]]:
    """The rule for every score, rank and latency gate: (cases measured on real hardware, ids left out)."""
    cases = list(cases)
    return [c for c in cases if not is_emulated(c)], emulated_ids(cases)


EMULATED_NOTE = "emulated, latency not a device's: left out of scores, ranks and latency gates"
