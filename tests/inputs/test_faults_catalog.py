"""Issue 8, the run side: every bad input is one clear line (exit 4 before anything runs, or a failed/skipped case
with the reason), never a traceback; a wrong measurement fails; what was measured is kept.

Configure-time faults run in-process (pytester): the plugin exits before any case, so they cost milliseconds.
Faults that need a real case run ``pytest --aiotbench`` in a subprocess on a 20-image dataset built in tmp from
the shared images (symlinks), with the shared small MobileNet v1 0.25 models."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aiotbench.inputs import catalog, dataset
from pytest_aiotbench.report import read as reports
from pytest_aiotbench.report.storage import ReportLock
from tests.helpers.catalogs import catalog_text, dedent, float_entry, tflite_entry, write_catalog
from tests.helpers.copies import labeled_dataset
from tests.helpers.reports import gate_plugin_args
from tests.helpers.shared import TFLITE_DIR, TORCH_DIR

SMALL_TFLITE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
SMALL_PT = TORCH_DIR / "mobilenet_v1_0.25_128.pt"
SMALL_ONNX = TORCH_DIR / "mobilenet_v1_0.25_128.onnx"
TFLITE_ID = "mobilenet_v1_025-tflite-int8"

pytestmark = pytest.mark.real


def small_tflite(**extra) -> dict:
    return {**tflite_entry("mobilenet_v1_025", SMALL_TFLITE, 128), **extra}


def one_error_line(text: str) -> str:
    """The usage error pytest printed: exactly one ``ERROR:`` line and nothing that looks like a traceback."""
    assert "Traceback" not in text and "INTERNALERROR" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, text[-3000:]
    return errors[0]


# ------------------------------------------------------------------------- configure time: exit 4, one line

def _catalog_text(**overrides) -> str:
    entry = {**small_tflite(), **overrides}
    return catalog_text([{k: v for k, v in entry.items() if v is not None}])


def _setup(kind: str, root: Path) -> tuple[list[str], str]:
    """Build the fault ``kind`` under ``root``: (extra pytest args, the text the error line must contain)."""
    data = labeled_dataset(root / "data")
    cat = root / "c.toml"
    args = [f"--aiotbench-catalog={cat}", f"--aiotbench-dataset={data}"]
    cat.write_text(_catalog_text())
    if kind == "min_top1 text":
        cat.write_text(_catalog_text(min_top1="high"))
        return args, f"{cat}: model 'mobilenet_v1_025': min_top1 = \"high\": expected a number in [0, 1]"
    if kind == "variant value":
        cat.write_text(dedent(f"""
            [[model]]
            name = "x"
            input_size = 128
              [[model.variant]]
              framework = "tflite"
              quant = "int8"
              file = "{SMALL_TFLITE}"
              [[model.variant]]
              framework = "onnxruntime"
              quant = "fp32"
              file = "{SMALL_ONNX}"
              min_top1 = "high"
        """))
        return args, f"{cat}: model 'x', variant 2: min_top1 = \"high\": expected a number in [0, 1]"
    if kind == "std zero":
        cat.write_text(_catalog_text(std=[0, 127.5, 127.5]))
        return args, "std = [0, 127.5, 127.5]: expected 3 numbers > 0, one per channel"
    if kind == "input_size text":
        cat.write_text(_catalog_text(input_size="128"))
        return args, "input_size = \"128\": expected an integer in [1, 4096]"
    if kind == "resize below input_size":
        cat.write_text(_catalog_text(resize=100))
        return args, "resize = 100: expected 0 (straight resize) or >= input_size (128)"
    if kind == "input_size huge":
        cat.write_text(_catalog_text(input_size=22400, resize=0))
        return args, "input_size = 22400: expected an integer in [1, 4096]"
    if kind == "mean -inf":
        cat.write_text(_catalog_text().replace("mean = [127.5, 127.5, 127.5]", "mean = [-inf, 0, 0]"))
        return args, "mean = [-inf, 0, 0]: expected 3 numbers, one per channel"
    if kind == "background text":
        cat.write_text(_catalog_text(background="yes"))
        return args, "background = \"yes\": expected true or false"
    if kind == "catalog missing":
        return [f"--aiotbench-catalog={root / 'nope.toml'}"], f"catalog not found: {root / 'nope.toml'}"
    if kind == "dataset is a file":
        return [args[0], f"--aiotbench-dataset={cat}"], f"{cat}: not a folder"
    if kind == "model is a string":
        cat.write_text('model = "oops"\n')
        return args, f"{cat}: model = \"oops\": expected [[model]] tables"
    if kind == "unknown framework":
        cat.write_text(_catalog_text(framework="caffe2"))
        return args, "unknown framework 'caffe2'; registered: "
    if kind == "unknown option key":
        cat.write_text(_catalog_text(options={"delegat": "none"}))
        return args, ('options = { delegat = "none" }: unknown key(s) delegat for tflite (it reads: delegate)')
    if kind == "model path is a directory":
        (root / "models.d").mkdir()
        cat.write_text(_catalog_text(file="models.d"))
        return args, f"file = \"models.d\": {root / 'models.d'} is a directory, expected a model file"
    if kind == "unset variable":
        cat.write_text(_catalog_text(file="${AIOTBENCH_TEST_UNSET_VAR}/m.tflite"))
        return args, "environment variable AIOTBENCH_TEST_UNSET_VAR is not set"
    if kind == "malformed variable":
        cat.write_text(_catalog_text(file="${AIOTBENCH_SHARED/models/m.tflite"))
        return args, 'file = "${AIOTBENCH_SHARED/models/m.tflite": malformed ${...}: expected ${VAR} or ${VAR:-default}'
    if kind == "unset variable in baseline":
        cat.write_text(_catalog_text(baseline="${AIOTBENCH_TEST_UNSET_VAR}/old.tflite"))
        return args, 'baseline = "${AIOTBENCH_TEST_UNSET_VAR}/old.tflite": environment variable AIOTBENCH_TEST_UNSET_VAR'
    if kind == "empty catalog":
        cat.write_text("# nothing yet\n")
        return args, f"{cat}: no [[model]] entries"
    if kind == "no cases at all":
        return [a for a in args if "catalog" not in a], "no benchmark cases"
    if kind == "not TOML":
        cat.write_text("[[model]\nname = \n")
        return args, f"{cat}: not valid TOML"
    if kind == "labels.csv header only":
        (data / "labels.csv").write_text("file,synset,class_index\n")
        return args, f"{data / 'labels.csv'}: lists no images"
    if kind == "labels.csv is a folder":
        (data / "labels.csv").unlink()
        (data / "labels.csv").mkdir()
        return args, f"{data / 'labels.csv'}: cannot read"
    if kind == "labels.csv short row":  # after a blank line: the line number is the file's, not the row count's
        rows = (data / "labels.csv").read_text().splitlines()
        (data / "labels.csv").write_text("\n".join(rows[:3] + ["", rows[3].split(",")[0]] + rows[4:]) + "\n")
        return args, f"{data / 'labels.csv'} line 5: 1 column(s), expected 3 (file,synset,class_index)"
    if kind in ("text file as image", "PPM header only"):
        first = (data / "labels.csv").read_text().splitlines()[1].split(",")[0]
        (data / first).unlink()
        (data / first).write_bytes(b"hello" if kind == "text file as image" else b"P6\n")
        return args, f"{data}: 1 of 20 images cannot be used: {first} (not an image Pillow can decode)"
    if kind in ("missing image", "zero-byte image", "duplicate row", "escaping row", "label text"):
        rows = (data / "labels.csv").read_text().splitlines()
        first = rows[1].split(",")[0]
        if kind == "missing image":
            (data / first).unlink()
            return args, f"{data}: 1 of 20 images cannot be used: {first} (missing)"
        if kind == "zero-byte image":
            (data / first).unlink()
            (data / first).write_bytes(b"")
            return args, f"{data}: 1 of 20 images cannot be used: {first} (empty file)"
        if kind == "duplicate row":
            rows.append(rows[1])
            (data / "labels.csv").write_text("\n".join(rows) + "\n")
            return args, f"line 22: '{first}' is listed twice (first on line 2)"
        if kind == "escaping row":
            rows.append("../../etc/passwd,n01440764,0")
            (data / "labels.csv").write_text("\n".join(rows) + "\n")
            return args, "line 22: '../../etc/passwd' is outside the dataset folder"
        rows.append(f"{first},n01440764,zero")
        (data / "labels.csv").write_text("\n".join(rows) + "\n")
        return args, "line 22: class_index 'zero' is not an integer"
    if kind == "json is a directory":
        (root / "out").mkdir()
        return args + [f"--aiotbench-json={root / 'out'}"], f"{root / 'out'}: is a directory"
    if kind == "html is a directory":
        (root / "page").mkdir()
        return args + [f"--aiotbench-html={root / 'page'}"], f"--aiotbench-html: {root / 'page'}: is a directory"
    if kind == "json under a file":
        (root / "afile").write_text("x")
        return args + [f"--aiotbench-json={root / 'afile' / 'r.json'}"], f"{root / 'afile'} is not a folder"
    option_faults = {
        "threads 0": (["--aiotbench-threads=0"], "--aiotbench-threads 0: expected an integer in [1, 256]"),
        "threads -3": (["--aiotbench-threads=-3"], "--aiotbench-threads -3: expected an integer in [1, 256]"),
        "threads text": (["--aiotbench-threads=two"], "--aiotbench-threads two: expected an integer in [1, 256]"),
        "threads huge": (["--aiotbench-threads=100000"], "--aiotbench-threads 100000: expected an integer in [1, 256]"),
        "repeat 0": (["--aiotbench-repeat=0"], "--aiotbench-repeat 0: expected an integer in [1, 1000]"),
        "io-timeout -1": (["--aiotbench-device-io-timeout=-1"], "--aiotbench-device-io-timeout -1: expected a number in (0, 86400]"),
        "json empty": (["--aiotbench-json="], "--aiotbench-json '': expected a non-empty value"),
        "unknown device scheme": (["--aiotbench-device=bogus:xyz"], "expected host, adb:SERIAL or ssh://user@host[:port]"),
        "warmup -1": (["--aiotbench-warmup=-1"], "--aiotbench-warmup -1: expected an integer in [0, 10000]"),
        "min-top1 70": (["--aiotbench-min-top1=70"], "--aiotbench-min-top1 70: expected a number in [0, 1]"),
        "min-top1 nan": (["--aiotbench-min-top1=nan"], "--aiotbench-min-top1 nan: expected a number in [0, 1]"),
        "images 0": (["--aiotbench-images=0"], "--aiotbench-images 0: expected an integer in [1, 100000]"),
        "images huge": (["--aiotbench-images=99999999"], "--aiotbench-images 99999999: expected an integer in [1, 100000]"),
        "models folder missing": (["--aiotbench-models=nope"], f"--aiotbench-models {root / 'nope'}: folder not found"),
        "deadline 0": (["--aiotbench-device-deadline=0"], "--aiotbench-device-deadline 0: expected a number in (0, 604800]"),
    }
    if kind in option_faults:
        extra, message = option_faults[kind]
        return args + extra, message
    if kind == "ini threads 0":
        (root / "pytest.ini").write_text("[pytest]\naiotbench_threads = 0\n")
        return args, "aiotbench_threads (ini) 0: expected an integer in [1, 256]"
    if kind == "ini flag not a boolean":
        (root / "pytest.ini").write_text("[pytest]\naiotbench_strict = maybe\n")
        return args, "aiotbench_strict (ini): invalid truth value 'maybe': expected true or false"
    if kind == "json in an uncreatable folder":  # os.access says yes to root here; creating a file does not
        return args + ["--aiotbench-json=/proc/aiotbench.json"], "/proc/aiotbench.json: cannot write in /proc"
    if kind == "html in an uncreatable folder":
        return args + ["--aiotbench-html=/proc/aiotbench.html"], \
            "--aiotbench-html: /proc/aiotbench.html: cannot write in /proc"
    raise AssertionError(kind)


CONFIGURE_FAULTS = [
    "min_top1 text", "variant value", "std zero", "input_size text", "resize below input_size", "input_size huge",
    "mean -inf", "background text",
    "catalog missing", "dataset is a file", "model is a string", "unknown framework", "unknown option key",
    "model path is a directory", "unset variable", "malformed variable", "unset variable in baseline",
    "empty catalog", "no cases at all", "not TOML",
    "missing image", "zero-byte image", "text file as image", "PPM header only", "duplicate row", "escaping row",
    "label text",
    "labels.csv header only", "labels.csv is a folder", "labels.csv short row",
    "json is a directory", "json under a file", "html is a directory", "json in an uncreatable folder",
    "html in an uncreatable folder", "json empty",
    "threads 0", "threads -3", "threads text", "threads huge", "warmup -1", "min-top1 70", "min-top1 nan",
    "images 0", "images huge", "models folder missing", "repeat 0", "deadline 0", "io-timeout -1", "unknown device scheme", "ini threads 0",
    "ini flag not a boolean",
]


@pytest.mark.parametrize("kind", CONFIGURE_FAULTS)
def test_bad_input_is_a_usage_error_with_one_line_before_anything_runs(pytester, shared, kind):
    args, message = _setup(kind, pytester.path)
    result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                          *gate_plugin_args(), "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:] + result.stderr.str()
    line = one_error_line(result.stderr.str() + result.stdout.str())
    assert message in line, line


def test_labels_csv_with_a_byte_order_mark_is_accepted(tmp_path, shared):
    data = labeled_dataset(tmp_path / "data", 3)
    text = (data / "labels.csv").read_text()
    (data / "labels.csv").write_bytes("\ufeff".encode() + text.encode())
    ds = dataset.open_dataset(data)
    assert ds.files == [line.split(",")[0] for line in text.splitlines()[1:]] and len(ds.labels) == 3


def test_a_catalog_with_a_byte_order_mark_is_accepted(tmp_path):
    text = _catalog_text()
    (tmp_path / "plain.toml").write_text(text)
    (tmp_path / "bom.toml").write_bytes("\ufeff".encode() + text.encode())
    (bom,), (plain,) = catalog.load(tmp_path / "bom.toml"), catalog.load(tmp_path / "plain.toml")
    assert (bom.id, bom.file, bom.preprocess) == (plain.id, plain.file, plain.preprocess)


def test_a_cache_path_that_is_a_file_runs_without_cache_saying_why(tmp_path):
    from pytest_aiotbench.inputs.preprocess import PixelCache

    (tmp_path / "cache").write_text("not a folder")
    cache = PixelCache(tmp_path / "cache")
    cache.probe()
    assert cache.root is None and cache.note == f"pixel cache {tmp_path / 'cache'} not used: it is a file, not a folder"


def test_a_second_run_on_the_same_report_path_exits_4_naming_the_first(pytester, shared, tmp_path):
    args, _ = _setup("threads 0", pytester.path)
    report = tmp_path / "run.json"
    lock = ReportLock(report)
    lock.acquire()  # the "first run" is this process
    try:
        result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                              "--collect-only", f"--aiotbench-json={report}",
                                              *[a for a in args if "threads" not in a])
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        line = one_error_line(result.stderr.str())
        assert f"{report}: another aiotbench run (PID {os.getpid()}) is writing this report" in line
    finally:
        lock.release()
    again = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                         "--collect-only", f"--aiotbench-json={report}",
                                         *[a for a in args if "threads" not in a])
    assert again.ret == pytest.ExitCode.OK and not report.with_name(".run.json.lock").exists()


def test_a_tflite_delegate_that_would_not_be_used_is_refused_naming_the_file(shared):
    from pytest_aiotbench.frameworks import ModelLoadError, PrepareOptions
    from pytest_aiotbench.frameworks.tflite import TFLite

    with pytest.raises(ModelLoadError, match=r"quant.tflite: options.delegate = 'gpu': the tflite framework runs"):
        TFLite().prepare(str(SMALL_TFLITE), PrepareOptions(extra={"delegate": "gpu"}))


def test_a_report_the_plugins_own_tools_would_reject_is_never_a_green_run(pytester, shared):
    args, _ = _setup("threads 0", pytester.path)
    pytester.makeconftest("""
        def pytest_aiotbench_report(config, report):
            report["score"]["cases"] = "many"  # a hook (or a harness bug) breaking the schema
    """)
    result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                          "-k", "no_such_case", f"--aiotbench-json={pytester.path / 'r.json'}",
                                          *[a for a in args if "threads" not in a])  # --collect-only writes none
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "aiotbench: invalid host report: score.cases: expected integer, got string" in result.stdout.str()


@pytest.mark.slow
def test_ini_paths_are_relative_to_the_ini_file_and_command_line_paths_to_the_current_folder(pytester, shared):
    sub = pytester.mkdir("conf")
    (sub / "c.toml").write_text(_catalog_text())
    (sub / "pytest.ini").write_text("[pytest]\naiotbench_catalog = c.toml\naiotbench_json = out/run.json\n")
    result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                          "-c", str(sub / "pytest.ini"), "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()[-2000:] + result.stderr.str()
    assert "test_aiotbench[mobilenet_v1_025-tflite-int8]" in result.stdout.str()
    assert not (sub / "out").exists()  # --collect-only writes no report (tests/report/test_lifecycle_reports.py)
    selected_none = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                                 "-c", str(sub / "pytest.ini"), "-k", "no_such_case", "-q")
    assert selected_none.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert json.loads((sub / "out" / "run.json").read_text())["cases"] == []
    (pytester.path / "here.toml").write_text(_catalog_text(name="here"))
    result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                          "-c", str(sub / "pytest.ini"), "--aiotbench-catalog=here.toml",
                                          "--collect-only", "-q")
    assert "test_aiotbench[here-tflite-int8]" in result.stdout.str()


# ----------------------------------------------------------------------------- --device is never taken

def test_a_conftest_that_owns_device_runs_unchanged_with_the_plugin_installed(pytester):
    pytester.makeconftest("""
        def pytest_addoption(parser):
            parser.addoption("--device", default="cpu", help="the project's own torch device")
    """)
    pytester.makepyfile(test_own="""
        def test_device(request):
            assert request.config.getoption("device") == "cuda:1"
            assert request.config.getoption("aiotbench_device") is None
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--device=cuda:1")
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_own="""
        def test_device(request):
            assert request.config.getoption("device") == "cuda:1"
            assert request.config.getoption("aiotbench_device") == ["host"]
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--aiotbench-device=host", "--device=cuda:1")
    result.assert_outcomes(passed=1)


def test_device_is_offered_where_nobody_owns_it(pytester):
    pytester.makepyfile(test_alias="""
        def test_alias(request):
            assert request.config.getoption("aiotbench_device") == ["adb:SERIAL1", "ssh://pi@board"]
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--device=adb:SERIAL1",
                                          "--aiotbench-device=ssh://pi@board")
    result.assert_outcomes(passed=1)


