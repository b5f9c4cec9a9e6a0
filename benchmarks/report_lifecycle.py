"""Report lifecycle cost: what recording one case costs the run now (a checkpoint: the report file rewritten from
a header built once, no hook, no device query) against the previous way (rebuilding the whole report: machine
facts, package versions, dataset description, device facts, the report hook; then writing it), measured in one
run on the 500 shared images with 36 recorded cases of 500 per-image values each.

    python benchmarks/report_lifecycle.py [--cases 36] [--images 500]

Prints the mean time per recorded case of each way and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.inputs.dataset import open_dataset  # noqa: E402
from pytest_aiotbench.report.entry import case_entry  # noqa: E402
from pytest_aiotbench.plugin.options import Settings  # noqa: E402
from pytest_aiotbench.plugin.state import AiotbenchState  # noqa: E402
from pytest_aiotbench.files import write_json_atomic  # noqa: E402

from tests.helpers.shared import SHARED  # noqa: E402 (the one place the shared folder is looked up)
DATASET = SHARED / "data" / "imagenet-val-500"


def _entry(i: int, images: int) -> dict:
    return case_entry(id=f"m{i}-tflite-int8", result_id=f"m{i}-tflite-int8", device="host", model=f"m{i}",
                      framework="tflite", quant="int8", file=f"/m{i}.tflite", status="passed", images=images,
                      top1=0.5, top5=0.8, latency_ms={k: 1.0 for k in ("min", "median", "mean", "p90", "stddev")},
                      prepare_ms=1.0, first_ms=1.0, vips=500.0, runtime={"runtime": "x"},
                      per_image={"top5": [[1, 2, 3, 4, 5]] * images, "latency_ms": [1.0] * images})


def _state(json_path: Path, images: int) -> AiotbenchState:
    config = SimpleNamespace(hook=SimpleNamespace(pytest_aiotbench_report=lambda config, report: None))
    settings = Settings(dataset=DATASET, images=images, threads=1, warmup=0, min_top1=None, strict=False,
                        json_path=json_path, cache_dir=None, devices=["host"])
    return AiotbenchState(config, settings, open_dataset(DATASET, images), [], None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=36)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        checkpoint, rebuild = _state(path, args.images), _state(path, args.images)
        checkpoint.dataset.fingerprint(), rebuild.dataset.fingerprint()  # image bytes read once, as in a run
        t_checkpoint = t_rebuild = 0.0
        for i in range(args.cases):
            entry = _entry(i, args.images)
            start = time.perf_counter()
            checkpoint.record(dict(entry))
            t_checkpoint += time.perf_counter() - start
            start = time.perf_counter()  # the previous record(): the whole report, facts and hook, every case
            rebuild.results[entry["result_id"]] = dict(entry)
            rebuild.device_facts.clear()
            report = rebuild._device_report("host", rebuild.facts("host"))
            rebuild.config.hook.pytest_aiotbench_report(config=rebuild.config, report=report)
            write_json_atomic(path, report)
            t_rebuild += time.perf_counter() - start
    n = args.cases
    print(f"{n} cases x {args.images} images: checkpoint {t_checkpoint / n * 1e3:.2f} ms/case, "
          f"full rebuild {t_rebuild / n * 1e3:.2f} ms/case, ratio {t_rebuild / t_checkpoint:.2f}x")


if __name__ == "__main__":
    main()
