"""Pretrained checkpoints fetched for the zoo (issue 11): hash-checked by torchvision's file-name convention,
resumed after a dropped connection, a corrupted file rejected and removed, a mirror replacing the download location,
and the offline switch. Everything is served by a loopback HTTP server on 127.0.0.1; nothing reaches the internet.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_aiotbench.zoo import MODELS
from pytest_aiotbench.zoo import weights as wt
from tests.helpers.zoo import zoo_cli

pytestmark = pytest.mark.zoo


class CheckpointServer:
    """Serves ``files`` (name -> bytes) with Range support. ``drops[name] = k``: the next k requests for it send
    the headers of the whole file, half the body, and hang up (a dropped connection)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drops: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drops.get(name, 0) > 0:
                    server.drops[name] -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "CheckpointServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with CheckpointServer() as s:
        yield s


@pytest.fixture(scope="module")
def checkpoint() -> tuple[str, bytes]:
    """A real (small) state_dict, named the way torchvision names checkpoints: <name>-<sha256 prefix>.pth."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    net(torch.zeros(1, 3, 16, 16))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    data = buf.getvalue()
    return f"tinynet-{hashlib.sha256(data).hexdigest()[:8]}.pth", data


def test_hash_convention_is_torch_hubs():
    torch_hub = pytest.importorskip("torch.hub")
    assert wt.HASH_REGEX.pattern == torch_hub.HASH_REGEX.pattern
    for m in MODELS.values():  # every zoo checkpoint name carries a prefix to check against
        assert len(wt.hash_prefix(m.checkpoint)) >= 8
    with pytest.raises(wt.FetchError, match="no '-<sha256 prefix>.'"):
        wt.hash_prefix("weights.pth")


def test_download_is_verified_and_shows_progress(server, checkpoint, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    name, data = checkpoint
    server.files[name] = data
    dest = wt.fetch(f"{server.url}/{name}", tmp_path / "hub" / "checkpoints" / name)
    err = capsys.readouterr().err
    assert dest.read_bytes() == data and not dest.with_name(name + ".partial").exists()
    assert "[####################] 100% 0.1/0.1 MB" in err and "verified" in err, err  # the progress bar
    state = torch.load(dest, weights_only=True)
    assert set(state) == {"0.weight", "0.bias", "3.weight", "3.bias"}


def test_corrupted_download_is_rejected_and_removed(server, checkpoint, tmp_path):
    name, data = checkpoint
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server.files[name] = bytes(corrupted)
    dest = tmp_path / name
    with pytest.raises(wt.FetchError, match="does not start with .*removed, not used"):
        wt.fetch(f"{server.url}/{name}", dest)
    assert list(tmp_path.iterdir()) == []  # neither the checkpoint nor a partial file is left to be used


def test_dropped_connection_is_resumed(server, checkpoint, tmp_path, capsys):
    name, data = checkpoint
    server.files[name] = data
    server.drops[name] = 2
    dest = wt.fetch(f"{server.url}/{name}", tmp_path / name, backoff=0.01)
    assert dest.read_bytes() == data
    ranges = [r for _, r in server.requests]
    # first try from 0, then two resumes from where each dropped connection stopped
    assert ranges[0] is None and len(ranges) == 3
    assert ranges[1] == f"bytes={len(data) // 2}-"
    assert ranges[2] == f"bytes={len(data) // 2 + (len(data) - len(data) // 2) // 2}-"
    assert "connection dropped" in capsys.readouterr().err


def test_gives_up_after_the_attempts_and_resumes_next_time(server, checkpoint, tmp_path):
    name, data = checkpoint
    server.files[name] = data
    server.drops[name] = 5
    dest = tmp_path / name
    with pytest.raises(wt.FetchError, match="gave up after 2 attempts"):
        wt.fetch(f"{server.url}/{name}", dest, attempts=2, backoff=0.01)
    partial = dest.with_name(name + ".partial")
    kept = partial.stat().st_size
    assert not dest.exists() and 0 < kept < len(data)
    server.drops[name] = 0
    assert wt.fetch(f"{server.url}/{name}", dest).read_bytes() == data  # the next build picks up where it stopped
    assert server.requests[-1][1] == f"bytes={kept}-" and not partial.exists()


def test_missing_file_on_the_server_is_not_retried(server, tmp_path):
    with pytest.raises(wt.FetchError, match="HTTP 404"):
        wt.fetch(f"{server.url}/nothing-0123abcd.pth", tmp_path / "nothing-0123abcd.pth", backoff=0.01)
    assert len(server.requests) == 1


def test_builder_downloads_missing_checkpoints_from_the_mirror(server, checkpoint, tmp_path, monkeypatch):
    """The build's own path: the mirror URL is <mirror>/<checkpoint file name>, the file lands in the torch hub
    cache where torchvision looks (a stand-in checkpoint name, since the real ones' hashes are fixed)."""
    import dataclasses

    from pytest_aiotbench import zoo
    from pytest_aiotbench.zoo.build import Builder, BuildOptions, hub_checkpoint_dir

    name, data = checkpoint
    server.files[name] = data
    monkeypatch.setitem(zoo.MODELS, "squeezenet", dataclasses.replace(zoo.MODELS["squeezenet"], checkpoint=name))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("AIOTBENCH_OFFLINE", raising=False)
    monkeypatch.setenv("AIOTBENCH_WEIGHTS_MIRROR", server.url + "/")
    Builder(BuildOptions(out=tmp_path / "out", models=["squeezenet"]))._fetch_missing_checkpoints(["squeezenet"])
    assert (hub_checkpoint_dir() / name).read_bytes() == data
    assert hub_checkpoint_dir() == tmp_path / "torch-home" / "hub" / "checkpoints"
    assert server.requests == [(name, None)]


def test_build_rejects_a_corrupted_mirror_checkpoint(server, checkpoint, tmp_path):
    """`aiotbench zoo build --weights-mirror URL`: the mirror serves bytes whose sha256 does not match the prefix
    torchvision's file name promises: exit 2, one line, nothing kept in the hub cache, nothing built."""
    ckpt = MODELS["squeezenet"].checkpoint
    server.files[ckpt] = checkpoint[1]
    home = tmp_path / "torch-home"
    r = zoo_cli("build", "--out", str(tmp_path / "out"), "--models", "squeezenet", "--weights-mirror", server.url,
                env={"TORCH_HOME": str(home), "AIOTBENCH_OFFLINE": ""})
    assert r.returncode == 2, r.stderr
    assert server.requests == [(ckpt, None)]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("aiotbench zoo build: pretrained weights for squeezenet could not be downloaded")
    assert "does not start with b8a52dc0" in last and "removed, not used" in last and "Traceback" not in r.stderr
    assert not any(home.rglob("*.pth*")) and not (tmp_path / "out" / "squeezenet").exists()


def test_offline_never_contacts_the_mirror(server, tmp_path):
    r = zoo_cli("build", "--out", str(tmp_path / "out"), "--models", "squeezenet", "--weights-mirror", server.url,
                "--offline", env={"TORCH_HOME": str(tmp_path / "torch-home"), "AIOTBENCH_OFFLINE": ""})
    assert r.returncode == 2 and "not available offline" in r.stderr and "--weights-mirror" in r.stderr, r.stderr
    assert server.requests == []
