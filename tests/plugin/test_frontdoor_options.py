"""The front door, before anything is measured: every count and duration bounded, SSH files and addresses checked,
A/B and gate combinations that cannot work refused — each one line, exit 4, no traceback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pytest_aiotbench.inputs import options
from pytest_aiotbench.targets import TargetError, parse_device_spec
from pytest_aiotbench.targets.ssh import SshTarget
from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.realrun import one_usage_error
from tests.helpers.shared import TFLITE_DIR
from tests.targets.test_device_ssh import sshd  # noqa: F401  (the loopback sshd fixture)

SMALL = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture
def catalog(tmp_path):
    """One case whose model file is missing (a configure-time check never needs it)."""
    return write_catalog(tmp_path / "cat.toml", [tflite_entry("m", tmp_path / "missing.tflite", 128)])


# ---------------------------------------------------------------------------------------------------- counts
NUMERIC = [o for o in options.CORE_OPTIONS + options.GATE_OPTIONS if o.kind == "value" and o.parse is not options.text]


@pytest.mark.parametrize("opt", NUMERIC, ids=lambda o: o.flag)
@pytest.mark.parametrize("raw", ["99999999999999999999", "1e300", "10000000000"])
def test_every_numeric_option_has_an_upper_bound(opt, raw):
    with pytest.raises(ValueError, match="expected"):
        opt.parse(raw)


def test_the_bounded_options_are_the_counts_and_durations():
    assert {o.flag for o in NUMERIC} >= {"--aiotbench-images", "--aiotbench-threads", "--aiotbench-warmup",
                                         "--aiotbench-repeat", "--aiotbench-device-deadline",
                                         "--aiotbench-device-io-timeout"}


@pytest.mark.parametrize("flag, raw", [
    ("--aiotbench-repeat", "99999999999999999999"),  # was an OverflowError traceback at collection
    ("--aiotbench-repeat", "1000000"),  # was 141 s of collecting
    ("--aiotbench-warmup", "10000000000"),  # was accepted
    ("--aiotbench-device-io-timeout", "1e300"),  # overflows a socket timeout
])
def test_out_of_range_counts_stop_at_start(run_aiotbench, catalog, flag, raw):
    run = run_aiotbench(f"{flag}={raw}", catalogs=[catalog])
    one_usage_error(run, flag, "expected")


def test_out_of_range_ini_count_stops_at_start(run_aiotbench, catalog, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_repeat = 99999999999999999999\n")
    one_usage_error(run_aiotbench(catalogs=[catalog]), "aiotbench_repeat (ini)", "expected")


# ------------------------------------------------------------------------------------------------------- SSH
@pytest.mark.parametrize("spec, why", [
    ("ssh://@127.0.0.1", "empty user"),
    ("ssh://root@127.0.0.1:0", "bad port"),
    ("ssh://root@127.0.0.1:", "bad port"),
    ("ssh://root@127.0.0.1:70000", "bad port"),
    ("ssh://root:secret@127.0.0.1", "no password"),
    ("ssh://root@127.0.0.1/path", "expected ssh://"),
])
def test_bad_ssh_addresses(spec, why):
    with pytest.raises(TargetError, match=why):
        parse_device_spec(spec)


def test_good_ssh_addresses():
    assert parse_device_spec("ssh://pi@board.local:2222").port == 2222
    assert parse_device_spec("ssh://pi@board.local").port == 22
    assert parse_device_spec("ssh://board.local").user  # the local user, as ssh does
    assert parse_device_spec("ssh://pi@[::1]:2200").address == "::1"


def test_empty_ssh_user_is_aone_usage_error(run_aiotbench, catalog):
    one_usage_error(run_aiotbench("--device=ssh://@127.0.0.1:2222", catalogs=[catalog]), "empty user")


@pytest.mark.parametrize("flag", ["--aiotbench-ssh-key", "--aiotbench-ssh-known-hosts"])
@pytest.mark.parametrize("what", ["missing", "folder"])
def test_ssh_files_are_checked_at_start(run_aiotbench, catalog, tmp_path, flag, what):
    path = tmp_path / ("nope" if what == "missing" else "")
    run = run_aiotbench("--device=ssh://root@127.0.0.1:2222", f"{flag}={path}", catalogs=[catalog])
    one_usage_error(run, flag, "file not found" if what == "missing" else "not a file")


@pytest.fixture
def silent_server():
    """A loopback TCP server that accepts connections and never says a word (no SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_server_without_banner_is_named_and_not_retried(silent_server):
    port, accepted = silent_server
    target = SshTarget("root", "127.0.0.1", port, io_timeout_s=1)
    with pytest.raises(TargetError, match="accepted the connection but sent no SSH banner in 1s") as first:
        target.describe()
    started = time.monotonic()
    with pytest.raises(TargetError, match="not tried again") as again:
        target.describe()
    assert time.monotonic() - started < 0.5  # no second timeout for the same dead board
    assert "no SSH banner" in str(again.value) and str(first.value).split(": ", 1)[1] in str(again.value)
    assert len(accepted) == 1


@pytest.mark.slow
def test_pytest_run_against_a_silent_server_fails_every_case_fast(run_aiotbench, tmp_path, silent_server, shared):
    port, accepted = silent_server
    cat = write_catalog(tmp_path / "two.toml", [tflite_entry("a", SMALL, 128), tflite_entry("b", SMALL, 128)])
    run = run_aiotbench(f"--device=ssh://root@127.0.0.1:{port}", "--aiotbench-device-io-timeout=1",
                        "--aiotbench-images=2", catalogs=[cat])
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "no SSH banner" in run.stdout and "not tried again" in run.stdout
    assert len(accepted) == 1


# ------------------------------------------------------------------------------------------- gate and A/B
@pytest.mark.parametrize("spec", [",", " , ", ",,"])
def test_fail_on_without_a_limit_is_aone_usage_error(run_aiotbench, catalog, spec):
    one_usage_error(run_aiotbench(f"--aiotbench-fail-on={spec}", catalogs=[catalog]), "--aiotbench-fail-on",
                 "empty limit")


def test_fail_on_without_a_limit_in_the_ini(run_aiotbench, catalog, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_fail_on = ,\n")
    one_usage_error(run_aiotbench(catalogs=[catalog]), "empty limit")


def test_baseline_that_is_a_folder_stops_at_start(run_aiotbench, tmp_path):
    (tmp_path / "old").mkdir()
    cat = write_catalog(tmp_path / "ab.toml", [tflite_entry("m", SMALL, 128, baseline=str(tmp_path / "old"))])
    one_usage_error(run_aiotbench(catalogs=[cat]), "baseline", "is a directory")


def test_baseline_catalog_pointing_at_a_folder_stops_at_start(run_aiotbench, tmp_path):
    (tmp_path / "old").mkdir()
    new = write_catalog(tmp_path / "new.toml", [tflite_entry("m", SMALL, 128)])
    base = write_catalog(tmp_path / "base.toml", [tflite_entry("m", tmp_path / "old", 128)])
    one_usage_error(run_aiotbench(f"--aiotbench-baseline={base}", catalogs=[new]), "directory")


def test_missing_baseline_file_stops_at_start(run_aiotbench, tmp_path):
    cat = write_catalog(tmp_path / "ab.toml", [tflite_entry("m", SMALL, 128, baseline=str(tmp_path / "old.tflite"))])
    one_usage_error(run_aiotbench(catalogs=[cat]), "baseline model file not found")


class _SwitchableForwarder:
    """Loopback port in front of a real sshd: forwards while ``alive``, else accepts and stays silent."""

    def __init__(self, target_port: int):
        self.target_port, self.alive = target_port, True
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                client = self.server.accept()[0]
            except OSError:
                continue
            self.sockets.append(client)
            if self.alive:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self.sockets.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        for s in [*self.sockets, self.server]:
            s.close()


@pytest.mark.slow
def test_a_board_that_answered_before_is_retried(sshd, tmp_path):
    """Only a board never reached in the run is given up on: one that answered is tried again (a reboot)."""
    forwarder = _SwitchableForwarder(int(sshd["spec"].rsplit(":", 1)[1]))
    target = None
    known = tmp_path / "known_hosts"
    sshd_port = sshd["spec"].rsplit(":", 1)[1]
    known.write_text(open(sshd["known_hosts"]).read().replace(f"]:{sshd_port} ", f"]:{forwarder.port} "))
    try:
        target = SshTarget(sshd["spec"].split("//")[1].split("@")[0], "127.0.0.1", forwarder.port,
                           key_filename=sshd["key"], known_hosts=str(known), io_timeout_s=2)
        assert target.describe()["cores"] >= 1
        target.close()
        target._facts = None  # ask the board again
        forwarder.alive = False
        with pytest.raises(TargetError, match="no SSH banner"):
            target.describe()
        forwarder.alive = True
        assert target.describe()["cores"] >= 1  # reached before: retried, and it is back
    finally:
        if target is not None:
            target.close()
        forwarder.close()
