"""The CI recipe (issue 17, item 7): docs/ci/aiotbench-gate.sh gates a branch against main in a real git
repository (main holds model v1; a branch that swaps in a worse model is red, one that keeps it is green), and the
GitHub Actions and GitLab CI files parse and run that script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import dedent
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "docs" / "ci"
SCRIPT = CI / "aiotbench-gate.sh"
V1 = TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite"  # 70 % top-1 on the shared 500 images
WORSE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"  # 55 %


def catalog(size: int, comment: str = "", options: str = "") -> str:
    return dedent(f"""
        # {comment}
        [[model]]
        name = "mine"
        framework = "tflite"
        quant = "int8"
        file = "models/model.tflite"
        input_size = {size}
        mean = [127.5, 127.5, 127.5]
        std = [127.5, 127.5, 127.5]
        num_classes = 1001
        background = true
        {options}
    """)


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def commit_model(repo: Path, model: Path, size: int, message: str) -> None:
    (repo / "models").mkdir(exist_ok=True)
    shutil.copyfile(model, repo / "models" / "model.tflite")
    (repo / "aiotbench.toml").write_text(catalog(size, message))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def gate(repo: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--aiotbench-images=60", "--aiotbench-warmup=2", "-p",
                           "no:cacheprovider"], cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, "AIOTBENCH_DATASET": str(IMAGENET_500),
                               # Accuracy is exact on the same images; latency verdicts of a real run on a shared
                               # machine are never asserted in tests.
                               "AIOTBENCH_FAIL_ON": "top1:-0.5pt", "COLUMNS": "120", **env})


@pytest.mark.slow
def test_the_gate_script_is_red_for_a_worse_model_and_green_for_the_same(tmp_path, shared):
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    (repo / ".gitignore").write_text("aiotbench-out/\n")  # the reports: CI artifacts, never committed
    commit_model(repo, V1, 160, "model v1")

    git(repo, "checkout", "-q", "-b", "same")
    (repo / "aiotbench.toml").write_text(catalog(160, "same model, catalog touched"))
    git(repo, "commit", "-qam", "same model")
    same = gate(repo)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    assert "A/B against main" in same.stdout
    saved = tmp_path / "main-run.json"  # what a run on main would have saved
    shutil.copyfile(repo / "aiotbench-out" / "aiotbench.json", saved)
    assert (repo / "aiotbench-out" / "report.html").is_file() and not (repo / "aiotbench-out" / "base").exists()

    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "worse")
    commit_model(repo, WORSE, 128, "smaller model")
    worse = gate(repo)
    assert worse.returncode == 1, worse.stdout[-3000:] + worse.stderr[-2000:]
    report = json.loads((repo / "aiotbench-out" / "aiotbench.json").read_text())
    (case,) = report["cases"]
    assert case["ab"]["baseline"]["file"].endswith("models/model.tflite") and case["ab"]["verdict"] == "regression"
    assert "REGRESSION" in worse.stdout and (repo / "aiotbench-out" / "report.html").is_file()

    against_saved = gate(repo, AIOTBENCH_BASE_JSON=str(saved))
    assert against_saved.returncode == 1, against_saved.stdout[-3000:] + against_saved.stderr[-2000:]
    assert "comparing with the saved run" in against_saved.stdout and "top1" in against_saved.stdout

    # A latency regression: the same file without XNNPACK (several times slower; its int8 kernels round a few
    # logits differently, top-1 within a point) under the script's default limits. Red through the latency limit:
    # REGRESSION, or NOT JUDGED when this busy machine spoils the pairing; never green.
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "slower")
    (repo / "aiotbench.toml").write_text(catalog(160, "no XNNPACK", 'options = { delegate = "none" }'))
    git(repo, "commit", "-qam", "slower runtime setting")
    slower = gate(repo, AIOTBENCH_FAIL_ON="top1:-0.5pt,latency:+5%")
    assert slower.returncode == 1, slower.stdout[-3000:] + slower.stderr[-2000:]
    (case,) = json.loads((repo / "aiotbench-out" / "aiotbench.json").read_text())["cases"]
    latency = [j["verdict"] for j in case["ab"]["judgements"] if j["metric"] != "top1"]  # latency: the median
    assert latency and latency[0] in ("regression", "cannot judge"), case["ab"]["judgements"]


def test_the_gate_script_refuses_a_missing_catalog_or_base_in_one_line(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    proc = gate(repo)
    assert proc.returncode == 4 and proc.stderr.strip() == \
        "aiotbench-gate: catalog aiotbench.toml not found (set AIOTBENCH_CATALOG)"
    (repo / "aiotbench.toml").write_text(catalog(160))
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "x")
    proc = gate(repo)
    assert proc.returncode == 4 and proc.stderr.strip() == \
        "aiotbench-gate: base main not found (fetch it: git fetch origin main)"


def test_the_ci_recipes_parse_and_run_the_gate_script_with_cache_and_artifacts():
    yaml = pytest.importorskip("yaml")
    github = yaml.safe_load((CI / "github-actions.yml").read_text())
    assert github[True]["pull_request"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    steps = github["jobs"]["gate"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert "bash docs/ci/aiotbench-gate.sh" in runs
    assert uses["actions/checkout"]["with"]["fetch-depth"] == 0
    assert uses["actions/cache"]["with"]["path"] == ".aiotbench-data"
    upload = uses["actions/upload-artifact"]
    assert upload["if"] == "always()" and upload["with"]["path"] == "aiotbench-out/"
    assert github["jobs"]["gate"]["env"]["AIOTBENCH_DATASET"].endswith(".aiotbench-data")

    gitlab = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["aiotbench-gate"]
    assert "bash docs/ci/aiotbench-gate.sh" in gitlab["script"]
    assert gitlab["variables"]["GIT_DEPTH"] == "0" and gitlab["variables"]["BASE_REF"] == "origin/main"
    assert ".aiotbench-data" in [p for c in gitlab["cache"] for p in c["paths"]]
    assert gitlab["artifacts"]["when"] == "always" and gitlab["artifacts"]["paths"] == ["aiotbench-out/"]
    for recipe in (github["jobs"]["gate"]["env"], gitlab["variables"]):
        assert recipe["OUT"] == "aiotbench-out" and recipe["AIOTBENCH_CATALOG"] == "aiotbench.toml"
