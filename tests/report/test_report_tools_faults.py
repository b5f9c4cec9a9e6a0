"""Bad input to the report tools (``aiotbench compare``/``rank``/``report``, ``zoo build``): one line, exit 2, never a
traceback. Includes a seeded, bounded fuzz over corrupted report files."""

from __future__ import annotations

import json
import math
import random
import zipfile
from pathlib import Path

import pytest

from pytest_aiotbench.cli import main as aiotbench_main
from tests.helpers.reports import make_case, make_report, run_cli, write_json

FUZZ_SEED = 20261129
FUZZ_ROUNDS = 120  # compare and rank each; the HTML report (matplotlib) every 8th round
ODD_VALUES = [None, True, False, 0, -1, 1.5, 1e308, -1e-9, float("nan"), float("inf"), "", "x", "0.7", [], {},
              [1, "a"], {"a": 1}, [[None]], "../../etc/passwd"]


def _good_pair(tmp_path: Path) -> tuple[dict, dict]:
    base = make_report([make_case("a-tflite-int8", seed=1, images=30), make_case("b-onnx-fp32", seed=2, images=30),
                        make_case("c-tflite-fp32", status="skipped")])
    new = make_report([make_case("a-tflite-int8", seed=3, images=30, latency_ms=6.0),
                       make_case("b-onnx-fp32", seed=4, images=30, top1=0.6), make_case("d-onnx-int8", seed=5)])
    return base, new


def _nodes(value, path=()):
    """Every (path, value) inside a JSON tree."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, path + (i,))


def _mutate(report: dict, rng: random.Random) -> str:
    """One random corruption of the report, returned as the file's text."""
    report = json.loads(json.dumps(report))
    kind = rng.choice(["replace", "replace", "number", "number", "number", "delete", "truncate", "garble",
                       "duplicate", "swap"])
    nodes = [(p, v) for p, v in _nodes(report) if p]
    if kind == "number":  # values the schema allows but the maths may not: zero, negative, huge, tiny
        nodes = [(p, v) for p, v in nodes if isinstance(v, (int, float)) and not isinstance(v, bool)] or nodes
    path, _ = rng.choice(nodes)
    parent = report
    for key in path[:-1]:
        parent = parent[key]
    if kind in ("replace", "truncate", "garble"):
        parent[path[-1]] = rng.choice(ODD_VALUES)
    elif kind == "number":
        parent[path[-1]] = rng.choice([0, 0.0, -1, -0.5, 1e308, 1e-300, 2, 10 ** 30])
    elif kind == "delete":
        del parent[path[-1]]
    elif kind == "duplicate" and isinstance(report.get("cases"), list) and report["cases"]:
        report["cases"].append(rng.choice(report["cases"]))
    elif kind == "swap" and isinstance(report.get("cases"), list) and len(report["cases"]) > 1:
        report["cases"][0], report["cases"][1] = report["cases"][1], report["cases"][0]["id"]
    text = json.dumps(report)  # NaN/Infinity as Python writes them: the readers must refuse them
    if kind == "truncate":
        text = text[:rng.randrange(len(text))]
    elif kind == "garble":
        at = rng.randrange(len(text))
        text = text[:at] + rng.choice(["\x00", "}", "\"", "\udcff", "ÿ", ","]) + text[at + 1:]
    return text


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = aiotbench_main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogateescape") if "\udcff" in text else text.encode("utf-8"))
    return path


