"""What contention does to latency verdicts, and what interleaved A/B does about it.

    python benchmarks/ab_noise.py [--images 500] [--repeats 3] [--core 0]

This process and a bounded busy-loop hog (a subprocess that ends itself after 120 s at most) are pinned to the
same core; the hog is started when half of a case's images are timed and stopped at its end. Real models
(the shared MobileNetV1 TFLite files), real images, the plugin's own code paths (``pipeline.time_pair``, ``execute``,
``validity``, ``ab``, ``compare``). Experiments, each repeated:

1. A/B of MobileNetV1-0.25 against an identical copy of its file, hog in the second half: paired ratio and verdict.
2. The same two timed one after the other, the hog in the second one: per-case validity and compare's verdict.
3. A/B of MobileNetV1-0.5 (candidate) against 0.25 (baseline), without and with the hog: ratio and verdict.
4. Why ``pairs.SESSIONS`` sessions a side: one session of a file timed A/B against another session of it, then the
   same two with the roles swapped, then one session against itself (each with the hog in the second half); the
   creation order of the two sessions alternates between repeats. Printed: the ratio with its sampling interval
   (what a single session a side can know).

``tests/verdicts/test_ab_run.py`` runs these experiments once (marked slow) and asserts what contention cannot flip.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.verdicts import ab, validity  # noqa: E402
from pytest_aiotbench.pipeline import pair_entry, time_pair  # noqa: E402
from pytest_aiotbench.run.pairs import time_prepared  # noqa: E402
from pytest_aiotbench.inputs.catalog import Case, load  # noqa: E402
from pytest_aiotbench.report.compare import compare_reports, parse_limits  # noqa: E402
from pytest_aiotbench.inputs.dataset import open_dataset  # noqa: E402
from pytest_aiotbench.frameworks import PrepareOptions  # noqa: E402
from pytest_aiotbench.inputs.preprocess import PixelCache  # noqa: E402
from pytest_aiotbench.verdicts.score import accuracy, latency_stats_ms  # noqa: E402
from pytest_aiotbench.run.job import Job  # noqa: E402
from pytest_aiotbench.targets.host import execute, prepared  # noqa: E402
from pytest_aiotbench.run.timing import PerfCounterTiming  # noqa: E402

from tests.helpers.shared import SHARED  # noqa: E402 (the one place the shared folder is looked up)
MODELS = SHARED / "models" / "tflite"
DATASET = SHARED / "data" / "imagenet-val-500"
VARIANTS = {"0.25_128": (128, 146), "0.5_160": (160, 182)}
LIMITS = parse_limits(["latency:+5%", "top1:-0.5pt"])
HOG_MAX_SECONDS = 120


# ------------------------------------------------------------------------------------------------------ the hog

@contextlib.contextmanager
def pinned(core: int):
    """This process on one core (restored afterwards), so the hog really competes with the timed inference."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


class CpuHog:
    """A busy-loop subprocess pinned to ``core``; it stops itself after HOG_MAX_SECONDS whatever happens here."""

    def __init__(self, core: int) -> None:
        self.core, self.proc = core, None

    def start(self) -> None:
        if self.proc is None:
            code = (f"import os, time\nos.sched_setaffinity(0, {{{self.core}}})\n"
                    f"end = time.monotonic() + {HOG_MAX_SECONDS}\nwhile time.monotonic() < end: pass\n")
            self.proc = subprocess.Popen([sys.executable, "-c", code])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def at_half(self, done: int, total: int) -> None:
        """Progress callback (called between images, untimed): start the hog once half the images are done."""
        if done == total // 2:
            self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------------------------------------ the cases

def write_catalog(folder: Path, variant: str, file: Path | None = None, name: str = "mobilenet_v1") -> Case:
    size, resize = VARIANTS[variant]
    path = folder / f"{name}-{variant}.toml"
    path.write_text(f'[[model]]\nname = "{name}"\nframework = "tflite"\nquant = "int8"\n'
                    f'file = "{file or MODELS / f"mobilenet_v1_{variant}_quant.tflite"}"\ninput_size = {size}\n'
                    f'resize = {resize}\nlayout = "NHWC"\nmean = [127.5, 127.5, 127.5]\n'
                    f'std = [127.5, 127.5, 127.5]\nnum_classes = 1001\nbackground = true\n')
    return load(path)[0]


