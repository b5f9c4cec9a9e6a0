"""Checkpoint cost as a run grows: N recorded cases of 500 per-image values each (300 x 500 = a 3.5 MB report),
each case taking CASE_S seconds (busy wait), then the share of the run spent checkpointing and how many
checkpoints were written (a costly one waits CHECKPOINT_SPACING x its cost: session.checkpoint).

    python benchmarks/checkpoint_growth.py [--cases 300] [--case-s 0.3] [--every-case]

``--every-case`` switches the spacing off (one write per case, whatever it costs) for comparison."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report_lifecycle import _entry, _state  # noqa: E402
from pytest_aiotbench.plugin import state as session  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--case-s", type=float, default=0.3)
    parser.add_argument("--every-case", action="store_true")
    args = parser.parse_args()
    if args.every_case:
        session.CHECKPOINT_FREE_S = float("inf")
    writes = []
    original = session.write_atomic
    session.write_atomic = lambda path, write, **kw: (writes.append(path), original(path, write, **kw))
    with tempfile.TemporaryDirectory() as tmp:
        state = _state(Path(tmp) / "run.json", args.images)
        state.dataset.fingerprint()  # image bytes read once, as in a run
        spent, start = 0.0, time.perf_counter()
        for i in range(args.cases):
            entry = _entry(i, args.images)
            end = time.perf_counter() + args.case_s
            while time.perf_counter() < end:
                pass
            t = time.perf_counter()
            state.record(entry)
            spent += time.perf_counter() - t
        wall = time.perf_counter() - start
        size = (Path(tmp) / "run.json").stat().st_size
    print(f"{args.cases} cases x {args.images} images ({size / 1e6:.1f} MB), {args.case_s} s a case: "
          f"checkpoints {spent:.1f} s of {wall:.1f} s ({100 * spent / wall:.1f} %), {len(writes)} writes")


if __name__ == "__main__":
    main()