# ------------------------------------------------------------------------------------------- fuzzing

def _mutations(text: str, rng: random.Random) -> str:
    """One random corruption of a text file: drop/duplicate/swap lines, cut, insert junk, flip characters."""
    lines = text.splitlines()
    op = rng.randrange(7)
    if op == 0 and lines:
        del lines[rng.randrange(len(lines))]
    elif op == 1 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 2 and len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3:
        return text[: rng.randrange(len(text) + 1)]
    elif op == 4:
        junk = rng.choice(['"', "=", "[", "]", ",", "\ufeff", "\x00", "-1", "1e309", "nan", "../", "${X}", " ", "é"])
        i = rng.randrange(len(text) + 1)
        return text[:i] + junk + text[i:]
    elif op == 5 and text:
        i = rng.randrange(len(text))
        return text[:i] + chr(rng.randrange(32, 127)) + text[i + 1:]
    else:
        i = rng.randrange(len(lines) + 1)
        lines.insert(i, rng.choice(["min_top1 = 2", "std = []", "num_classes = 0", "input_size = -5",
                                    "model = 3", "[[model.variant]]", "file = ''", "x,y,z", ",,", "a.jpg,n1,5"]))
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_fuzzed_catalogs_and_labels_never_cause_an_internal_error(tmp_path, shared, monkeypatch, pytester):
    """Seeded, bounded: 300 corrupted catalogs and 300 corrupted labels.csv files each load or raise the
    one-line error of their module, and a sample goes through the plugin without INTERNALERROR."""
    rng = random.Random(8)
    monkeypatch.delenv("X", raising=False)
    good = dedent(f"""
        [[model]]
        name = "m"
        input_size = 128
        mean = [127.5, 127.5, 127.5]
        std = [127.5, 127.5, 127.5]
        num_classes = 1001
        background = true
          [[model.variant]]
          framework = "tflite"
          quant = "int8"
          file = "{SMALL_TFLITE}"
          min_top1 = 0.2
          [[model.variant]]
          framework = "onnxruntime"
          quant = "fp32"
          layout = "NCHW"
          file = "{SMALL_ONNX}"
    """)
    data = labeled_dataset(tmp_path / "data")
    good_labels = (data / "labels.csv").read_text()
    path = tmp_path / "fuzz.toml"
    outcomes = {"loaded": 0, "rejected": 0}
    for _ in range(300):
        text = good
        for _ in range(rng.randrange(1, 4)):
            text = _mutations(text, rng)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            catalog.load(path)
            outcomes["loaded"] += 1
        except catalog.CatalogError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
            outcomes["rejected"] += 1
    for _ in range(300):
        text = good_labels
        for _ in range(rng.randrange(1, 4)):
            text = _mutations(text, rng)
        (data / "labels.csv").write_text(text, encoding="utf-8")
        try:
            ds = dataset.open_dataset(data)
            ds.check_files()
            outcomes["loaded"] += 1
        except dataset.DatasetError as exc:
            assert "\n" not in str(exc) and str(data) in str(exc), str(exc)
            outcomes["rejected"] += 1
    assert outcomes["loaded"] > 20 and outcomes["rejected"] > 100, outcomes  # the fuzzing hit both ways
    (data / "labels.csv").write_text(good_labels)
    for i in range(12):  # a sample through the whole plugin (collection): exit 0 or 4, never an internal error
        text = good
        for _ in range(rng.randrange(1, 4)):
            text = _mutations(text, rng)
        (pytester.path / f"fuzz{i}.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
        result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                              "--collect-only", f"--aiotbench-catalog=fuzz{i}.toml",
                                              f"--aiotbench-dataset={data}")
        out = result.stdout.str() + result.stderr.str()
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.USAGE_ERROR), out[-2000:]
        assert "INTERNALERROR" not in out and "Traceback" not in out, out[-2000:]


