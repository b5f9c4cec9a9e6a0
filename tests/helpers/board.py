"""The emulated ARM64 board (``scripts/arm-board.sh``) for tests: set up once and cached across runs
(``AIOTBENCH_BOARD_DIR``, default ~/.cache/aiotbench-board), its sshd started and stopped by PID; the plugin run
whose cases go to it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.catalogs import Run
from tests.helpers.shared import IMAGENET_500, REPO

BOARD_SCRIPT = REPO / "scripts" / "arm-board.sh"
BOARD_DIR = Path(os.environ.get("AIOTBENCH_BOARD_DIR") or Path.home() / ".cache" / "aiotbench-board")
CANNOT_EMULATE = 3  # the script's exit code when this machine cannot emulate aarch64
RPI_PYTHON = "/opt/rpi/bin/python3"  # the board's Raspberry-Pi stack: tflite-runtime 2.14 + numpy 1.26
PLUGIN_ENV = "/opt/aiotbench"  # where install_plugin puts the project's wheel and pytest on the board


def board_script(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    # The board's wheels come through this interpreter's pip (the project venv): same index, same cache.
    env = {**os.environ, "ARM_BOARD_DIR": str(BOARD_DIR), "ARM_BOARD_PIP": f"{sys.executable} -m pip"}
    return subprocess.run(["bash", str(BOARD_SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@dataclass
class Board:
    spec: str
    key: str
    known_hosts: str
    root: Path
    pid: int

    def pytest_args(self, python: str | None = None) -> list[str]:
        args = [f"--device={self.spec}", f"--aiotbench-ssh-key={self.key}",
                f"--aiotbench-ssh-known-hosts={self.known_hosts}"]
        return args + ([f"--aiotbench-device-python={python}"] if python else [])

    def ssh(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """A command in the board through its sshd, as a user would type it."""
        host, port = self.spec.rsplit("@", 1)[1].split(":")
        return subprocess.run(
            ["ssh", "-i", self.key, "-p", port, "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{host}", command],
            capture_output=True, text=True, timeout=timeout)


def board_up() -> Board:
    """Build (first time) and start the board; skip only when this machine cannot emulate aarch64."""
    proc = board_script("up")
    if proc.returncode == CANNOT_EMULATE:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, f"arm-board.sh up failed: {proc.stderr.strip()[-2000:]}"
    env = board_script("env")
    assert env.returncode == 0, env.stderr
    values = dict(line.split("=", 1) for line in env.stdout.split())
    return Board(values["ARM_BOARD_SPEC"], values["ARM_BOARD_KEY"], values["ARM_BOARD_KNOWN_HOSTS"],
                 Path(values["ARM_BOARD_ROOT"]), int(values["ARM_BOARD_PID"]))


def board_down() -> None:
    proc = board_script("down", timeout=60)
    assert proc.returncode == 0, proc.stderr


def build_project_wheel(out: Path) -> Path:
    """The project's own wheel, as `pip wheel --no-deps` builds it for any user. Built from a copy of the
    sources: an in-tree build leaves build/ behind, whose stale modules would end up in the next wheel."""
    source = out / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "pytest_aiotbench", source / "pytest_aiotbench", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return next(out.glob("pytest_aiotbench-*.whl"))


def install_plugin(board: Board, wheel: Path) -> str:
    """Install the wheel with its dependencies (pytest, pytest-benchmark, Pillow, ...: aarch64 builds where they
    are binary) into a venv on the board that also sees the board's runtimes; returns its python."""
    wheels = BOARD_DIR / "wheels" / "plugin"
    wheels.mkdir(parents=True, exist_ok=True)
    python_version = os.readlink(board.root / "usr" / "bin" / "python3").removeprefix("python")
    platforms = ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, 37)]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python_version,
         "--implementation", "cp", *[a for p in platforms for a in ("--platform", p)], "-d", str(wheels),
         str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = board.root / PLUGIN_ENV.lstrip("/")
    site = env / "lib" / f"python{python_version}" / "site-packages"
    if env.exists():
        subprocess.run(["rm", "-rf", str(env)], check=True)
    site.mkdir(parents=True)
    (env / "bin").mkdir()
    # The board's numpy, ai-edge-litert and onnxruntime stay where they are (system site-packages), as a Pi user
    # installing a package into a venv made with --system-site-packages.
    (env / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    (env / "bin" / "python3").symlink_to(f"/usr/bin/python{python_version}")
    for whl in [wheel, *wheels.glob("*.whl")]:
        if whl.name.startswith(("numpy-", "pytest_aiotbench-")) and whl != wheel:
            continue
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(site)
    return f"{PLUGIN_ENV}/bin/python3"


def quoted(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def run_plugin(folder: Path, catalog: Path, *args: str, images: int, timeout: float) -> Run:
    """``pytest --aiotbench`` in a fresh process on the host over ``catalog`` and the first ``images`` shared images
    (the cases go to the board with ``board.pytest_args()`` in ``args``); report and pixel cache in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.json"
    cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
           "-p", "no:randomly", f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={IMAGENET_500}",
           f"--aiotbench-images={images}", f"--aiotbench-json={report}", f"--aiotbench-cache={folder / 'cache'}",
           *args]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr, report)
