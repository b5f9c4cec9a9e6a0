"""Issue 22 #3: no file the run writes (JSON, HTML, pytest-benchmark's JSON) is a file it reads or another file it
writes, however either is spelled (same path, symlink, ``..``, hard link), and the pixel cache never fills an
input: exit 4 before anything runs, one line naming both, the input untouched.

Configure-time checks run in-process (pytester, ``--collect-only``: the check happens before collection)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from tests.helpers.catalogs import write_catalog
from tests.helpers.reports import gate_plugin_args, make_case, make_report, write_json
from tests.helpers.copies import labeled_dataset
from tests.inputs.test_faults_catalog import SMALL_TFLITE, TFLITE_ID, one_error_line, small_tflite

pytestmark = pytest.mark.real

OUTPUTS = {"json": "--aiotbench-json", "html": "--aiotbench-html", "bench": "--benchmark-json"}
FILE_INPUTS = ["catalog", "labels", "compare", "baseline", "model", "ini", "image"]
FOLDER_INPUTS = ["dataset"]
SPELLINGS = ["same", "symlink", "dotdot", "hardlink"]


class Project:
    """Every input a run can read, under one folder; ``args(outputs)`` is the command line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = labeled_dataset(root / "data")
        self.model = root / "models" / "small.tflite"
        self.model.parent.mkdir()
        shutil.copyfile(SMALL_TFLITE, self.model)  # a copy in tmp: hard links need the same filesystem
        self.catalog = write_catalog(root / "cat.toml", [small_tflite(file=str(self.model))])
        self.baseline = write_catalog(root / "base-cat.toml", [small_tflite(file=str(self.model))])
        self.compare = write_json(root / "base.json", make_report([make_case(TFLITE_ID)]))
        self.ini = root / "pytest.ini"
        self.ini.write_text("[pytest]\n")
        self.inputs = {"catalog": self.catalog, "labels": self.data / "labels.csv", "compare": self.compare,
                       "baseline": self.baseline, "model": self.model, "ini": self.ini,
                       "image": next(self.data.rglob("*.JPEG")), "dataset": self.data}

    def args(self, outputs: dict[str, Path], cache: Path | None = None) -> list[str]:
        args = ["--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider", *gate_plugin_args(),
                "--collect-only", "-c", str(self.ini), f"--aiotbench-catalog={self.catalog}",
                f"--aiotbench-dataset={self.data}", f"--aiotbench-baseline={self.baseline}",
                f"--aiotbench-compare={self.compare}",
                f"--aiotbench-cache={cache or self.root / 'pixel-cache'}"]
        return args + [f"{OUTPUTS[kind]}={path}" for kind, path in outputs.items()]

    def snapshot(self) -> dict:
        return {name: (p.is_symlink(), p.read_bytes() if p.is_file() else sorted(x.name for x in p.iterdir()))
                for name, p in self.inputs.items()}


def alias(target: Path, spelling: str, where: Path) -> Path:
    """Another name for ``target``: the same path, a symlink, a path through ``..``, or a hard link."""
    where.mkdir(parents=True, exist_ok=True)
    if spelling == "same":
        return target
    if spelling == "dotdot":
        return target.parent / ".." / target.parent.name / target.name
    link = where / f"alias-{spelling}{target.suffix}"
    if spelling == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link, follow_symlinks=True)
    return link


@pytest.mark.filterwarnings("ignore:Not saving anything")  # pytest-benchmark under --collect-only
def test_distinct_outputs_are_accepted(pytester, shared):
    project = Project(pytester.path)
    outputs = {"json": pytester.path / "out" / "run.json", "html": pytester.path / "out" / "run.html",
               "bench": pytester.path / "out" / "bench.json"}
    result = pytester.runpytest_inprocess(*project.args(outputs))
    assert result.ret == 0, result.stdout.str()[-2000:] + result.stderr.str()


@pytest.mark.parametrize("seed", range(24))
def test_fuzz_an_output_aliasing_an_input_or_another_output_is_refused(pytester, shared, seed):
    rng = random.Random(seed)
    project = Project(pytester.path)
    out_kind = rng.choice(list(OUTPUTS))
    target_kind = rng.choice(FILE_INPUTS + FOLDER_INPUTS + ["output"])
    outputs = {kind: pytester.path / "out" / f"run-{kind}.{'html' if kind == 'html' else 'json'}"
               for kind in OUTPUTS}
    if target_kind == "output":  # two outputs on one file: the other one's path, respelled
        other = rng.choice([k for k in OUTPUTS if k != out_kind])
        outputs[other].parent.mkdir(exist_ok=True)
        outputs[other].write_text("{}")  # an earlier run's file (so a hard link can be made)
        target = outputs[other]
        target_flag = OUTPUTS[other]
    else:
        target = project.inputs[target_kind]
        target_flag = None
    spellings = SPELLINGS if target.is_file() else ["same", "symlink", "dotdot"]  # no hard link to a folder
    spelling = rng.choice(spellings)
    outputs[out_kind] = alias(target, spelling, pytester.path / "aliases")
    before = project.snapshot()
    result = pytester.runpytest_inprocess(*project.args(outputs))
    text = result.stdout.str() + result.stderr.str()
    what = f"seed {seed}: {OUTPUTS[out_kind]} = {target_kind} via {spelling}"
    assert result.ret == pytest.ExitCode.USAGE_ERROR, what + "\n" + text[-2000:]
    line = one_error_line(text)
    assert str(outputs[out_kind]) in line and (target_flag or str(target.name)) in line, (what, line)
    assert project.snapshot() == before, what
    assert not (pytester.path / "pixel-cache").exists()


@pytest.mark.parametrize("where", ["dataset", "inside dataset", "catalog", "json"])
def test_the_pixel_cache_never_fills_an_input(pytester, shared, where):
    project = Project(pytester.path)
    json_path = pytester.path / "run.json"
    cache = {"dataset": project.data, "inside dataset": project.data / "cache", "catalog": project.catalog,
             "json": json_path}[where]
    before = project.snapshot()
    result = pytester.runpytest_inprocess(*project.args({"json": json_path}, cache=cache))
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:] + result.stderr.str()
    line = one_error_line(result.stdout.str() + result.stderr.str())
    assert f"--aiotbench-cache {cache}" in line, line
    assert project.snapshot() == before and not (project.data / "cache").exists()


@pytest.mark.parametrize("case", ["json is html", "html is a device report", "bench is json via ..", "json is ini"])
def test_outputs_that_do_not_exist_yet_collide_by_name(pytester, shared, case):
    project = Project(pytester.path)
    run = pytester.path / "out" / "run.json"
    outputs, extra = {"json": run}, []
    if case == "json is html":
        outputs["html"] = run
    elif case == "html is a device report":  # a farm writes run.<device>.json beside the merged run.json
        outputs["html"] = pytester.path / "out" / "run.host.json"
        extra = ["--aiotbench-device=host", "--aiotbench-device=ssh://u@127.0.0.1:1"]
    elif case == "bench is json via ..":
        outputs["bench"] = pytester.path / "out" / ".." / "out" / "run.json"
    else:
        outputs["json"] = pytester.path / "elsewhere" / ".." / "pytest.ini"
    before = project.snapshot()
    result = pytester.runpytest_inprocess(*project.args(outputs), *extra)
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text[-2000:]
    line = one_error_line(text)
    assert "are the same file" in line or "would overwrite its own input" in line, line
    assert project.snapshot() == before and not (pytester.path / "out").exists()
