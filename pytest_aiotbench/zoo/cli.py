"""``aiotbench zoo build`` / ``aiotbench zoo verify`` (registered by ``pytest_aiotbench.cli``)."""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

from . import ARCHS, BUILD_VARIANTS, MODELS, OPTIONAL_VARIANTS, VARIANTS


def _floats3(text: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1 or 3 numbers, got {text!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected 1 or 3 numbers, got {text!r}")
    return values  # type: ignore[return-value]


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _folder(text: str) -> Path | str:
    """An output folder; an empty value stays "" so that the command refuses it (Path("") would be ".": the
    current folder, silently)."""
    return Path(text) if text.strip() else ""


# A model name becomes a folder under --out and part of file names and case ids: one plain path component.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def register(subparsers) -> None:
    zoo = subparsers.add_parser("zoo", help="build the model zoo (all frameworks and quantization modes)")
    zsub = zoo.add_subparsers(dest="zoo_command", required=True)

    b = zsub.add_parser(
        "build", help="export models to .ptl, .onnx, TFLite fp32/dynamic/int8/fp16 (and .pte) with a manifest",
        description="Export the AIoTBench models (or your TorchScript model) to every framework and quantization "
                    "mode from one set of weights. Incremental: artifacts whose source, recipe and tool versions "
                    "are unchanged are skipped. Exit 0 = all built, 1 = some artifact failed, 2 = cannot start.")
    b.add_argument("--out", type=_folder, default=Path("models/zoo"), help="output folder (default: models/zoo)")
    b.add_argument("--models", type=_csv, default=None,
                   help=f"comma-separated subset of: {', '.join(MODELS)} (default: all)")
    optional = ", ".join(f"{v} only when {m.split('.')[0]} is installed" for v, (m, _) in OPTIONAL_VARIANTS.items())
    b.add_argument("--variants", type=_csv, default=list(BUILD_VARIANTS),
                   help=f"comma-separated subset of: {', '.join(VARIANTS)} (default: all; {optional})")
    b.add_argument("--weights", default="pretrained", metavar="pretrained|random|FILE.pth",
                   help="pretrained: torchvision's checkpoint, from the torch hub cache or downloaded there "
                        "(hash-checked); random: random init with BatchNorm statistics re-estimated (marked "
                        "weights: random); FILE.pth: your own state_dict for the torchvision builder (one model, "
                        "see --arch; tagged state_dict:<sha256>)")
    archs = "; ".join(f"{m}: {', '.join(a)}" for m, a in ARCHS.items() if len(a) > 1)
    b.add_argument("--arch", default=None,
                   help=f"torchvision builder for --weights FILE.pth where a model has several ({archs})")
    b.add_argument("--offline", action="store_true",
                   help="never download (also AIOTBENCH_OFFLINE=1): a missing checkpoint is a clear exit 2")
    b.add_argument("--weights-mirror", default=None, metavar="URL",
                   help="download pretrained checkpoints from URL/<checkpoint file name> instead of torchvision's "
                        "location (also AIOTBENCH_WEIGHTS_MIRROR)")
    b.add_argument("--calibration", type=Path, default=None,
                   help="images for int8 calibration, not evaluation images (default: $AIOTBENCH_CALIBRATION)")
    b.add_argument("--calibration-count", type=int, default=200,
                   help="calibration samples: a seeded draw if the folder has more, augmented crops if fewer")
    b.add_argument("--calibration-margin", type=float, default=1.25,
                   help="widen the calibrated activation ranges by this factor (default 1.25)")
    b.add_argument("--exclude", type=Path, action="append", default=[],
                   help="evaluation image folder whose images must never be used for calibration (repeatable)")
    b.add_argument("--seed", type=int, default=0, help="seed for random weights and calibration draws")
    b.add_argument("--input-size", type=int, default=None,
                   help="input size (required with --from-torchscript; for torchvision models an override "
                        "for fast test builds, e.g. 64)")
    b.add_argument("--force", action="store_true", help="rebuild even what is up to date")
    b.add_argument("--timeout", type=float, default=1800.0, help="seconds per export step (default 1800)")
    ts = b.add_argument_group("your own model (--from-torchscript, or --weights FILE.pth: preprocessing and "
                              "reference accuracy recorded in the manifest and the generated catalog)")
    ts.add_argument("--from-torchscript", type=Path, default=None, metavar="FILE.pt",
                    help="a TorchScript classifier taking NCHW float input")
    ts.add_argument("--name", default=None, help="model name (case ids are <name>-<framework>-<quant>)")
    ts.add_argument("--resize", type=int, default=None,
                    help="shorter side before the center crop (default round(input_size/0.875); 0 = straight resize)")
    ts.add_argument("--mean", type=_floats3, default=None, help="per-channel mean in pixel units, e.g. 127.5")
    ts.add_argument("--std", type=_floats3, default=None, help="per-channel std in pixel units, e.g. 127.5")
    ts.add_argument("--color", type=str.upper, choices=("RGB", "BGR"), default=None,
                    help="channel order the model expects (default RGB)")
    ts.add_argument("--num-classes", type=int, default=None,
                    help="number of model outputs, background included (e.g. 1001 with --background; default: the "
                         "model's own, 1000 for torchvision's; checked against the model's real output at build time)")
    ts.add_argument("--background", action="store_true", help="output 0 is a background class (1001 outputs)")
    ts.add_argument("--reference-top1", type=float, default=None, help="known top-1 (fraction) for the catalog")
    ts.add_argument("--reference-top5", type=float, default=None, help="known top-5 (fraction) for the catalog")
    b.set_defaults(func=_build)

    w = zsub.add_parser("weights", help="which weights each model of a zoo folder was built from")
    w.add_argument("--out", type=_folder, default=Path("models/zoo"), help="zoo folder (default: models/zoo)")
    w.set_defaults(func=_weights)

    v = zsub.add_parser("verify", help="check every artifact of a zoo folder against its manifest")
    v.add_argument("--out", type=_folder, default=Path("models/zoo"), help="zoo folder (default: models/zoo)")
    v.set_defaults(func=_verify)


def torchscript_problem(path: Path) -> str | None:
    """Why ``path`` is not a TorchScript archive (checked before any build step, so the message names the file and
    nothing is written), or None. torch.jit.save writes a zip with the module's ``code/``; torch.save does not."""
    hint = "save the model with torch.jit.script(model).save(FILE) or torch.jit.trace(model, example).save(FILE)"
    if not path.is_file():
        return None  # the build says "not found", after its check of the required options
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return f"--from-torchscript {path}: not a TorchScript file (not a zip archive); {hint}"
    if not any("/code/" in name or name.endswith("/constants.pkl") for name in names):
        return (f"--from-torchscript {path}: not a TorchScript file (a torch.save checkpoint or state_dict has no "
                f"code); {hint}")
    return None


def argument_problem(args) -> str | None:
    """A bad value, checked before anything is built: the entry values with the catalog's own schema
    (``catalog.FIELDS``: they end up in a catalog entry), the build knobs by range, the output folder by writing."""
    from ..inputs.catalog import FIELDS
    from ..report.storage import ReportPathError, check_writable

    if args.out == "":
        return "--out '': expected a folder (an empty value would build into the current folder)"
    for flag, values in (("--models", args.models), ("--variants", args.variants)):
        if values is not None and not values:
            return f"{flag}: empty list (name at least one, or leave {flag} out for all)"
    entry_values = [("--input-size", "input_size", args.input_size), ("--resize", "resize", args.resize),
                    ("--mean", "mean", args.mean), ("--std", "std", args.std), ("--name", "name", args.name),
                    ("--num-classes", "num_classes", args.num_classes),
                    ("--reference-top1", "reference_top1", args.reference_top1),
                    ("--reference-top5", "reference_top5", args.reference_top5)]
    for flag, key, value in entry_values:
        if value is None:
            continue
        try:
            FIELDS[key](list(value) if isinstance(value, tuple) else value)
        except ValueError as exc:
            shown = ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else value
            return f"{flag} {shown}: {exc}"
    if args.name is not None and not PLAIN_NAME.match(args.name):
        return (f"--name {args.name}: expected a plain name (letters, digits, '_', '.', '-'; it becomes a folder "
                f"under --out, never a path)")
    for flag, value, ok, valid in (("--calibration-count", args.calibration_count, args.calibration_count >= 1,
                                    "an integer >= 1"),
                                   ("--calibration-margin", args.calibration_margin,
                                    args.calibration_margin > 0, "a factor > 0"),
                                   ("--timeout", args.timeout, args.timeout > 0, "seconds > 0")):
        if not ok or value != value:  # NaN compares false everywhere
            return f"{flag} {value}: expected {valid}"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out}: not a folder"
    try:
        check_writable(args.out / "manifest.json")
    except ReportPathError as exc:
        return f"--out {args.out}: {str(exc).split(': ', 1)[1]}"
    return None


def _build(args) -> int:
    from .build import BuildOptions, build

    problem = argument_problem(args)
    if problem:
        print(f"aiotbench zoo build: {problem}", file=sys.stderr)
        return 2
    own_weights = args.weights not in ("pretrained", "random")
    if args.from_torchscript is None:
        flags = [("--name", args.name)] + ([] if own_weights else [
            ("--mean", args.mean), ("--std", args.std), ("--resize", args.resize), ("--color", args.color),
            ("--arch", args.arch), ("--reference-top1", args.reference_top1),
            ("--reference-top5", args.reference_top5), ("--num-classes", args.num_classes)])
        stray = [flag for flag, val in flags if val is not None]
        if stray:
            where = "--from-torchscript" if args.name is not None else "--from-torchscript or --weights FILE.pth"
            print(f"aiotbench zoo build: {', '.join(stray)} only apply with {where}", file=sys.stderr)
            return 2
        if own_weights and Path(args.weights).is_file() and torchscript_problem(Path(args.weights)) is None:
            print(f"aiotbench zoo build: --weights {args.weights} is a TorchScript model, not a state_dict: build it "
                  f"with --from-torchscript {args.weights} --name NAME --input-size N --mean M --std S",
                  file=sys.stderr)
            return 2
    else:
        problem = torchscript_problem(args.from_torchscript)
        if problem:
            print(f"aiotbench zoo build: {problem}", file=sys.stderr)
            return 2
    opts = BuildOptions(
        out=args.out, models=args.models, weights=args.weights, arch=args.arch, color=args.color,
        offline=args.offline, weights_mirror=args.weights_mirror, variants=tuple(args.variants),
        calibration=args.calibration, calibration_count=args.calibration_count,
        calibration_margin=args.calibration_margin, exclude=list(args.exclude), seed=args.seed,
        input_size=None if args.from_torchscript else args.input_size, force=args.force, timeout=args.timeout,
        torchscript=args.from_torchscript, name=args.name,
        ts_input_size=args.input_size if args.from_torchscript else None, resize=args.resize, mean=args.mean,
        std=args.std, num_classes=args.num_classes, background=args.background,
        reference_top1=args.reference_top1, reference_top5=args.reference_top5)
    return build(opts)


def _weights(args) -> int:
    """One line per model: its weights tag and where they came from (what `make bench` measured)."""
    from ..inputs import manifest as mf

    if args.out == "":
        print("aiotbench zoo weights: --out '': expected a zoo folder", file=sys.stderr)
        return 2

    try:
        data = mf.read(Path(args.out) / mf.MANIFEST_NAME)
    except mf.ManifestMismatch as exc:
        print(f"aiotbench zoo weights: {exc}", file=sys.stderr)
        return 2
    if not data.get("models"):
        print(f"aiotbench zoo weights: nothing built in {args.out}", file=sys.stderr)
        return 2
    for name, m in sorted(data["models"].items()):
        tag = m.get("weights") or "?"
        note = "  (latency only: random weights are never scored for accuracy)" if tag == "random" else ""
        print(f"{name:<14} {tag[:24] + ('…' if len(tag) > 24 else ''):<25} "
              f"{(m.get('source') or {}).get('info', {}).get('source', '')}{note}")
    return 0


def _verify(args) -> int:
    from ..inputs import manifest as mf

    if args.out == "":
        print("aiotbench zoo verify: --out '': expected a zoo folder", file=sys.stderr)
        return 2
    path = Path(args.out) / mf.MANIFEST_NAME
    if not path.is_file():
        print(f"aiotbench zoo verify: no manifest at {path}", file=sys.stderr)
        return 2
    try:
        data = mf.read(path)
    except mf.ManifestMismatch as exc:
        print(f"aiotbench zoo verify: {exc}", file=sys.stderr)
        return 2
    bad = 0
    for key in sorted(data["files"]):
        f = Path(args.out) / key
        try:
            if not f.is_file():
                raise mf.ManifestMismatch(f"{f}: listed in {path} but missing")
            mf.verify(f)
            print(f"ok   {key}")
        except mf.ManifestMismatch as exc:
            bad += 1
            print(f"FAIL {exc}")
    print(f"{len(data['files']) - bad} ok, {bad} failed")
    return 1 if bad else 0
