"""A release-ready package (issue 17, item 13): sdist and wheel build, metadata with one version, and the built
wheel, installed with only the ``tflite`` extra into a fresh venv, runs the README quickstart from a project
outside the checkout: the project's unit test and its catalog's case in one ``pytest --aiotbench``, a worse model
red."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.helpers.shared import TFLITE_DIR

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_metadata_has_one_version_urls_free_classifiers_and_the_license_file():
    import pytest_aiotbench

    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pytest_aiotbench.__version__"}
    assert pytest_aiotbench.__version__.count(".") == 2
    assert "Framework :: Pytest" in project["classifiers"] and project["keywords"]
    python_versions = [c.rsplit(":: ", 1)[1] for c in project["classifiers"]
                       if c.startswith("Programming Language :: Python :: 3.")]
    assert python_versions and min(python_versions, key=lambda v: tuple(map(int, v.split(".")))) == \
        project["requires-python"].removeprefix(">=")
    assert all((REPO / f).is_file() for f in project["license-files"]) and project["license"] == "Apache-2.0"


def _clean_env(**extra: str) -> dict:
    """No trace of the checkout: the installed wheel alone must do."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PYTEST")}
    return {**env, "COLUMNS": "200", **extra}


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout (``python -m build``: sdist, then the wheel from the
    sdist) installed with only the ``tflite`` extra. Once per test session; reaches the package index."""
    root = tmp_path_factory.mktemp("wheel")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"

    def run(*args: str, timeout: float = 900) -> str:
        proc = subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout,
                              env=_clean_env(), cwd=root)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(args[:4])}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    # Built from a copy of what the sdist needs: the build writes egg-info beside the sources.
    source = root / "source"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, source / name)
    shutil.copytree(REPO / "pytest_aiotbench", source / "pytest_aiotbench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run("-m", "pip", "install", "-q", "build", "twine")
    run("-m", "build", "--outdir", str(root / "dist"), str(source))
    (wheel,) = (root / "dist").glob("*.whl")
    (sdist,) = (root / "dist").glob("*.tar.gz")
    checked = run("-m", "twine", "check", "--strict", str(wheel), str(sdist))  # PyPI would render it
    assert checked.count("PASSED") == 2, checked
    run("-m", "pip", "install", "-q", f"{wheel}[tflite]")
    where = run("-c", "import pytest_aiotbench, sys; print(pytest_aiotbench.__file__)")
    assert where.startswith(str(root / "venv")), where
    return root / "venv" / "bin"


def _readme_quickstart() -> tuple[str, str]:
    """The catalog and the ini block of the README's quickstart, as a user copies them."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Quickstart"):readme.index("## Contents")]
    catalog, ini = re.findall(r"```toml\n(.*?)```", section, re.S)
    return catalog, ini


def _quickstart_project(root: Path, model: Path, shared: Path) -> Path:
    """A project made from the README quickstart: its catalog and ini verbatim, the model file where the catalog
    says, the dataset where the ini says, plus a unit test of its own."""
    catalog, ini = _readme_quickstart()
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    shutil.copyfile(model, root / "models" / "my_model.tflite")
    size = model.name.split("_")[3]  # mobilenet_v1_0.5_160_quant.tflite
    (root / "aiotbench.toml").write_text(catalog.replace("input_size = 160", f"input_size = {size}"))
    (root / "pyproject.toml").write_text(ini)
    if not (root / "data").exists():
        (root / "data").symlink_to(shared / "data" / "imagenet-val-500")
    (root / "tests" / "test_labels.py").write_text("def test_labels_are_sorted():\n    assert sorted('ba') == ['a', 'b']\n")
    return root


@pytest.mark.slow
def test_the_built_wheel_with_only_tflite_runs_the_quickstart_outside_the_checkout(installed, tmp_path, shared):
    project = _quickstart_project(tmp_path / "my-project", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", shared)
    env = _clean_env()
    pytest_bin = str(installed / "pytest")
    good = subprocess.run([pytest_bin, "--aiotbench", "-v", "-p", "no:cacheprovider"], cwd=project,
                          capture_output=True, text=True, timeout=600, env=env)
    assert good.returncode == 0, good.stdout[-4000:] + good.stderr[-2000:]
    assert "tests/test_labels.py::test_labels_are_sorted PASSED" in good.stdout
    assert "aiotbench::test_aiotbench[my_model-tflite-int8] PASSED" in good.stdout and "2 passed" in good.stdout
    assert "canonical" not in good.stdout and "skipped" not in good.stdout

    # The case's node id, pasted back, reruns that case alone.
    one = subprocess.run([pytest_bin, "--aiotbench", "-p", "no:cacheprovider",
                          "aiotbench::test_aiotbench[my_model-tflite-int8]"], cwd=project, capture_output=True,
                         text=True, timeout=600, env=env)
    assert one.returncode == 0 and "1 passed" in one.stdout, one.stdout[-3000:]

    # A worse model (smaller MobileNet: 55.0 % top-1 on these 500 images, under the quickstart's 68 %) is red.
    _quickstart_project(project, TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", shared)
    bad = subprocess.run([pytest_bin, "--aiotbench", "-p", "no:cacheprovider"], cwd=project,
                         capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 1, bad.stdout[-4000:] + bad.stderr[-2000:]
    assert "my_model-tflite-int8: top-1 0.5500 < required 0.6800 on 500 images" in bad.stdout
    assert "1 failed, 1 passed" in bad.stdout
