"""What the rest of the machine did while a case was timed: CPU accounting snapshots (/proc) taken before and after
the timed images, never between them, and the difference between two of them. The verdict on it is in
``verdicts/validity.py``."""

from __future__ import annotations

import os
from pathlib import Path

BUSY_PROCESS_CORES = 0.2  # a process using at least this many cores during the case is named
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _proc_jiffies(stat_text: str) -> tuple[str, int]:
    """(command name, utime + stime) from a /proc/PID/stat line (the name may hold spaces and parentheses)."""
    name = stat_text[stat_text.index("(") + 1:stat_text.rindex(")")]
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return name, int(fields[11]) + int(fields[12])  # fields 14 and 15 of the full line


def _own_schedstat() -> tuple[int, int] | None:
    """(ns on a CPU, ns ready but waiting on a run queue), summed over this process's threads."""
    run = wait = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        text = _read(f"/proc/self/task/{task}/schedstat")
        if text:
            fields = text.split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def snapshot() -> dict | None:
    """CPU accounting of the whole machine, of this process and of every other process; None where /proc is
    missing (not Linux). Taken before and after the timed images, never between them."""
    stat = _read("/proc/stat")
    own = _read("/proc/self/stat")
    if not stat or not own:
        return None
    cpu = [int(v) for v in stat.splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: steal is time another VM took from us, i.e. contention too
    busy = sum(cpu[i] for i in (0, 1, 2, 5, 6, 7) if i < len(cpu))
    total = busy + sum(cpu[i] for i in (3, 4) if i < len(cpu))
    processes = {}
    self_pid = os.getpid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != self_pid:
            text = _read(f"/proc/{entry.name}/stat")
            if text:
                try:
                    processes[int(entry.name)] = _proc_jiffies(text)
                except (ValueError, IndexError):
                    continue
    loadavg = _read("/proc/loadavg")
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    from time import monotonic

    return {"time": monotonic(), "schedstat": _own_schedstat(), "busy": busy, "total": total, "own": _proc_jiffies(own)[1],
            "processes": processes, "cores": os.cpu_count() or 1,
            "loadavg": float(loadavg.split()[0]) if loadavg else None,
            "governor": governor.strip() if governor else None}


def machine_load(before: dict | None, after: dict | None, threads: int = 1) -> dict | None:
    """What the rest of the machine did between two snapshots: cores kept busy by other processes (total CPU
    time minus this process's), the busiest of them, the load average at the end, the governor."""
    if not before or not after or after["total"] <= before["total"]:
        return None
    cores = after["cores"]
    span = after["total"] - before["total"]  # jiffies summed over all cores
    others = max(0, (after["busy"] - before["busy"]) - (after["own"] - before["own"]))
    seconds = max(after["time"] - before["time"], 1e-9)
    busy = []
    for pid, (name, jiffies) in after["processes"].items():
        if pid in before["processes"]:
            used = (jiffies - before["processes"][pid][1]) / _TICKS / seconds
            if used >= BUSY_PROCESS_CORES:
                busy.append({"pid": pid, "name": name, "cores": round(used, 2)})
    busy.sort(key=lambda p: -p["cores"])
    waited = None
    if before.get("schedstat") and after.get("schedstat"):
        ran = after["schedstat"][0] - before["schedstat"][0]
        wait = after["schedstat"][1] - before["schedstat"][1]
        waited = round(wait / (ran + wait), 4) if ran + wait > 0 else 0.0
    return {"cores": cores, "threads": threads, "waited_share": waited,
            "other_busy_cores": round(others / span * cores, 3),
            "busy_processes": busy[:5], "loadavg_1m": after["loadavg"], "governor": after["governor"]}
