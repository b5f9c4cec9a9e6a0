"""What a report records about where it ran: machine and package versions (read from metadata, never imported)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .emulation import local_emulation

PACKAGES = ("pytest-aiotbench", "pytest", "pytest-benchmark", "numpy", "pillow", "ai-edge-litert", "tflite-runtime",
            "torch", "onnxruntime", "adbutils", "paramiko")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    found = {}
    for name in PACKAGES + extra:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def machine_facts() -> dict:
    return {
        "hostname": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "governor": _governor(),
        "python": platform.python_version(),
        "emulated": local_emulation() or False,
    }
