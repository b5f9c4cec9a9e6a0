"""Issue 22, the zoo: a build never writes outside ``--out``, never builds into the current folder or nothing at all,
stops with one line on a foreign or corrupt manifest, says which flag a file needs, never hangs on a crawling mirror,
leaves no half-written file or orphaned exporter behind after Ctrl-C/SIGTERM, and an artifact whose health check
fails (NaN answers, the wrong number of classes) is a failed artifact: non-zero exit, nothing marked good."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_aiotbench.inputs import manifest as mf
from pytest_aiotbench.zoo import weights as wt
from tests.helpers.shared import REPO
from tests.helpers.zoo import needs_zoo, zoo_cli

pytestmark = pytest.mark.zoo

SHARED_TS = Path(os.environ.get("AIOTBENCH_SHARED", REPO.parent / "shared")) / "models" / "squeezenet" / \
    "squeezenet1_0_dc.pt"


def _one_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("content", ["{not json", json.dumps({"some": "other tool"}),
                                     json.dumps({"files": {}, "schema": "someone-else/3"}),
                                     json.dumps({"files": {"a": 1}, "models": {}}),
                                     json.dumps({"files": {}, "models": []})])
def test_build_into_a_folder_with_a_foreign_or_corrupt_manifest_is_one_line(tmp_path, content):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(content)
    r = zoo_cli("build", "--out", str(out), "--weights", "random", "--models", "squeezenet", "--variants", "onnx")
    assert r.returncode == 2
    line = _one_line(r)
    assert line.startswith(f"aiotbench zoo build: {out / 'manifest.json'}: ") and "manifest" in line
    assert (out / "manifest.json").read_text() == content and sorted(p.name for p in out.iterdir()) == [
        "manifest.json"]


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", ".hidden", "..", "x/../../y"])
def test_model_name_must_be_plain(tmp_path, name):
    ts = tmp_path / "m.pt"
    import zipfile

    with zipfile.ZipFile(ts, "w") as z:  # passes the TorchScript sniff; nothing may get as far as loading it
        z.writestr("m/code/__torch__.py", "")
    out = tmp_path / "deep" / "out"
    r = zoo_cli("build", "--out", str(out), "--from-torchscript", str(ts), "--name", name, "--input-size", "32",
                "--mean", "0", "--std", "1")
    assert r.returncode == 2
    assert _one_line(r).startswith(f"aiotbench zoo build: --name {name}: expected a plain name")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("args, message", [
    (("--out", ""), "--out '': expected a folder"),
    (("--variants", ""), "--variants: empty list"),
    (("--variants", " , "), "--variants: empty list"),
    (("--models", ""), "--models: empty list"),
    (("--num-classes", "10"), "--num-classes only apply with --from-torchscript or --weights FILE.pth"),
])
def test_empty_and_stray_values_are_refused(tmp_path, args, message):
    cwd = tmp_path / "cwd"  # where an empty --out would build (never the checkout)
    cwd.mkdir()
    full = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    env = {**os.environ, "AIOTBENCH_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
    r = subprocess.run([sys.executable, "-m", "pytest_aiotbench", "zoo", "build", "--weights", "random", "--models",
                        "squeezenet", "--variants", "onnx", *full, *args], capture_output=True, text=True, env=env,
                       cwd=str(cwd), timeout=300)
    assert r.returncode == 2 and message in _one_line(r), r.stderr
    assert list(cwd.iterdir()) == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["verify", "weights"])
def test_empty_out_for_the_readers(command):
    r = zoo_cli(command, "--out", "")
    assert r.returncode == 2 and "--out '': expected a zoo folder" in _one_line(r)


def test_torchscript_given_to_weights_suggests_from_torchscript(tmp_path):
    if not SHARED_TS.is_file():
        pytest.skip(f"shared TorchScript not found: {SHARED_TS}")
    r = zoo_cli("build", "--out", str(tmp_path / "out"), "--models", "squeezenet", "--weights", str(SHARED_TS))
    assert r.returncode == 2
    assert _one_line(r) == (f"aiotbench zoo build: --weights {SHARED_TS} is a TorchScript model, not a state_dict: "
                            f"build it with --from-torchscript {SHARED_TS} --name NAME --input-size N --mean M "
                            f"--std S")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ a crawling mirror

class Trickle:
    """A mirror that sends the headers of a large file, then one byte every ``every`` seconds."""

    def __init__(self, every: float) -> None:
        self.requests = 0
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                trickle.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(10_000_000))
                self.end_headers()
                try:
                    for _ in range(200):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(every)
                except OSError:  # the client gave up
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.slow
def test_a_crawling_mirror_is_abandoned_with_progress_never_hangs(tmp_path, capsys):
    server = Trickle(every=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(wt.FetchError) as err:
            wt.fetch(f"{server.url}/tiny-0123abcd.pth", tmp_path / "tiny-0123abcd.pth", attempts=2, backoff=0.0,
                     min_rate=1000, window=1.5)
        took = time.monotonic() - started
    finally:
        server.close()
    assert took < 10, took
    assert "too slow:" in str(err.value) and "gave up after 2 attempts" in str(err.value)
    assert server.requests == 2
    err_text = capsys.readouterr().err
    assert "too slow" in err_text  # said while retrying


def test_heartbeat_while_a_download_crawls(monkeypatch, capsys):
    import io

    monkeypatch.setattr(wt, "HEARTBEAT", 0.05)
    stream = io.StringIO()
    p = wt._Progress("downloading x", 10_000_000, 0, stream=stream)
    for _ in range(3):
        time.sleep(0.06)
        p.update(1)
    assert stream.getvalue().count("downloading x") == 3  # no 10 % step, still a line each heartbeat


# ------------------------------------------------------------------------------------------------ health and signals

def _torchscript(path: Path, kind: str) -> Path:
    """A tiny TorchScript classifier: "nan" answers NaN, "1001" answers 1001 scores, "ok" 1000 finite scores."""
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self, classes: int, nan: bool):
            super().__init__()
            self.fc = torch.nn.Linear(3, classes)
            self.nan = nan

        def forward(self, x):
            y = self.fc(x.mean(dim=(2, 3)))
            return y * float("nan") if self.nan else y

    torch.manual_seed(0)
    net = Tiny(1001 if kind == "1001" else 1000, kind == "nan").eval()
    torch.jit.script(net).save(str(path))
    return path


def _ts_build(tmp_path: Path, ts: Path, *extra: str) -> subprocess.CompletedProcess:
    return zoo_cli("build", "--out", str(tmp_path / "zoo"), "--from-torchscript", str(ts), "--name", "tiny",
                   "--input-size", "32", "--mean", "0", "--std", "1", "--variants", "onnx", *extra, timeout=600)


@needs_zoo
@pytest.mark.slow
@pytest.mark.parametrize("kind, message", [
    ("nan", "the model's output is not finite (NaN/Inf) on 8 of 8 probe images"),
    ("1001", "the model answers 8x1001 for 8 probe images, expected 8x1000 (num_classes = 1000): pass "
             "--num-classes 1001"),
])
def test_unhealthy_source_fails_the_build_and_marks_nothing_good(tmp_path, kind, message):
    ts = _torchscript(tmp_path / f"{kind}.pt", kind)
    r = _ts_build(tmp_path, ts)
    assert r.returncode == 1, r.stderr[-3000:]
    assert message in r.stderr and "Traceback" not in r.stderr
    data = mf.read(tmp_path / "zoo" / "manifest.json")
    assert data["files"] == {} and "tiny" not in data.get("models", {})
    assert not (tmp_path / "zoo" / "catalog.toml").exists()
    assert not list((tmp_path / "zoo").glob(".sources/*"))


def _exporters_running(tag: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "pytest_aiotbench.zoo.exporters" in cmd and tag in cmd:
                pids.append(int(proc.name))
    return pids


@needs_zoo
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_kills_the_exporter_and_leaves_nothing_half_written(tmp_path, sig):
    ts = _torchscript(tmp_path / "ok.pt", "ok")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "zoo"
    env = {**os.environ, "AIOTBENCH_OFFLINE": "1", "TMPDIR": str(tmp),
           "PYTHONPATH": str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
    proc = subprocess.Popen([sys.executable, "-m", "pytest_aiotbench", "zoo", "build", "--out", str(out),
                             "--from-torchscript", str(ts), "--name", "tiny", "--input-size", "32", "--mean", "0",
                             "--std", "1", "--variants", "onnx,fp32"], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(REPO))
    seen = []
    try:
        for line in proc.stderr:  # wait until an artifact's exporter runs
            seen.append(line)
            if "exporting" in line:
                break
        deadline = time.monotonic() + 60
        while not _exporters_running(str(tmp)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _exporters_running(str(tmp)), "".join(seen)
        time.sleep(0.5)
        proc.send_signal(sig)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, "".join(seen) + rest
    assert "aiotbench: interrupted" in rest and "Traceback" not in rest
    time.sleep(0.2)
    assert _exporters_running(str(tmp)) == []  # the exporter died with the build
    assert list(tmp.glob("aiotbench-zoo-*")) == []  # its temp folder is gone (torch's own caches may stay)
    assert list(out.glob("*/.*.partial")) == []
    # a half-written file from an older, harder kill is removed by the next build
    stale = out / "tiny" / ".tiny.onnx.partial"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")
    r = zoo_cli("build", "--out", str(out), "--from-torchscript", str(ts), "--name", "tiny", "--input-size", "32",
                "--mean", "0", "--std", "1", "--variants", "onnx", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not stale.exists() and f"removed {stale}" in r.stderr


@needs_zoo
@pytest.mark.slow
def test_num_classes_is_honoured_with_a_state_dict(tmp_path):
    """--num-classes with --weights FILE.pth is the head the weights are loaded into (no longer ignored): the
    shared 1000-class SqueezeNet does not fit 10 classes, and the build says so, naming the flag."""
    pth = SHARED_TS.with_suffix(".pth")
    if not pth.is_file():
        pytest.skip(f"shared state_dict not found: {pth}")
    r = zoo_cli("build", "--out", str(tmp_path / "zoo"), "--models", "squeezenet", "--weights", str(pth), "--arch",
                "squeezenet1_0", "--num-classes", "10", "--input-size", "64", "--variants", "onnx", timeout=600)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "does not fit torchvision.models.squeezenet1_0" in r.stderr and "check --num-classes" in r.stderr
    assert mf.read(tmp_path / "zoo" / "manifest.json")["files"] == {}
