"""A small adbd in Python: speaks the real adb wire protocol over TCP so the REAL adb server can ``adb connect`` it.

What it serves (enough for adbutils and the adb command line):
- CNXN without AUTH, OPEN/OKAY/WRTE/CLSE with one-WRTE-in-flight flow control (protocol 0x01000001).
- ``shell,v2:`` (stdout/stderr/exit packets) and ``shell:`` (raw), run with ``/bin/sh -c`` in a sandbox.
- ``sync:`` v1: SEND/RECV/STAT/LIST/QUIT.

The sandbox: every device path maps under ``sandbox/`` (``/data/local/tmp/x`` -> ``sandbox/data/local/tmp/x``);
shell commands get the same prefixes rewritten and run with cwd = sandbox, so nothing touches the host's ``/``
except read-only facts (/proc/cpuinfo, uname). ``sandbox/system/bin`` comes first in PATH and holds ``getprop``
and a ``df`` that honours the disk-full fault.

Faults (``FakeAdbd.faults``), each one-shot unless noted, to test what a real device does when it is unplugged,
hangs or runs out of space: see ``Faults``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

A_CNXN, A_OPEN, A_OKAY = 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH = 0x45534C43, 0x45545257, 0x48545541
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
SYNC_CHUNK = 64 * 1024
# Device-side paths that are real directories on Android and live under the sandbox here.
MAPPED_PREFIXES = ("/data/local/tmp", "/sdcard")
ACK_TIMEOUT_S = 60.0


@dataclass
class Faults:
    push_disconnect_after: int | None = None  # close the TCP link after this many SEND data bytes
    pull_disconnect_after: int | None = None  # close it after this many RECV data bytes
    run_disconnect: str | None = None  # close it once a shell command containing this text has started
    freeze_on: str | None = None  # "push", "pull" or "shell:<text>": stop answering (socket stays open)
    disk_free_bytes: int | None = None  # persistent: df reports this, SEND fails past it ("No space left")
    corrupt_pull: str | None = None  # persistent: RECV of a path containing this returns garbage
    offline: bool = False  # persistent: accept and drop connections (unplugged)
    fired: list[str] = field(default_factory=list)  # which one-shot faults went off, for the tests


class Disconnect(Exception):
    pass


class FakeAdbd:
    def __init__(self, sandbox: Path, props: dict[str, str] | None = None, python: str | None = sys.executable):
        self.sandbox = Path(sandbox).resolve()
        self.props = {
            "ro.product.name": "aiotfake",
            "ro.product.model": "AIoT Fake Phone",
            "ro.product.device": "aiotfake",
            "ro.product.manufacturer": "pytest-aiotbench",
            "ro.product.cpu.abi": "x86_64",
            "ro.build.version.release": "14",
            "ro.build.version.sdk": "34",
            "ro.soc.model": "FakeSoC 1000",
            "ro.hardware": "ranchu",
            **(props or {}),
        }
        self.faults = Faults()
        self.python = python
        self._listener: socket.socket | None = None
        self._conns: set[Connection] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.port = 0
        self.commands: list[str] = []  # every shell command as received (before path mapping)
        self.sysfs_root: Path | None = None  # a constructed /sys tree the runner reads instead of the host's
        self._setup_sandbox()

    # -- sandbox -------------------------------------------------------------------------------------------------
    def _setup_sandbox(self) -> None:
        for prefix in MAPPED_PREFIXES:
            (self.sandbox / prefix.lstrip("/")).mkdir(parents=True, exist_ok=True)
        bindir = self.sandbox / "system" / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        cases = "".join(f"  {shlex.quote(k)}) printf '%s\\n' {shlex.quote(v)} ;;\n" for k, v in self.props.items())
        listing = "".join(f"  printf '[%s]: [%s]\\n' {shlex.quote(k)} {shlex.quote(v)}\n" for k, v in self.props.items())
        _write_exec(bindir / "getprop", f"#!/bin/sh\nif [ $# -eq 0 ]; then\n{listing}  exit 0\nfi\n"
                    f"case \"$1\" in\n{cases}  *) echo ;;\nesac\n")
        # df that reports the disk-full fault (1K blocks, toybox layout), else the real one.
        free_file = self.sandbox / ".fault_df_free_kb"
        _write_exec(bindir / "df", f"#!/bin/sh\nif [ -f {shlex.quote(str(free_file))} ]; then\n"
                    "  echo 'Filesystem 1K-blocks Used Available Use% Mounted on'\n"
                    f"  echo \"/dev/block/dm-5 1000000 999000 $(cat {shlex.quote(str(free_file))}) 99% /data\"\n"
                    "  exit 0\nfi\nexec /bin/df \"$@\"\n")
        py = bindir / "python3"
        if py.exists() or py.is_symlink():
            py.unlink()
        if self.python:  # a Termux-like device: Python with numpy and the runtime
            # A wrapper, not a symlink: a venv's python finds its packages only when started by its own path.
            _write_exec(py, f"#!/bin/sh\nexec {shlex.quote(self.python)} \"$@\"\n")

    def set_disk_free(self, nbytes: int | None) -> None:
        self.faults.disk_free_bytes = nbytes
        free_file = self.sandbox / ".fault_df_free_kb"
        if nbytes is None:
            free_file.unlink(missing_ok=True)
        else:
            free_file.write_text(str(nbytes // 1024))

    def map_path(self, device_path: str) -> Path:
        """Device path -> host path under the sandbox; refuses anything that would escape it."""
        p = (self.sandbox / device_path.lstrip("/")).resolve()
        if p != self.sandbox and self.sandbox not in p.parents:
            raise PermissionError(f"{device_path}: outside the device sandbox")
        return p

    def map_command(self, cmd: str) -> str:
        for prefix in MAPPED_PREFIXES:
            cmd = cmd.replace(prefix, str(self.sandbox) + prefix)
        return cmd

    def shell_env(self) -> dict[str, str]:
        tmp = str(self.sandbox / "data/local/tmp")
        env = {"PATH": f"{self.sandbox / 'system/bin'}:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp,
               "LANG": "C.UTF-8", "ANDROID_DATA": str(self.sandbox / "data")}
        if self.sysfs_root is not None:  # the device's "/sys": run.conditions reads under this root
            env["AIOTBENCH_SYSFS_ROOT"] = str(self.sysfs_root)
        return env

    # -- server --------------------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        # The adb server probes 5555-5585 by itself: a test device there would be picked up twice.
        if 5555 <= self.port <= 5585:
            sock.close()
            return self.start(port=0)
        sock.listen(8)
        sock.settimeout(0.5)
        self._listener = sock
        threading.Thread(target=self._accept_loop, name=f"adbd:{self.port}", daemon=True).start()
        return self.port

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            if self.faults.offline:
                sock.close()
                continue
            conn = Connection(self, sock)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=conn.serve, name=f"adbd-conn:{self.port}", daemon=True).start()

    def drop_connections(self) -> None:
        """Unplug: every open link closes, every running command dies."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.disconnect()

    def forget(self, conn: "Connection") -> None:
        with self._lock:
            self._conns.discard(conn)

    def unfreeze(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.frozen.clear()

    def stop(self) -> None:
        self._stop.set()
        self.drop_connections()
        if self._listener:
            self._listener.close()


def _write_exec(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


class Connection:
    """One TCP link from the adb server: a reader thread dispatches packets to streams."""

    def __init__(self, adbd: FakeAdbd, sock: socket.socket):
        self.adbd = adbd
        self.sock = sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.closed = threading.Event()
        self.frozen = threading.Event()

    # -- packets -------------------------------------------------------------------------------------------------
    def send_packet(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.wait_unfrozen()
        header = struct.pack("<6I", cmd, arg0, arg1, len(data), _checksum(data), cmd ^ 0xFFFFFFFF)
        with self.send_lock:
            if self.closed.is_set():
                raise Disconnect()
            try:
                self.sock.sendall(header + data)
            except OSError:
                self.disconnect()
                raise Disconnect() from None

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Disconnect()
            buf += chunk
        return bytes(buf)

    def wait_unfrozen(self) -> None:
        while self.frozen.is_set() and not self.closed.is_set():
            time.sleep(0.05)

    def freeze(self) -> None:
        """Hang: read nothing, send nothing, keep the socket open (a wedged USB stack or adbd)."""
        self.frozen.set()
        self.adbd.faults.fired.append("freeze")

    def serve(self) -> None:
        try:
            while not self.closed.is_set():
                self.wait_unfrozen()
                cmd, arg0, arg1, length, _crc, magic = struct.unpack("<6I", self._recv_exact(24))
                if magic != cmd ^ 0xFFFFFFFF:
                    raise Disconnect()
                data = self._recv_exact(length) if length else b""
                self.dispatch(cmd, arg0, arg1, data)
        except (Disconnect, OSError):
            pass
        finally:
            self.disconnect()

    def dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = min(MAX_PAYLOAD, arg1 or MAX_PAYLOAD)
            p = self.adbd.props
            banner = (f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
                      f"ro.product.device={p['ro.product.device']};features=shell_v2,fixed_push_mkdir")
            self.send_packet(A_CNXN, A_VERSION, self.max_payload, banner.encode())
        elif cmd == A_OPEN:
            self.open_stream(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
        elif cmd == A_OKAY:
            stream = self.streams.get(arg1)
            if stream:
                stream.remote_id = arg0
                stream.acked.set()
        elif cmd == A_WRTE:
            stream = self.streams.get(arg1)
            if stream:
                self.send_packet(A_OKAY, stream.local_id, arg0)
                stream.feed(data)
        elif cmd == A_CLSE:
            stream = self.streams.pop(arg1, None)
            if stream:
                stream.close_from_host()
        # A_AUTH and anything else: this device never asks for auth; ignore.

    def open_stream(self, remote_id: int, service: str) -> None:
        local_id = self.next_id
        self.next_id += 1
        head, _, rest = service.partition(":")
        name, *args = head.split(",")
        if name == "shell":
            stream: Stream = ShellStream(self, local_id, remote_id, rest, v2="v2" in args)
        elif name == "sync":
            stream = SyncStream(self, local_id, remote_id)
        else:
            self.send_packet(A_CLSE, 0, remote_id)
            return
        self.streams[local_id] = stream
        self.send_packet(A_OKAY, local_id, remote_id)
        threading.Thread(target=stream.run_safely, daemon=True).start()

    def disconnect(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for stream in list(self.streams.values()):
            stream.close_from_host()
        self.streams.clear()
        self.adbd.forget(self)


class Stream:
    def __init__(self, conn: Connection, local_id: int, remote_id: int):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.acked = threading.Event()
        self.acked.set()
        self.inbox = bytearray()
        self.inbox_cv = threading.Condition()
        self.closed = False
        self.write_lock = threading.Lock()

    @property
    def faults(self) -> Faults:
        return self.conn.adbd.faults

    def feed(self, data: bytes) -> None:
        with self.inbox_cv:
            self.inbox += data
            self.inbox_cv.notify_all()

    def read_exact(self, n: int) -> bytes:
        with self.inbox_cv:
            while len(self.inbox) < n:
                if self.closed or self.conn.closed.is_set():
                    raise Disconnect()
                self.inbox_cv.wait(0.2)
            out = bytes(self.inbox[:n])
            del self.inbox[:n]
            return out

    def write(self, data: bytes) -> None:
        """WRTE in max_payload pieces, each waiting for the host's OKAY (protocol flow control)."""
        with self.write_lock:
            for i in range(0, len(data), self.conn.max_payload):
                deadline = time.monotonic() + ACK_TIMEOUT_S
                while not self.acked.wait(0.2):
                    if self.closed or self.conn.closed.is_set() or time.monotonic() > deadline:
                        raise Disconnect()
                if self.closed:
                    raise Disconnect()
                self.acked.clear()
                self.conn.send_packet(A_WRTE, self.local_id, self.remote_id, data[i:i + self.conn.max_payload])

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.streams.pop(self.local_id, None)
            try:
                self.conn.send_packet(A_CLSE, self.local_id, self.remote_id)
            except Disconnect:
                pass

    def close_from_host(self) -> None:
        self.closed = True
        with self.inbox_cv:
            self.inbox_cv.notify_all()

    def run_safely(self) -> None:
        try:
            self.run()
        except (Disconnect, OSError):
            pass
        finally:
            self.close()

    def run(self) -> None:
        raise NotImplementedError


class ShellStream(Stream):
    def __init__(self, conn, local_id, remote_id, command: str, v2: bool):
        super().__init__(conn, local_id, remote_id)
        self.command, self.v2 = command, v2
        self.proc: subprocess.Popen | None = None

    def packet(self, kind: int, data: bytes) -> bytes:
        return struct.pack("<BI", kind, len(data)) + data if self.v2 else data

    def run(self) -> None:
        adbd = self.conn.adbd
        adbd.commands.append(self.command)
        f = self.faults
        if f.freeze_on and f.freeze_on.startswith("shell:") and f.freeze_on[6:] in self.command:
            f.freeze_on = None
            self.conn.freeze()
            self.conn.wait_unfrozen()
            raise Disconnect()
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", adbd.map_command(self.command) or "true"], cwd=adbd.sandbox, env=adbd.shell_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE if self.v2 else subprocess.STDOUT,
            start_new_session=True)
        if f.run_disconnect and f.run_disconnect in self.command:
            f.run_disconnect = None
            f.fired.append("run_disconnect")
            time.sleep(0.3)  # let it start: the device dies with the command running
            self.conn.disconnect()
            raise Disconnect()
        pumps = [threading.Thread(target=self.pump, args=(self.proc.stdout, 1), daemon=True)]
        if self.v2:
            pumps.append(threading.Thread(target=self.pump, args=(self.proc.stderr, 2), daemon=True))
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        rc = self.proc.wait()
        if self.v2:
            self.write(self.packet(3, bytes([rc & 0xFF if rc >= 0 else (128 - rc) & 0xFF])))

    def pump(self, pipe, kind: int) -> None:
        try:
            while chunk := os.read(pipe.fileno(), 65536):
                self.write(self.packet(kind, chunk))
        except (Disconnect, OSError):
            self.kill()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # adbd SIGHUPs the session; SIGKILL is surer
            except ProcessLookupError:
                pass

    def close_from_host(self) -> None:
        super().close_from_host()
        self.kill()


class SyncStream(Stream):
    def run(self) -> None:
        adbd = self.conn.adbd
        while True:
            cmd, n = struct.unpack("<4sI", self.read_exact(8))
            if cmd == b"QUIT":
                return
            arg = self.read_exact(n).decode("utf-8", "surrogateescape")
            if cmd == b"SEND":
                self.send_file(arg)
            elif cmd == b"RECV":
                self.recv_file(arg)
            elif cmd == b"STAT":
                try:
                    st = adbd.map_path(arg).stat()
                    self.write(b"STAT" + struct.pack("<III", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)))
                except OSError:
                    self.write(b"STAT" + struct.pack("<III", 0, 0, 0))
            elif cmd == b"LIST":
                self.list_dir(arg)
            else:
                self.fail(f"unknown sync command {cmd!r}")
                return

    def fail(self, message: str) -> None:
        data = message.encode()
        self.write(b"FAIL" + struct.pack("<I", len(data)) + data)

    def send_file(self, path_mode: str) -> None:
        f, adbd = self.faults, self.conn.adbd
        path, _, mode = path_mode.rpartition(",")
        if f.freeze_on == "push":
            f.freeze_on = None
            self.conn.freeze()
            self.conn.wait_unfrozen()
            raise Disconnect()
        error = None
        try:
            target = adbd.map_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)  # the fixed_push_mkdir feature
            out = open(target, "wb")
        except OSError as exc:
            error, out, target = f"{exc.strerror or exc}", None, None
        written = 0
        while True:
            kind, n = struct.unpack("<4sI", self.read_exact(8))
            if kind == b"DONE":
                break
            if kind != b"DATA":
                raise Disconnect()
            data = self.read_exact(n)
            written += n
            if f.push_disconnect_after is not None and written >= f.push_disconnect_after:
                f.push_disconnect_after = None
                f.fired.append("push_disconnect")
                if out:
                    out.write(data)
                    out.close()  # a real unplug leaves the partial file behind
                self.conn.disconnect()
                raise Disconnect()
            if out and f.disk_free_bytes is not None and written > f.disk_free_bytes:
                error = "No space left on device"
            if out and not error:
                out.write(data)
        if out:
            out.close()
            if error:
                target.unlink(missing_ok=True)  # adbd removes what it could not finish
            else:
                os.chmod(target, int(mode) & 0o7777 if mode.isdigit() else 0o644)
                if f.disk_free_bytes is not None:
                    adbd.set_disk_free(max(0, f.disk_free_bytes - written))
        if error:
            self.fail(f"couldn't write {path}: {error}")
        else:
            self.write(b"OKAY" + struct.pack("<I", 0))

    def recv_file(self, path: str) -> None:
        f, adbd = self.faults, self.conn.adbd
        if f.freeze_on == "pull":
            f.freeze_on = None
            self.conn.freeze()
            self.conn.wait_unfrozen()
            raise Disconnect()
        try:
            data = adbd.map_path(path).read_bytes()
        except OSError as exc:
            self.fail(f"{exc.strerror or exc}")
            return
        if f.corrupt_pull and f.corrupt_pull in path:
            data = (b"\x00garbage{" * (len(data) // 9 + 1))[: len(data)]  # same size: only parsing can tell
        sent = 0
        for i in range(0, len(data), SYNC_CHUNK):
            chunk = data[i:i + SYNC_CHUNK]
            if f.pull_disconnect_after is not None and sent + len(chunk) > f.pull_disconnect_after:
                f.pull_disconnect_after = None
                f.fired.append("pull_disconnect")
                self.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk[: len(chunk) // 2])
                self.conn.disconnect()
                raise Disconnect()
            self.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            sent += len(chunk)
        self.write(b"DONE" + struct.pack("<I", 0))

    def list_dir(self, path: str) -> None:
        try:
            entries = list(self.conn.adbd.map_path(path).iterdir())
        except OSError:
            entries = []
        for e in entries:
            try:
                st = e.lstat()
            except OSError:
                continue
            name = e.name.encode("utf-8", "surrogateescape")
            self.write(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime),
                                             len(name)) + name)
        self.write(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))


__all__ = ["FakeAdbd", "Faults"]