# ----------------------------------------------------------------------------- faults found by running

@pytest.fixture
def data20(tmp_path, shared) -> Path:
    return labeled_dataset(tmp_path / "data")


@pytest.mark.slow
def test_wrong_input_size_on_torchscript_fails_naming_file_and_shapes_and_keeps_the_other_case(
        run_aiotbench, tmp_path, data20):
    cat = write_catalog(tmp_path / "c.toml", [
        small_tflite(min_top1=0.0),
        float_entry("mobilenet_v1_025", "pytorch-mobile", SMALL_PT, 224)])
    run = run_aiotbench("--aiotbench-warmup=1", catalogs=[cat], dataset=data20)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    message = ("mobilenet_v1_0.25_128.pt: model output is 4x1001, expected 1x1001 (batch 1 x num_classes = 1001); "
               "check input_size, layout and num_classes in the catalog")
    # Once in the failure section; the short summary repeats it (in full where pytest sees CI=true).
    assert sum(message in line for line in out.splitlines() if not line.startswith("FAILED ")) == 1
    assert "During handling" not in out and "Benchmark fixture was not used" not in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    report = reports.load_report(run.json_path)
    by_id = {c["id"]: c for c in report["cases"]}
    assert by_id[TFLITE_ID]["status"] == "passed" and by_id[TFLITE_ID]["images"] == 20
    torch_case = by_id["mobilenet_v1_025-pytorch-mobile-fp32"]
    assert torch_case["status"] == "failed" and torch_case["reason"] == message and torch_case["top1"] is None