class Bench:
    def __init__(self, images: int, workdir: Path, core: int) -> None:
        self.dataset = open_dataset(DATASET, images)
        self.cache = PixelCache(workdir / "pixels")
        self.workdir, self.core = workdir, core
        self.small = write_catalog(workdir, "0.25_128")
        copy = workdir / "copy" / self.small.file.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.small.file, copy)
        self.copy = write_catalog(workdir, "0.25_128", copy, name="mobilenet_v1_copy")
        self.large = write_catalog(workdir, "0.5_160")

    def job(self, case: Case, warmup: int = 10) -> Job:
        return Job(case_id=case.id, framework=case.framework, model_file=case.file,
                   options=PrepareOptions(threads=1, extra=case.options),
                   pixels=self.dataset.pixels(case.preprocess, self.cache), preprocess=case.preprocess,
                   warmup=warmup, num_classes=case.num_classes, background=case.background)

    def entry(self, case: Case, measurement, load) -> dict:
        """A report case entry as the plugin writes it (the parts compare and the A/B read)."""
        ms = [s * 1e3 for s in measurement.latencies_s]
        labels = self.dataset.labels
        return {"id": "mobilenet_v1-tflite-int8", "model": case.model, "framework": case.framework,
                "quant": case.quant, "file": str(case.file), "file_sha256": None, "images": len(ms),
                "top1": accuracy(measurement.topk, labels, 1), "top5": accuracy(measurement.topk, labels, 5),
                "latency_ms": latency_stats_ms(measurement.latencies_s), "prepare_ms": None, "first_ms": None,
                "vips": None, "vops": None, "status": "passed", "validity": validity.assess(ms, load),
                "per_image": {"latency_ms": ms, "top5": measurement.topk.tolist()}}

    def ab(self, new: Case, base: Case, hog: bool) -> dict:
        """Interleaved A/B, the hog (if any) during the second half of the pairs."""
        with pinned(self.core), CpuHog(self.core) as cpu_hog:
            timing = time_pair(self.job(new), self.job(base), cpu_hog.at_half if hog else _nothing)
        entry = self.entry(new, timing.new, timing.load)
        return pair_entry(entry["id"], base, timing, entry, self.dataset.labels, True, LIMITS)

    def sessions(self, copy_first: bool, hog: bool = True) -> dict[str, ab.RatioEstimate]:
        """Experiment 4: two sessions of one file both ways round, and one session against itself."""
        order = (self.copy, self.small) if copy_first else (self.small, self.copy)
        out = {}
        with pinned(self.core), prepared(self.job(order[0])) as first, prepared(self.job(order[1])) as second:
            copy, orig = (first, second) if copy_first else (second, first)
            for name, new, base in (("copy/orig", copy, orig), ("orig/copy", orig, copy), ("same session", copy, copy)):
                with CpuHog(self.core) as cpu_hog:
                    timing = time_prepared([new], [base], 10, cpu_hog.at_half if hog else _nothing)
                out[name] = ab.ratio_interval(ab.clean_ratios(timing.new.latencies_s, timing.base.latencies_s), name)
        return out

    def single(self, case: Case, hog: bool) -> dict:
        with pinned(self.core), CpuHog(self.core) as cpu_hog:
            timing = PerfCounterTiming(cpu_hog.at_half if hog else _nothing)
            measurement = execute(self.job(case), timing)
        return self.entry(case, measurement, timing.load)

    def sequential(self) -> tuple[dict, dict, object]:
        """The same model timed twice, one after the other, the hog in the second half of the second run."""
        quiet, hogged = self.single(self.small, hog=False), self.single(self.copy, hog=True)
        report = lambda e: {"dataset": {"fingerprint": self.dataset.fingerprint()}, "machine": {},  # noqa: E731
                            "device": {"target": "host"}, "cases": [e]}
        return quiet, hogged, compare_reports(report(quiet), report(hogged), LIMITS)


def _nothing(done: int, total: int) -> None:
    pass


