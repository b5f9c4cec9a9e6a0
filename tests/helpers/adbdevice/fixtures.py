"""Fixtures: a private REAL adb server (its own port, HOME and TMPDIR, so it never meets another server on 5037)
with the fake adbd connected to it through ``adb connect 127.0.0.1:PORT``. Load with
``pytest_plugins = ["tests.helpers.adbdevice.fixtures"]`` (or import the fixtures into a test module)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .adbd import FakeAdbd

ADB_CALL_TIMEOUT_S = 30


def adb_binary() -> str | None:
    """Debian's adb first (apt-get install adb), else the one adbutils ships."""
    found = shutil.which("adb")
    if found:
        return found
    try:
        import adbutils

        path = adbutils.adb_path()
        return path if path and os.path.exists(path) else None
    except Exception:
        return None


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 5555 <= port <= 5585 and port != 5037:
            return port


class AdbServer:
    def __init__(self, binary: str, home: Path):
        self.binary = binary
        self.port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        (home / "tmp").mkdir(exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "TMPDIR": str(home / "tmp"),
                    "ANDROID_ADB_SERVER_PORT": str(self.port), "ADB_MDNS": "0", "ADB_MDNS_AUTO_CONNECT": ""}
        self.env.pop("ANDROID_SERIAL", None)

    def adb(self, *args: str, timeout: float = ADB_CALL_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-P", str(self.port), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start(self) -> None:
        r = self.adb("start-server")
        if r.returncode != 0:
            raise RuntimeError(f"adb start-server failed: {r.stderr.strip()}")

    def stop(self) -> None:
        try:
            self.adb("kill-server", timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def connect(self, serial: str, timeout: float = 15.0) -> None:
        """adb connect, then wait until the server sees the device in state 'device'."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.adb("connect", serial, timeout=10)
            r = self.adb("-s", serial, "get-state", timeout=10)
            if r.stdout.strip() == "device":
                return
            time.sleep(0.2)
        raise RuntimeError(f"{serial} did not come online on adb server port {self.port}")


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory):
    binary = adb_binary()
    if not binary:
        pytest.skip("no adb binary: apt-get install adb (or pip install adbutils, which ships one)")
    server = AdbServer(binary, tmp_path_factory.mktemp("adbhome"))
    server.start()
    # adbutils reads the server port from the environment when a target is built without one.
    old = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(server.port)
    yield server
    if old is None:
        os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
    else:
        os.environ["ANDROID_ADB_SERVER_PORT"] = old
    server.stop()


@pytest.fixture(scope="session")
def _adb_device_session(adb_server, tmp_path_factory):
    device = FakeAdbd(tmp_path_factory.mktemp("device"))
    device.start()
    device.serial = f"127.0.0.1:{device.port}"
    adb_server.connect(device.serial)
    yield device
    adb_server.adb("disconnect", device.serial, timeout=10)
    device.stop()


@pytest.fixture
def adb_device(_adb_device_session, adb_server):
    """The connected fake device, faults cleared and back online (a previous test may have unplugged it)."""
    device = _adb_device_session
    device.faults.__init__()
    device.set_disk_free(None)
    device.unfreeze()
    device.commands.clear()
    device.sysfs_root = None
    adb_server.connect(device.serial)
    yield device
    device.sysfs_root = None
    device.faults.__init__()
    device.set_disk_free(None)
    device.unfreeze()


def leftovers(device: FakeAdbd) -> list[str]:
    """What a job left in the device's temp dir (must be nothing)."""
    root = device.sandbox / "data/local/tmp"
    return sorted(p.name for p in root.iterdir())
