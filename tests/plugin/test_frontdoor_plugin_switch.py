"""One plugin, one switch: ``-p no:aiotbench`` turns everything off (the gate included), and a pytest run that does
not use the plugin does not pay for numpy, Pillow, runtimes or the plugin's heavy modules."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "PIL", "torch", "matplotlib", "paramiko", "adbutils", "onnxruntime", "ai_edge_litert",
         "tflite_runtime", "executorch", "pytest_aiotbench.plugin.state", "pytest_aiotbench.plugin.gate",
         "pytest_aiotbench.inputs.catalog", "pytest_aiotbench.inputs.dataset", "pytest_aiotbench.frameworks",
         "pytest_aiotbench.report.compare", "pytest_aiotbench.inputs.preprocess")


def _pytest(cwd: Path, *args: str, only_this_plugin: bool = False) -> subprocess.CompletedProcess:
    """pytest in a subprocess; ``only_this_plugin``: no entry points at all, the plugin module given with -p (as a
    fresh install's single entry point would load it; an older install may still list the gate's own)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    extra: list[str] = []
    if only_this_plugin:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        extra = ["-p", "pytest_aiotbench.plugin", "-p", "pytest_benchmark.plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra, *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_package_declares_one_pytest_plugin():
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert entry_points == {"aiotbench": "pytest_aiotbench.plugin"}


def test_the_plugin_brings_the_gate_with_it(tmp_path):
    """Loaded alone, the plugin declares the gate's options and runs its checks: nothing needs a second entry."""
    help_text = _pytest(tmp_path, "--help", only_this_plugin=True).stdout
    for flag in ("--aiotbench-compare", "--aiotbench-fail-on", "--aiotbench-require-all", "--aiotbench-html"):
        assert flag in help_text
    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n")
    result = _pytest(tmp_path, "--aiotbench-fail-on=top1:-1pt", only_this_plugin=True)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR and "needs a base" in result.stderr


def test_no_aiotbench_switches_everything_off(tmp_path):
    """``-p no:aiotbench`` leaves no aiotbench option or ini key. With an install made before the gate joined the
    plugin (its metadata still lists ``aiotbench_gate``), that stale entry needs its own ``-p no:``: reinstall."""
    stale = any(ep.group == "pytest11" and ep.name == "aiotbench_gate"  # every distribution, as pytest reads them
                for dist in importlib.metadata.distributions() for ep in dist.entry_points)
    args = ["-p", "no:aiotbench", "--help"] + (["-p", "no:aiotbench_gate"] if stale else [])
    result = _pytest(tmp_path, *args)
    assert result.returncode == 0 and "aiotbench" not in result.stdout


def test_a_run_without_aiotbench_imports_nothing_heavy(tmp_path):
    probe = ("import sys\n"
             f"HEAVY = {HEAVY!r}\n"
             "def test_probe(pytestconfig):\n"
             "    assert pytestconfig.pluginmanager.hasplugin('pytest_aiotbench.plugin')\n"
             "    print('HEAVY=' + ','.join(sorted(m for m in HEAVY if m in sys.modules)))\n")
    (tmp_path / "test_probe.py").write_text(probe)
    result = _pytest(tmp_path, "-s", "-q", only_this_plugin=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY=\n" in result.stdout, result.stdout


def test_a_run_with_a_gate_option_registers_the_gate_once(tmp_path):
    """The gate's hooks run (its summary appears) and are registered once, with or without --aiotbench."""
    (tmp_path / "test_probe.py").write_text(
        "def test_probe(pytestconfig):\n"
        "    names = [n for n, p in pytestconfig.pluginmanager.list_name_plugin() if 'gate' in str(n) and p]\n"
        "    print('GATES=' + ','.join(names))\n")
    result = _pytest(tmp_path, "-s", "-q", f"--aiotbench-html={tmp_path / 'r.html'}", only_this_plugin=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GATES=aiotbench-gate\n" in result.stdout
    assert "no aiotbench case ran" in result.stdout  # gate.pytest_sessionfinish + pytest_terminal_summary ran