def test_fuzzed_reports_never_crash_the_tools(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rng = random.Random(FUZZ_SEED)
    base, new = _good_pair(tmp_path)
    outcomes = {0: 0, 1: 0, 2: 0}
    for round_ in range(FUZZ_ROUNDS):
        texts = [json.dumps(base), json.dumps(new)]
        for side in rng.sample([0, 1], rng.choice([1, 2])):
            texts[side] = _mutate([base, new][side], rng)
        a, b = _write(tmp_path / "base.json", texts[0]), _write(tmp_path / "new.json", texts[1])
        commands = [("compare", a, b, "--fail-on", "top1:-0.5pt", "--fail-on", "p90:+10%", "--fail-on", "vips:-5%"),
                    ("rank", a, b, "--allow-mismatch")]
        if round_ % 8 == 0:
            commands.append(("report", a, b, "-o", tmp_path / "out.html", "--fail-on", "p90:+10%"))
        for command in commands:
            try:
                code, out, err = _run(capsys, *command)
            except Exception as exc:  # an internal error: show what reproduces it
                pytest.fail(f"round {round_}: {command[0]} raised {type(exc).__name__}: {exc}\n"
                            f"BASE: {texts[0][:3000]}\nNEW: {texts[1][:3000]}")
            assert code in (0, 1, 2), (round_, command[0], code, err)
            outcomes[code] += 1
            if code == 2:
                assert err.startswith(f"aiotbench {command[0]}: error: ") and err.count("\n") == 1, (round_, err)
            assert "Traceback" not in out + err
    assert outcomes[2] > FUZZ_ROUNDS // 2 and outcomes[0] + outcomes[1] > 0  # the fuzz reached both paths


@pytest.mark.parametrize("where, value, spelled", [("top1", float("nan"), "NaN"),
                                                   ("vips", float("inf"), "Infinity")])
def test_nan_in_a_report_is_named_with_case_and_key(tmp_path, where, value, spelled):
    report = make_report([make_case("a-tflite-int8"), make_case("b-onnx-fp32")])
    report["cases"][1][where] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(report))  # Python writes NaN/Infinity unless told not to
    good = write_json(tmp_path / "good.json", make_report([make_case("a-tflite-int8"), make_case("b-onnx-fp32")]))
    result = run_cli("compare", good, bad)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"case 'b-onnx-fp32': cases[1].{where}: {spelled} is not allowed (expected number or null)" in result.stderr


def test_nested_nan_names_the_case_and_key(tmp_path):
    report = make_report([make_case("a-tflite-int8")])
    report["cases"][0]["latency_ms"]["p90"] = float("nan")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(report))
    result = run_cli("rank", bad, bad)
    assert result.returncode == 2
    assert "case 'a-tflite-int8': cases[0].latency_ms.p90: NaN is not allowed" in result.stderr


@pytest.mark.parametrize("value", [0.0, -2.0, 1e308])
def test_impossible_latency_is_refused_with_case_and_key(tmp_path, value):
    report = make_report([make_case("a-tflite-int8", images=20)])
    report["cases"][0]["per_image"]["latency_ms"][7] = value
    bad = write_json(tmp_path / "bad.json", report)
    result = run_cli("compare", bad, bad)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"case 'a-tflite-int8': cases[0].per_image.latency_ms[7]: {value} ms is not a latency" in result.stderr


def test_report_output_that_is_a_directory_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_json(tmp_path / "run.json", make_report([make_case("a-tflite-int8")]))
    (tmp_path / "outdir").mkdir()
    result = run_cli("report", run, "-o", tmp_path / "outdir")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert "is a directory; give a file name, e.g." in result.stderr and "Traceback" not in result.stderr


def test_report_output_that_cannot_be_written_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_json(tmp_path / "run.json", make_report([make_case("a-tflite-int8")]))
    (tmp_path / "file").write_text("x")
    result = run_cli("report", run, "-o", tmp_path / "file" / "report.html")  # parent is a file
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("aiotbench report: error: ") and "Traceback" not in result.stderr