@pytest.mark.slow
def test_damaged_cache_entries_are_rebuilt_and_an_unwritable_cache_is_skipped_once(run_aiotbench, tmp_path,
                                                                                   data20):
    cat = write_catalog(tmp_path / "c.toml", [small_tflite(min_top1=0.0)])
    first = run_aiotbench("--aiotbench-warmup=0", catalogs=[cat], dataset=data20)
    assert first.returncode == 0, first.stdout[-2000:]
    entries = sorted((tmp_path / "pixel-cache").rglob("*.npy"))
    assert len(entries) == 20
    entries[0].write_bytes(b"")  # zero bytes: EOFError in np.load
    entries[1].write_bytes(b"\x93NUMPY garbage")
    import numpy as np

    np.save(entries[2], np.zeros((5, 5, 3), np.uint8))  # a valid array of the wrong shape
    entries[3].unlink()
    entries[3].mkdir()  # a folder in an entry's place: that entry is rebuilt, the rest of the cache still serves
    second = run_aiotbench("--aiotbench-warmup=0", catalogs=[cat], dataset=data20)
    assert second.returncode == 0, second.stdout[-2000:]
    assert "not used" not in second.stdout
    assert second.report["settings"]["cache"]["misses"] == 4 and second.report["settings"]["cache"]["hits"] == 16
    assert second.case(TFLITE_ID)["per_image"] == first.case(TFLITE_ID)["per_image"] | {
        "latency_ms": second.case(TFLITE_ID)["per_image"]["latency_ms"]}
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")
    third = run_aiotbench("--aiotbench-warmup=0", f"--aiotbench-cache={blocked}", catalogs=[cat], dataset=data20)
    assert third.returncode == 0, third.stdout[-2000:]
    assert third.stdout.count(f"pixel cache {blocked} not used") == 1 and "ran without it" in third.stdout
    assert third.case(TFLITE_ID)["top1"] == first.case(TFLITE_ID)["top1"]


