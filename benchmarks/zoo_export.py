"""Export cost of the model zoo: wall time and peak memory per model and artifact.

    python benchmarks/zoo_export.py [--out models/zoo]            # read them from <out>/manifest.json
    python benchmarks/zoo_export.py --build --out /tmp/zoo-bench --weights random [--models a,b] [--input-size S]
                                                                  # run `aiotbench zoo build --force` first
    python benchmarks/zoo_export.py --json costs.json             # also write the rows as JSON

Each artifact is exported in its own subprocess, so "peak MB" is that process's own peak RSS (os.wait4), including
the Python interpreter and the imported toolchain; "s" is the subprocess's wall time, imports included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.zoo import DEFAULT_VARIANTS  # noqa: E402  (import-light)


def rows_from_manifest(out: Path) -> list[dict]:
    data = json.loads((out / "manifest.json").read_text())
    rows = []
    for name, model in sorted(data.get("models", {}).items()):
        src = model.get("source") or {}
        rows.append({"model": name, "artifact": "(source weights)", "seconds": src.get("seconds"),
                     "peak_mb": src.get("peak_memory_mb"), "size_mb": None, "weights": model.get("weights")})
        entries = [e for e in data["files"].values() if e["model"] == name]
        entries.sort(key=lambda e: DEFAULT_VARIANTS.index(e["variant"]) if e["variant"] in DEFAULT_VARIANTS else 99)
        for e in entries:
            rows.append({"model": name, "artifact": e["variant"], "seconds": e.get("export_seconds"),
                         "peak_mb": e.get("peak_memory_mb"), "size_mb": round(e["size"] / 1e6, 2),
                         "weights": e.get("weights")})
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'model':<16} {'artifact':<17} {'s':>7} {'peak MB':>8} {'size MB':>8}"
    lines = [head, "-" * len(head)]
    total = 0.0
    for r in rows:
        s = r["seconds"]
        total += s or 0.0
        lines.append(f"{r['model']:<16} {r['artifact']:<17} {s if s is not None else float('nan'):>7.1f} "
                     f"{r['peak_mb'] if r['peak_mb'] is not None else float('nan'):>8.0f} "
                     f"{r['size_mb'] if r['size_mb'] is not None else '':>8}")
    lines.append(f"total export time {total:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "models" / "zoo")
    ap.add_argument("--build", action="store_true", help="run `aiotbench zoo build --force` into --out first")
    ap.add_argument("--json", type=Path, default=None)
    args, build_args = ap.parse_known_args(argv)
    if args.build:
        cmd = [sys.executable, "-m", "pytest_aiotbench", "zoo", "build", "--force", "--out", str(args.out),
               *build_args]
        code = subprocess.call(cmd, cwd=str(REPO))
        if code not in (0, 1):
            return code
    elif build_args:
        ap.error(f"unrecognized arguments {' '.join(build_args)} (build options need --build)")
    if not (args.out / "manifest.json").is_file():
        print(f"no manifest at {args.out}/manifest.json: build first (aiotbench zoo build, or --build)",
              file=sys.stderr)
        return 2
    rows = rows_from_manifest(args.out)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
