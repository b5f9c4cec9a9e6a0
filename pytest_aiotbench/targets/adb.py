"""Android devices over adb (adbutils talking to an adb server). Every call has a timeout: adbutils' sync has none
by default, so the client is built with ``socket_timeout`` and shell always goes through ``shell2(v2=True,
timeout=...)`` (exit codes, and a bounded wait)."""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from pathlib import Path

from ..errors import one_line
from .remote import DEFAULT_IO_TIMEOUT_S, RemoteTarget, TransportError

DEFAULT_WORKDIR = "/data/local/tmp"  # the one place a stock Android shell user can write and exec
SYNC_CHUNK = 64 * 1024  # the sync protocol's maximum DATA size
_TCP_SERIAL = re.compile(r"^[\w.\-\[\]:]+:\d+$")


def _reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timeout" in type(exc).__name__.lower():
        return f"no answer for {timeout_s:.0f}s (device frozen or gone)"
    return one_line(exc, with_type=True)


class AdbTransport:
    def __init__(self, serial: str, *, adb_host: str | None = None, adb_port: int | None = None,
                 io_timeout_s: float = DEFAULT_IO_TIMEOUT_S):
        import adbutils

        self.serial = serial
        self.name = f"adb:{serial}"
        self.io_timeout_s = io_timeout_s
        port = adb_port or int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037))
        self.client = adbutils.AdbClient(host=adb_host or os.environ.get("ANDROID_ADB_SERVER_HOST", "127.0.0.1"),
                                         port=port, socket_timeout=io_timeout_s)
        self.device = self.client.device(serial)

    # adbutils raises AdbError, AdbTimeout, socket errors, struct errors and even AssertionError (a STAT reply cut
    # short): at this boundary every one of them means "the link failed" and becomes one line.
    def _call(self, what: str | None, fn, *args, timeout_s: float | None = None, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TransportError:
            raise
        except Exception as exc:
            reason = _reason(exc, timeout_s or self.io_timeout_s)
            raise TransportError(f"{what}: {reason}" if what else reason) from None

    def state(self) -> str:
        return self._call("get-state", self.device.get_state)

    def push(self, local: Path, remote: str) -> None:
        self._call(None, self._send, Path(local), remote)

    def _send(self, local: Path, remote: str) -> None:
        """sync SEND of one file (protocol v1). Done here rather than with adbutils' push, which drops the
        device's FAIL message ("No space left on device") and costs an extra STAT round trip."""
        path = f"{remote},{0o100644}".encode()
        with self.device.open_transport(timeout=self.io_timeout_s) as c:
            c.send_command("sync:")
            c.check_okay()
            c.conn.sendall(b"SEND" + struct.pack("<I", len(path)) + path)
            with open(local, "rb") as fh:
                while chunk := fh.read(SYNC_CHUNK):
                    c.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            c.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
            status = c.read_exact(4)
            if status == b"FAIL":
                message = c.read_exact(struct.unpack("<I", c.read_exact(4))[0]).decode("utf-8", "replace")
                raise TransportError(f"device refused the file: {message}")
            if status != b"OKAY":
                raise TransportError(f"unexpected sync reply {status!r}")

    def pull(self, remote: str, local: Path) -> None:
        sync = self.device.sync
        expected = self._call("stat", sync.stat, remote).size
        if not expected:
            raise TransportError(f"{remote} is missing or empty on the device")
        got = 0
        with open(local, "wb") as fh:
            for chunk in self._call(None, lambda: list(sync.iter_content(remote))):
                fh.write(chunk)
                got += len(chunk)
        if got != expected:
            raise TransportError(f"{got} of {expected} bytes arrived")

    def shell(self, command: str, timeout: float) -> tuple[int, str, str]:
        r = self._call(None, self.device.shell2, command, timeout=timeout, v2=True, timeout_s=timeout)
        return r.returncode, r.stdout, r.stderr

    def reconnect(self, timeout: float) -> bool:
        """Wait for the device to come back; a network serial (host:port) is re-``adb connect``ed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if _TCP_SERIAL.match(self.serial):
                    self.client.connect(self.serial, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
                if self.device.get_state() == "device":
                    return True
            except Exception:
                pass
            time.sleep(0.3)
        return False

    def close(self) -> None:
        pass  # adbutils opens one server connection per call: nothing to hold


class AdbTarget(RemoteTarget):
    """``--device=adb:SERIAL``: the Python runner over adb (a device with Python + numpy + the runtime, e.g.
    Termux, or an Android-on-x86 image). Stock Android without Python: see ``benchmark_model.BenchmarkModelTarget``.
    Nothing talks to the adb server until the first job or ``describe``."""

    def __init__(self, serial: str, *, adb_host: str | None = None, adb_port: int | None = None,
                 io_timeout_s: float = DEFAULT_IO_TIMEOUT_S, workdir_base: str = DEFAULT_WORKDIR, **options):
        def connect() -> AdbTransport:
            transport = AdbTransport(serial, adb_host=adb_host, adb_port=adb_port, io_timeout_s=io_timeout_s)
            state = transport.state()
            if state != "device":
                raise TransportError(f"device is {state!r}, not ready (unauthorized? offline?)")
            return transport

        super().__init__(f"adb:{serial}", connect, workdir_base=workdir_base, io_timeout_s=io_timeout_s, **options)
