"""scripts/arm-board.sh's front door, without a board: bad ``--dir`` values are one line, and the README's
``pytest --aiotbench $(scripts/arm-board.sh args)`` with the board down fails loudly instead of benchmarking the
host (the ``$(...)`` would expand to nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "arm-board.sh"


def _script(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args", [["--dir"], ["--dir", ""], ["--dir="], ["--dir=", "args"], ["--dir", "FILE", "status"],
                                  ["--dir", "FILE", "args"], ["--dir=FILE", "spec"]])
def test_bad_dir_is_one_line(tmp_path, args):
    (tmp_path / "FILE").write_text("not a folder")
    result = _script(*[a.replace("FILE", str(tmp_path / "FILE")) for a in args], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("arm-board: ") and ("--dir" in lines[0] or "not a folder" in lines[0])
    assert (tmp_path / "FILE").read_text() == "not a folder"


def test_args_with_the_board_down_prints_a_device_the_plugin_refuses(tmp_path):
    result = _script("--dir", str(tmp_path / "board"), "args", cwd=tmp_path)
    assert result.returncode == 1 and "not up" in result.stderr
    assert result.stdout.split() == ["--aiotbench-device=unavailable:arm-board"]


def test_readme_recipe_with_the_board_down_fails_loudly(tmp_path):
    """Exactly the README's command line (through a shell), with a board folder whose board is not up."""
    env = {**os.environ, "ARM_BOARD_DIR": str(tmp_path / "board"),
           "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = f"{sys.executable} -m pytest --aiotbench -p no:cacheprovider $(bash {SCRIPT} args)"
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout[-2000:] + result.stderr[-2000:]
    assert "arm-board: the board is not up" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "unavailable:arm-board" in errors[0] and "not available" in errors[0]
    assert "passed" not in result.stdout  # nothing ran on the host in the board's place
