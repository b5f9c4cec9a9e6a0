"""A constructed sysfs tree (CPU clocks, thermal zones with trip points, an Android battery) for the device
conditions tests, a thread that heats it (temperature rising and clock dropping while a case runs), and the plugin
run those tests put on it."""

from __future__ import annotations

import glob
import threading
import time
from pathlib import Path

from tests.helpers.shared import IMAGENET_500, REPO


def build_tree(root: Path, cpus: int = 2, max_khz: int = 2_000_000, temp_c: float = 40.0, trip_c: float = 60.0,
               battery_c: float | None = 30.0, zones: tuple[str, ...] = ("cpu-thermal",)) -> Path:
    for i in range(cpus):
        freq = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        freq.mkdir(parents=True, exist_ok=True)
        (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
        (freq / "scaling_cur_freq").write_text(f"{max_khz}\n")
    for i, name in enumerate(zones):
        zone = root / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "type").write_text(name + "\n")
        (zone / "temp").write_text(f"{int(temp_c * 1000)}\n")
        # An active (fan) trip below the passive one: crossing it is not throttling.
        (zone / "trip_point_0_type").write_text("active\n")
        (zone / "trip_point_0_temp").write_text(f"{int((trip_c - 15) * 1000)}\n")
        (zone / "trip_point_1_type").write_text("passive\n")
        (zone / "trip_point_1_temp").write_text(f"{int(trip_c * 1000)}\n")
    if battery_c is not None:
        bat = root / "sys/class/power_supply/battery"
        bat.mkdir(parents=True, exist_ok=True)
        (bat / "temp").write_text(f"{int(battery_c * 10)}\n")
    return root


def set_state(root: Path, temp_c: float, khz: int) -> None:
    """Every zone at ``temp_c``, every CPU at ``khz``; each file replaced whole (a reader never sees half)."""
    for path in root.glob("sys/class/thermal/thermal_zone*/temp"):
        _write(path, f"{int(temp_c * 1000)}\n")
    for path in root.glob("sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq"):
        _write(path, f"{khz}\n")


def _write(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)


class Heater:
    """While running: temperature from ``start_c`` up by ``c_per_s``, clock from ``max_khz`` down by
    ``khz_per_s`` (never below ``floor_khz``), updated every ``step_s``. ``cool()`` drops the temperature
    by ``c_per_s`` instead (a device resting between cases)."""

    def __init__(self, root: Path, start_c: float = 40.0, c_per_s: float = 10.0, max_khz: int = 2_000_000,
                 khz_per_s: int = 500_000, floor_khz: int = 500_000, step_s: float = 0.05):
        self.root, self.start_c, self.c_per_s = root, start_c, c_per_s
        self.max_khz, self.khz_per_s, self.floor_khz, self.step_s = max_khz, khz_per_s, floor_khz, step_s
        self.sign = 1
        self.temp_c, self.khz = start_c, max_khz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sysfs-heater")

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.step_s):
            now = time.monotonic()
            dt, last = now - last, now
            self.temp_c += self.sign * self.c_per_s * dt
            if self.sign > 0:
                self.khz = max(self.floor_khz, int(self.khz - self.khz_per_s * dt))
            else:
                self.khz = self.max_khz
            set_state(self.root, self.temp_c, self.khz)

    def cool(self) -> None:
        self.sign = -1

    def __enter__(self) -> "Heater":
        set_state(self.root, self.start_c, self.max_khz)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _cpu_ticks(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


class LoadHeater(Heater):
    """Heats while a runner works and cools while it rests, like a phone: the tree follows the CPU time of the
    processes whose pid files match ``pid_glob`` (the runner writes its pid first). Busy: temperature up by
    ``c_per_s`` and clock down by ``khz_per_s``; idle (no runner, or one sleeping through a cooldown):
    temperature down by ``cool_c_per_s`` to ``start_c`` and the clock back at its max."""

    def __init__(self, root: Path, pid_glob: str, cool_c_per_s: float = 20.0, **kw):
        kw.setdefault("step_s", 0.1)
        super().__init__(root, **kw)
        self.pid_glob, self.cool_c_per_s = pid_glob, cool_c_per_s
        self._ticks: dict[int, int] = {}
        self.busy_seen = False

    def _busy(self) -> bool:
        busy = False
        for pid_file in glob.glob(self.pid_glob):
            try:
                pid = int(Path(pid_file).read_text().strip())
            except (OSError, ValueError):
                continue
            ticks = _cpu_ticks(pid)
            if ticks is not None:
                busy |= ticks > self._ticks.get(pid, ticks)
                self._ticks[pid] = ticks
        return busy

    def _run(self) -> None:
        last = time.monotonic()
        idle_steps = 2  # idle until a runner shows CPU time
        while not self._stop.wait(self.step_s):
            now = time.monotonic()
            dt, last = now - last, now
            # CPU time moves in 10 ms ticks: two quiet steps in a row before calling the runner idle
            idle_steps = 0 if self._busy() else idle_steps + 1
            if idle_steps < 2:
                self.busy_seen = True
                self.temp_c += self.c_per_s * dt
                self.khz = max(self.floor_khz, int(self.khz - self.khz_per_s * dt))
            else:
                self.temp_c = max(self.start_c, self.temp_c - self.cool_c_per_s * dt)
                self.khz = self.max_khz
            set_state(self.root, self.temp_c, self.khz)


def conditions_run(pytester, report: Path, *args: str):
    """``pytest --aiotbench`` in a subprocess over the two smallest shared cases (MobileNetV1 0.25_128 in TFLite
    and ONNX), 10 images, JSON into ``report``; ``args`` add the target, cooldown, sustain."""
    return pytester.runpytest_subprocess(
        "--aiotbench", f"--aiotbench-catalog={REPO / 'models' / 'shared.toml'}", "--aiotbench-suite=none",
        f"--aiotbench-dataset={IMAGENET_500}", "--aiotbench-images=10",
        "--aiotbench-min-top1=0", "--aiotbench-warmup=2", "--aiotbench-cache=none", "-p", "no:cacheprovider",
        "-k", "0.25_128 and (tflite or onnx)", f"--aiotbench-json={report}", *args, timeout=240)