def test_report_output_in_a_folder_that_cannot_hold_files_names_the_output_before_rendering(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_json(tmp_path / "run.json", make_report([make_case("a-tflite-int8")]))
    result = run_cli("report", run, "-o", "/proc/aiotbench-report.html")  # os.access says yes to root here
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "error: -o /proc/aiotbench-report.html: cannot write in /proc" in result.stderr


@pytest.mark.parametrize("command", ["compare", "rank", "report"])
def test_a_report_saved_with_a_byte_order_mark_loads_in_every_tool(tmp_path, command):
    if command == "report":
        pytest.importorskip("matplotlib")
    report = make_report([make_case("a-tflite-int8"), make_case("b-onnx-fp32")])
    plain = write_json(tmp_path / "plain.json", report)
    bom = tmp_path / "bom.json"
    bom.write_bytes("\ufeff".encode() + plain.read_bytes())
    args = {"compare": [plain, bom], "rank": [plain, bom], "report": [bom, "-o", tmp_path / "r.html"]}[command]
    result = run_cli(command, *args)
    assert result.returncode == 0 and "error" not in result.stderr, result.stderr


@pytest.mark.parametrize("limits, unchecked", [(["top1:-1pt"], "top1:-1pt"),
                                               (["top5:-1pt", "p90:+10%"], "top5:-1pt")])
def test_a_limit_that_no_case_could_be_held_to_is_no_pass(tmp_path, limits, unchecked):
    """Synthetic runs have no accuracy: an accuracy limit over them checked nothing, so "OK" would be a lie."""
    synthetic = make_report([make_case("a-tflite-int8", images=30, top1=None, top5=None),
                             make_case("b-onnx-fp32", images=30, top1=None, top5=None)])
    path = write_json(tmp_path / "synthetic.json", synthetic)
    result = run_cli("compare", path, path, *[f"--fail-on={limit}" for limit in limits])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stdout + result.stderr
    assert f"--fail-on {unchecked} checked nothing: no compared case has that metric in both runs" in result.stderr


def _zoo_build(tmp_path, model: Path):
    return run_cli("zoo", "build", "--from-torchscript", model, "--input-size", "224", "--num-classes", "1000",
                   "--name", "mine", "--mean", "0.5", "--std", "0.5", "--out", tmp_path / "zoo")


@pytest.mark.parametrize("args, message", [
    (["--input-size", "0"], "--input-size 0: expected an integer in [1, 4096]"),
    (["--num-classes", "0"], "--num-classes 0: expected an integer >= 1"),
    (["--std", "0"], "--std 0,0,0: expected 3 numbers > 0, one per channel"),
    (["--name", "my model"], "--name my model: expected a name without spaces or '@'"),
    (["--reference-top1", "76"], "--reference-top1 76.0: expected a number in [0, 1]"),
    (["--timeout", "-1"], "--timeout -1.0: expected seconds > 0"),
    (["--calibration-count", "0"], "--calibration-count 0: expected an integer >= 1"),
    (["--out", "/proc/zoo"], "--out /proc/zoo: cannot write in /proc"),
    (["--out", "FILE"], "--out FILE: not a folder"),
])
def test_zoo_build_refuses_a_bad_value_before_building_anything(tmp_path, args, message):
    """The values that end up in a catalog entry are checked with the catalog's own schema, up front."""
    model = tmp_path / "m.pt"
    with zipfile.ZipFile(model, "w") as z:  # passes the TorchScript sniff; nothing may get as far as loading it
        z.writestr("m/code/__torch__.py", "")
    (tmp_path / "FILE").write_text("x")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    message = message.replace("FILE", str(tmp_path / "FILE"))
    defaults = {"--input-size": "128", "--num-classes": "1001", "--name": "m", "--mean": "127.5", "--std": "127.5",
                "--out": str(tmp_path / "zoo")}
    for flag, value in defaults.items():
        if flag not in args:
            args += [flag, value]
    result = run_cli("zoo", "build", "--from-torchscript", model, *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stdout + result.stderr
    assert f"aiotbench zoo build: {message}" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "zoo").exists()


def test_zoo_build_from_a_non_torchscript_file_names_it(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a model")
    checkpoint = tmp_path / "weights.pt"  # what torch.save(model.state_dict()) writes: a zip without code/
    with zipfile.ZipFile(checkpoint, "w") as z:
        z.writestr("weights/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("weights/version", "3\n")
    for path, why in ((garbage, "not a zip archive"), (checkpoint, "a torch.save checkpoint or state_dict has no code")):
        result = _zoo_build(tmp_path, path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert f"--from-torchscript {path}: not a TorchScript file ({why})" in result.stderr
        assert "manifest" not in result.stdout + result.stderr
        assert not (tmp_path / "zoo" / "manifest.json").exists()