@pytest.mark.slow
def test_report_hook_fires_once_and_each_case_is_checkpointed_before_the_next(run_aiotbench, tmp_path, data20):
    (tmp_path / "conftest.py").write_text(dedent("""
        from pytest_aiotbench.report.read import load_report
        calls = []
        import os
        def pytest_aiotbench_case_result(config, result):  # when a case is measured: the ones before are on disk
            path = config.getoption("aiotbench_json")
            on_disk = load_report(path) if os.path.exists(path) else {"cases": []}  # valid at every checkpoint
            print("CHECKPOINT", result["id"], [c["id"] for c in on_disk["cases"]])
        def pytest_aiotbench_report(config, report):
            calls.append(len(report["cases"]))
            report["from_hook"] = True
        def pytest_unconfigure(config):
            print("REPORT-HOOK-CALLS", calls)
    """))
    cat = write_catalog(tmp_path / "c.toml", [
        small_tflite(min_top1=0.0), float_entry("mobilenet_v1_025", "onnxruntime", SMALL_ONNX, 128)])
    run = run_aiotbench("-s", "--aiotbench-warmup=0", catalogs=[cat], dataset=data20)
    assert run.returncode == 0, run.stdout[-2000:]
    onnx_id = "mobilenet_v1_025-onnxruntime-fp32"
    assert f"CHECKPOINT {TFLITE_ID} []" in run.stdout  # each case is written once, with its outcome
    assert f"CHECKPOINT {onnx_id} ['{TFLITE_ID}']" in run.stdout
    assert "REPORT-HOOK-CALLS [2]" in run.stdout
    assert run.report["from_hook"] is True
    reports.load_report(run.json_path)


