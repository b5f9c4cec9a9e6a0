"""A relative threshold whose reference was deselected or failed says so once (issue 22: the message was printed
twice with "During handling of the above exception")."""

from __future__ import annotations

import pytest

from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

SMALL = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.mark.real
@pytest.mark.skipif(not (SMALL.is_file() and IMAGENET_500.is_dir()), reason="shared model or images missing")
@pytest.mark.parametrize("how", ["deselected", "failed"])
@pytest.mark.slow
def test_missing_reference_is_said_once(run_aiotbench, tmp_path, how):
    reference = tflite_entry("m", SMALL if how == "deselected" else tmp_path / "broken.tflite", 128, quant="fp32")
    if how == "failed":
        (tmp_path / "broken.tflite").write_bytes(b"not a model")
    dependent = tflite_entry("m", SMALL, 128, quant="int8", min_top1="90% of fp32")
    catalog = write_catalog(tmp_path / "cat.toml", [reference, dependent])
    args = ["--aiotbench-images=10", "--aiotbench-strict"] + (["-k", "int8"] if how == "deselected" else [])
    run = run_aiotbench(*args, catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    # Once in the failure ("measured earlier" or "to pass earlier"); pytest's short summary (whole when CI is set)
    # is left out.
    ours = "\n".join(line for line in run.stdout.splitlines() if not line.startswith("FAILED "))
    assert ours.count("needs m-tflite-fp32") == 1, run.stdout
    assert "During handling of the above exception" not in run.stdout
