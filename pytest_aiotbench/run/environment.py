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


# CPU features that decide which kernels a runtime picks (XNNPACK, oneDNN, MLAS, KleidiAI...).
ISA_FEATURES = {
    "x86": ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
            "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"),
    "arm": ("asimd", "neon", "asimddp", "asimdhp", "i8mm", "bf16", "sve", "sve2", "sme"),
}
# cpuinfo keys that identify the core: x86 family/model/stepping; ARM implementer/part/variant/revision
_CPU_ID_KEYS = {"vendor_id": "vendor", "cpu family": "family", "model": "model_id", "stepping": "stepping",
                "cpu implementer": "implementer", "cpu part": "part", "cpu variant": "variant",
                "cpu revision": "revision"}


def cpu_identity(cpuinfo: str | None = None) -> dict:
    """ISA features and CPU identity from /proc/cpuinfo text (the first processor's block): what decides
    kernel choice, so that two machines that both say "AMD EPYC, 2 cores" are told apart."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    known = ISA_FEATURES["x86"] + ISA_FEATURES["arm"]
    identity = {name: fields[key] for key, name in _CPU_ID_KEYS.items() if fields.get(key)}
    identity["isa"] = [f for f in known if f in flags]
    return identity


def machine_facts() -> dict:
    return {
        "hostname": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "governor": _governor(),
        **cpu_identity(),
        "python": platform.python_version(),
        "emulated": local_emulation() or False,
    }


# Machine facts whose difference changes latency by itself, independent of any model change.
KERNEL_FACTS = ("cpu", "vendor", "family", "model_id", "stepping", "implementer", "part", "variant", "revision",
                "cores", "governor")


def _where(report: dict) -> dict:
    """The facts of where the cases were timed: the device for a remote target, else the machine."""
    device = report.get("device") or {}
    return {**(report.get("machine") or {}), **(device if device.get("target") != "host" else {})}


def machine_differences(a: dict, b: dict, names: tuple[str, str] = ("BASE", "NEW")) -> list[str]:
    """What differs between the machines of two reports in what decides kernel choice (ISA features, CPU
    identity, cores, governor). Facts missing on either side are not guessed at."""
    fa, fb = _where(a), _where(b)
    out = []
    if isinstance(fa.get("isa"), list) and isinstance(fb.get("isa"), list) and fa["isa"] != fb["isa"]:
        only_a = [f for f in fa["isa"] if f not in fb["isa"]]
        only_b = [f for f in fb["isa"] if f not in fa["isa"]]
        parts = [f"only {names[0]} has {', '.join(only_a)}" if only_a else "",
                 f"only {names[1]} has {', '.join(only_b)}" if only_b else ""]
        out.append("ISA features differ: " + "; ".join(p for p in parts if p))
    # Scalars only, compared as text (one writer says 6, another '6'): a fact in another shape is not guessed at,
    # and never dumped into the message.
    scalar = lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool)  # noqa: E731
    changed = [f"{k} {_short(fa[k])} vs {_short(fb[k])}" for k in KERNEL_FACTS
               if scalar(fa.get(k)) and scalar(fb.get(k)) and str(fa[k]) != str(fb[k])]
    if changed:
        out.append("CPU differs: " + ", ".join(changed))
    return out


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def runtime_differences(a: dict, b: dict) -> list[str]:
    """Per case: runtime facts that choose kernels (runtime, version, delegate, threads) that differ."""
    ra, rb = a.get("runtime") or {}, b.get("runtime") or {}
    return [f"{k} {ra[k]!r} vs {rb[k]!r}" for k in ("runtime", "version", "delegate", "threads", "providers")
            if k in ra and k in rb and ra[k] != rb[k]]