@pytest.mark.slow
def test_synthetic_run_report_loads_in_the_plugins_own_tools(run_aiotbench, tmp_path, shared):
    cat = write_catalog(tmp_path / "c.toml", [small_tflite(min_top1=0.5)])
    html = tmp_path / "run.html"
    run = run_aiotbench("--aiotbench-images=4", "--aiotbench-warmup=0", f"--aiotbench-html={html}",
                        catalogs=[cat])
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.report["dataset"]["labels"] is None and html.is_file()
    loaded = reports.load_report(run.json_path)
    assert loaded["cases"][0]["top1"] is None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for args in (["compare", run.json_path, run.json_path], ["report", run.json_path, "-o", tmp_path / "r.html"]):
        proc = subprocess.run([sys.executable, "-m", "pytest_aiotbench", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_xdist_keeps_every_frameworks_case(run_aiotbench, tmp_path, data20):
    cat = write_catalog(tmp_path / "c.toml", [
        small_tflite(min_top1=0.0), float_entry("mobilenet_v1_025", "pytorch-mobile", SMALL_PT, 128),
        float_entry("mobilenet_v1_025", "onnxruntime", SMALL_ONNX, 128)])
    run = run_aiotbench("-n", "2", "--aiotbench-warmup=0", catalogs=[cat], dataset=data20)
    assert run.returncode == 0, run.stdout[-3000:]
    cases = {c["id"]: c for c in run.report["cases"]}
    assert set(cases) == {TFLITE_ID, "mobilenet_v1_025-pytorch-mobile-fp32", "mobilenet_v1_025-onnxruntime-fp32"}
    assert all(c["status"] == "passed" and c["top1"] is not None for c in cases.values())
    assert cases["mobilenet_v1_025-pytorch-mobile-fp32"]["runtime"]["version"].startswith("2.")
