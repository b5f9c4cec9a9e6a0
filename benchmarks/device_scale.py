"""A device run at dataset scale (issue 19): N images on a "board" with 1 GB of free storage, against the host.

    python benchmarks/device_scale.py --board-dir /mnt/board1g [--sizes 1000,50000] [--case int8-128|fp32-224]
                                      [--workdir DIR] [--deadline S]

The board is a real sshd on loopback (throwaway host and user keys, a free port, started and stopped here, as
``tests/targets/test_device_ssh.py`` does; run as root, or as a user sshd accepts), whose job folder
(``--aiotbench-device-workdir``) is ``--board-dir``: make that a filesystem of 1 GB first, e.g. (as root)

    mkdir -p /mnt/board1g && mount -t tmpfs -o size=1G tmpfs /mnt/board1g      # umount /mnt/board1g afterwards
    # or on a disk: truncate -s 1G /tmp/board1g.img && mkfs.ext4 -q /tmp/board1g.img \\
    #               && mkdir -p /mnt/board1g && mount -o loop /tmp/board1g.img /mnt/board1g

The case is one of ``scale.py``'s (default ``int8-128``, the 128-px int8 MobileNetV1-0.25 TFLite); the datasets are its
(unique copies of the 500 shared images, the size-N set the first N of one pool, a warm pixel cache). For each size
the same ``pytest --aiotbench`` session runs twice in a child process: on the host, then with
``--device=ssh://...`` (the runner on the "board", the crops pushed one file of 64 MB at a time). Measured:

- host peak RSS: the pytest child's ``ru_maxrss`` (the session, its pixel store, the pushes);
- runner peak RSS: the device runner's own ``ru_maxrss``, written at its exit by a thin wrapper given as
  ``--aiotbench-device-python`` (and the runner's reported ``memory``: base + peak);
- board peak: the most space used on ``--board-dir`` during the run above what was used before it (statvfs,
  sampled every 20 ms), against its size;
- wall: the child's, the runner process's (start to exit), and Σ timed inference on the device;
- top-1 on both sides, and whether every image's top-5 is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scale  # noqa: E402  (REPO on sys.path, the cases, the warm-cache script, the subsets)
from tests.helpers.sshd import SshdUnavailable, start_sshd, stop_sshd  # noqa: E402

WRAPPER = """#!{python}
# The device runner under this wrapper: the same process, plus its own peak RSS and wall at exit.
import atexit, json, resource, runpy, sys, time
_start = time.perf_counter()
def _report():
    with open({log!r}, "a") as fh:
        fh.write(json.dumps({{"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                             "wall_s": time.perf_counter() - _start}}) + "\\n")
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class SpaceSampler(threading.Thread):
    """Most bytes used on a filesystem above what was used when it started, sampled every 20 ms."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.stop, self.peak = path, threading.Event(), 0
        self.base = self.used()
        self.size = os.statvfs(path).f_blocks * os.statvfs(path).f_frsize

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.used() - self.base)
            time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board-dir", type=Path, required=True, help="the board's job folder (a 1 GB filesystem)")
    parser.add_argument("--sizes", default="1000,50000")
    parser.add_argument("--case", default="int8-128", choices=sorted(scale.CASES))
    parser.add_argument("--workdir", type=Path, help="where the datasets and the cache go (default: a temp folder)")
    parser.add_argument("--deadline", type=float, help="--aiotbench-device-deadline (default: the plugin's)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    board = args.board_dir.resolve()
    if not board.is_dir():
        raise SystemExit(f"device_scale: {board}: not a folder (see the docstring for a 1 GB filesystem)")
    entry = scale.CASES[args.case]
    if not Path(entry["file"]).is_file():
        raise SystemExit(f"device_scale: {entry['file']} not found (set AIOTBENCH_SHARED)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="aiotbench-device-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(scale.REPO)}
    sshd = None
    try:
        pool = scale.unique_copies(work / "pool", sizes[-1])
        cache = work / "cache"
        warm = subprocess.run([sys.executable, "-c", scale.WARM, str(pool), str(cache), str(entry["input_size"]),
                               str(entry["resize"])], env=env, capture_output=True, text=True, check=True)
        print(f"{args.case}: {warm.stdout.strip()}", flush=True)
        keys = work / "sshd"
        shutil.rmtree(keys, ignore_errors=True)
        keys.mkdir()
        try:
            sshd, ssh = start_sshd(keys)
        except SshdUnavailable as exc:
            raise SystemExit(f"device_scale: {exc} (run as root, or install openssh-server)") from None
        log = work / "runner-rss.jsonl"
        wrapper = work / "device-python"
        wrapper.write_text(WRAPPER.format(python=sys.executable, log=str(log)))
        wrapper.chmod(0o755)
        device = [f"--device={ssh['spec']}", f"--aiotbench-ssh-key={ssh['key']}",
                  f"--aiotbench-ssh-known-hosts={ssh['known_hosts']}", f"--aiotbench-device-workdir={board}",
                  f"--aiotbench-device-python={wrapper}"]
        if args.deadline:
            device.append(f"--aiotbench-device-deadline={args.deadline:g}")
        sampler = SpaceSampler(board)
        print(f"board: {board}, {sampler.size / 2**20:.0f} MiB, {sampler.base / 2**20:.1f} MiB used before\n")
        print("| images | host peak RSS MB (host run / device run) | runner peak RSS MB | runner memory base+peak MB | "
              "board peak used MB | wall s (device session / runner) | timed ms/image | top-1 host / device | "
              "top-5 rows equal |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in sizes:
            data = scale.subset(pool, work / f"n{n}", n)
            host_child, host_case = scale.run_session(work, args.case, data, cache, env, tag="host")
            log.unlink(missing_ok=True)
            sampler = SpaceSampler(board)
            sampler.start()
            try:
                dev_child, dev_case = scale.run_session(work, args.case, data, cache, env, tuple(device), "device")
            finally:
                sampler.stop.set()
                sampler.join()
            runner = json.loads(log.read_text().splitlines()[-1])
            mem = dev_case.get("memory") or {}
            reported = (mem.get("base_mb") or 0) + (mem.get("peak_mb") or 0) if mem.get("peak_mb") is not None \
                else None
            timed = sum(dev_case["per_image"]["latency_ms"]) / len(dev_case["per_image"]["latency_ms"])
            same = host_case["per_image"]["top5"] == dev_case["per_image"]["top5"]
            print(f"| {n} | {host_child['maxrss_mb']:.0f} / {dev_child['maxrss_mb']:.0f} | {runner['maxrss_mb']:.0f} | "
                  f"{'n/a' if reported is None else f'{reported:.0f}'} | {sampler.peak / 2**20:.1f} of "
                  f"{sampler.size / 2**20:.0f} | {dev_child['wall_s']:.1f} / {runner['wall_s']:.1f} | {timed:.3f} | "
                  f"{host_case['top1']:.4f} / {dev_case['top1']:.4f} | {same} |", flush=True)
    finally:
        if sshd is not None:
            stop_sshd(sshd)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