# ---------------------------------------------------------------------------------------------------- script

def _ratio(pair: dict) -> str:
    """The ratio, its interval, and the SD between sessions of one side measured in the run."""
    r = pair["ratio"]
    return (f"x{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}] (sampling [{r['sampling'][0]:.3f}, "
            f"{r['sampling'][1]:.3f}], sessions SD {r['sessions']['sd']:.2%})")


def _sessions(e: ab.RatioEstimate) -> str:
    """One session a side: the ratio, its sampling interval and whether that contains 1.0."""
    return f"x{e.median:.4f} sampling [{e.low:.4f}, {e.high:.4f}]{'' if e.low <= 1 <= e.high else ' excludes 1'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--experiments", default="1,2,3,4", help="which experiments to run, e.g. 1,4")
    args = parser.parse_args()
    run = {int(x) for x in args.experiments.split(",")}
    tally: dict[str, list] = {}
    note = lambda key, value: tally.setdefault(key, []).append(value)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.images, Path(tmp), args.core)
        print(f"{args.images} images, this process and the hog pinned to core {args.core}, limit latency:+5%")
        for repeat in range(1, args.repeats + 1):
            if 1 in run:
                same = bench.ab(bench.copy, bench.small, hog=True)
                print(f"[{repeat}] identical copy A/B, hog in 2nd half: {_ratio(same)} -> {same['verdict']}"
                      f" (pairing {validity.label(same['pair_validity'], with_kinds=False)})")
                r = same["ratio"]
                note("copy ratio", r["median"])
                note("copy interval holds 1.0", r["low"] <= 1 <= r["high"])
                note("copy sampling alone holds 1.0", r["sampling"][0] <= 1 <= r["sampling"][1])
                note("copy sessions SD", r["sessions"]["sd"])
                note("copy verdict", same["verdict"])
            if 2 in run:
                quiet, hogged, comparison = bench.sequential()
                delta = comparison.cases[0].deltas["median"]
                print(f"[{repeat}] sequential, hog in 2nd half of run 2: median {quiet['latency_ms']['median']:.3f}"
                      f" -> {hogged['latency_ms']['median']:.3f} ms ({delta.change:+.1f}%); run 1 "
                      f"{validity.label(quiet['validity'])}, run 2 {validity.label(hogged['validity'])}; compare: "
                      + ("CANNOT JUDGE" if delta.cannot_judge else "REGRESSION" if delta.regressed
                         else "no regression"))
                note("sequential compare", "cannot judge" if delta.cannot_judge else "regression" if delta.regressed
                     else "no regression")
            if 3 in run:
                calm = bench.ab(bench.large, bench.small, hog=False)
                loud = bench.ab(bench.large, bench.small, hog=True)
                change = loud["ratio"]["median"] / calm["ratio"]["median"] - 1
                print(f"[{repeat}] 0.5_160 vs 0.25_128 A/B: no hog {_ratio(calm)} -> {calm['verdict']}; hog in 2nd "
                      f"half {_ratio(loud)} -> {loud['verdict']} ({change:+.1%} vs no hog)")
                note("4x ratio, no hog", calm["ratio"]["median"])
                note("4x ratio, hog", loud["ratio"]["median"])
                note("4x hog vs no hog", change)
                note("4x verdict, hog", loud["verdict"])
            if 4 in run:
                copy_first = repeat % 2 == 1
                found = bench.sessions(copy_first)
                print(f"[{repeat}] two sessions of one file ({'copy' if copy_first else 'orig'} created first), hog in "
                      f"2nd half: " + "; ".join(f"{name} {_sessions(e)}" for name, e in found.items()))
                for name in ("copy/orig", "orig/copy"):
                    note("one session a side: sampling holds 1.0", found[name].low <= 1 <= found[name].high)
    print(f"summary over {args.repeats} repeats:")
    for key, values in tally.items():
        if isinstance(values[0], bool):
            print(f"  {key}: {sum(values)} of {len(values)}")
        elif isinstance(values[0], str):
            print(f"  {key}: " + ", ".join(f"{v} {values.count(v)}" for v in sorted(set(values))))
        else:
            print(f"  {key}: {min(values):.4f} to {max(values):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
