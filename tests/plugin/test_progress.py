"""Live progress (TTY) and the one-line case summary (logs), as a user sees them: ``pytest --aiotbench`` in a
pseudo-terminal and in a pipe."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, REPO, TFLITE_DIR

MODEL = TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite"
pytestmark = [pytest.mark.real, pytest.mark.skipif(not (MODEL.is_file() and IMAGENET_500.is_dir()),
                                                   reason="shared MobileNetV1 0.5 or images missing")]


def _args(tmp_path, *extra):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("mobilenet_v1", MODEL, 160)])
    return [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
            f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={IMAGENET_500}",
            f"--aiotbench-cache={tmp_path / 'cache'}", "-p", "no:warnings", *extra]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "COLUMNS": "160"}


def _render(raw: str) -> list[str]:
    """What a terminal shows: backspaces move the cursor left, later characters overwrite earlier ones."""
    lines = []
    raw = re.sub(r"\x1b\[[0-9;]*m", "", raw)  # colours
    for text in raw.replace("\r\n", "\n").split("\n"):
        screen, col = [], 0
        for ch in text:
            if ch == "\b":
                col = max(col - 1, 0)
                continue
            if col < len(screen):
                screen[col] = ch
            else:
                screen.append(ch)
            col += 1
        lines.append("".join(screen).rstrip())
    return lines


def _in_terminal(args, cwd) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as stdout/stderr; return its exit code and everything it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=cwd, env=_env())
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_tty_shows_images_done_and_eta_then_leaves_pytests_line_clean(tmp_path):
    returncode, raw = _in_terminal(_args(tmp_path, "-q", "--aiotbench-images=500"), tmp_path)
    assert returncode == 0, raw[-3000:]
    assert "[mobilenet_v1-tflite-int8: " in raw and " images, ETA " in raw and "\b" in raw
    screen = _render(raw)
    assert not any("ETA" in line for line in screen), screen[:5]  # erased: the dots line is pytest's own
    assert any(line.startswith(".") and "[100%]" in line for line in screen)
    assert "aiotbench: mobilenet_v1-tflite-int8:" not in raw  # the log line is for non-TTY output only


@pytest.mark.slow
def test_logs_get_one_summary_line_per_case_and_no_live_text(tmp_path):
    proc = subprocess.run(_args(tmp_path, "--aiotbench-images=20"), capture_output=True, text=True,
                          cwd=tmp_path, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "\b" not in proc.stdout and "ETA" not in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("aiotbench: mobilenet_v1-tflite-int8:")]
    assert len(lines) == 1 and " 20 images in " in lines[0] and "top-1 " in lines[0] and "latency " in lines[0]
    quiet = subprocess.run(_args(tmp_path, "-q", "--aiotbench-images=20"), capture_output=True, text=True,
                           cwd=tmp_path, env=_env(), timeout=300)
    assert quiet.returncode == 0 and "aiotbench: mobilenet_v1-tflite-int8:" not in quiet.stdout


@pytest.mark.slow
def test_no_live_text_from_xdist_workers(tmp_path):
    returncode, raw = _in_terminal(_args(tmp_path, "-n", "1", "--aiotbench-images=500"), tmp_path)
    assert returncode == 0, raw[-3000:]
    assert "ETA" not in raw and "\b" not in raw and "1 passed" in raw
