"""Linux boards over SSH (paramiko): key authentication only, host keys checked against known_hosts (never
accepted blindly), and every call bounded: connect/banner/auth/channel timeouts, SFTP with a socket timeout, and
commands read under a deadline."""

from __future__ import annotations

import getpass
import select
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..oneline import one_line
from .remote import DEFAULT_IO_TIMEOUT_S, RemoteTarget, TransportError

DEFAULT_WORKDIR = "/tmp"


def parse_ssh_spec(spec: str) -> tuple[str, str, int]:
    """ssh://user@host[:port] -> (user, host, port)."""
    parts = urlsplit(spec)
    try:
        port = parts.port or 22
    except ValueError:
        raise TransportError(f"{spec}: bad port") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        raise TransportError(f"{spec}: expected ssh://user@host[:port]")
    return parts.username or getpass.getuser(), parts.hostname, port


class SshTransport:
    def __init__(self, user: str, host: str, port: int, *, key_filename: str | None = None,
                 known_hosts: str | None = None, io_timeout_s: float = DEFAULT_IO_TIMEOUT_S):
        self.user, self.host, self.port = user, host, port
        self.key_filename, self.known_hosts = key_filename, known_hosts
        self.io_timeout_s = io_timeout_s
        self.name = f"ssh://{user}@{host}:{port}"
        self._client = None
        self._connect()

    def _connect(self) -> None:
        import paramiko

        client = paramiko.SSHClient()
        client.load_system_host_keys()
        if self.known_hosts:
            client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())  # an unknown board is an error, not a prompt
        t = self.io_timeout_s
        try:
            client.connect(self.host, self.port, username=self.user, key_filename=self.key_filename,
                           look_for_keys=self.key_filename is None, allow_agent=self.key_filename is None,
                           timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t)
        except paramiko.AuthenticationException as exc:
            raise TransportError(f"key authentication failed ({one_line(exc, with_type=True)}); "
                                 "give the key with --aiotbench-ssh-key") from None
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc) or isinstance(exc, paramiko.BadHostKeyException):
                raise TransportError(f"host key not trusted ({one_line(exc, with_type=True)}); add it to known_hosts "
                                     "or give --aiotbench-ssh-known-hosts") from None
            raise TransportError(one_line(exc, with_type=True)) from None
        except (OSError, EOFError) as exc:
            raise TransportError(f"cannot connect: {one_line(exc, with_type=True)}") from None
        client.get_transport().set_keepalive(max(1, int(t // 3)))
        self._client = client

    def _transport(self):
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            raise TransportError("connection lost")
        return transport

    def _sftp(self):
        try:
            sftp = self._client.open_sftp()
        except Exception as exc:
            raise TransportError(f"sftp: {one_line(exc, with_type=True)}") from None
        sftp.get_channel().settimeout(self.io_timeout_s)
        return sftp

    def push(self, local: Path, remote: str) -> None:
        sftp = self._sftp()
        try:
            sftp.put(str(local), remote, confirm=True)  # confirm: stat afterwards, size must match
        except Exception as exc:  # IOError from the server (no space: "Failure"), socket timeouts, EOF
            raise TransportError(one_line(exc, with_type=True)) from None
        finally:
            sftp.close()

    def pull(self, remote: str, local: Path) -> None:
        sftp = self._sftp()
        try:
            expected = sftp.stat(remote).st_size
            sftp.get(remote, str(local))
        except Exception as exc:
            raise TransportError(one_line(exc, with_type=True)) from None
        finally:
            sftp.close()
        got = Path(local).stat().st_size
        if got != expected:
            raise TransportError(f"{got} of {expected} bytes arrived")

    def shell(self, command: str, timeout: float) -> tuple[int, str, str]:
        try:
            chan = self._transport().open_session(timeout=self.io_timeout_s)
            chan.exec_command(command)
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(one_line(exc, with_type=True)) from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise TransportError(f"no answer for {timeout:.0f}s (device frozen or gone)")
                if not self._transport().is_active():
                    raise TransportError("connection lost")
                select.select([chan], [], [], 0.2)
            code = chan.recv_exit_status()  # -1: killed by a signal (no exit status sent), or the link died
        finally:
            chan.close()
        if code < 0 and not (self._client.get_transport() and self._client.get_transport().is_active()):
            raise TransportError("connection lost (the command's end was never reported)")
        return (code if code >= 0 else 255), out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def reconnect(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.close()
            try:
                self._connect()
                return True
            except TransportError:
                time.sleep(0.5)
        return False

    def close(self) -> None:
        if self._client:
            self._client.close()
            self._client = None


class SshTarget(RemoteTarget):
    """``--device=ssh://user@host[:port]``: the Python runner on a Linux board with Python, numpy and the runtime.
    The SSH session opens on the first job or ``describe``."""

    def __init__(self, user: str, host: str, port: int, *, key_filename: str | None = None,
                 known_hosts: str | None = None, io_timeout_s: float = DEFAULT_IO_TIMEOUT_S,
                 workdir_base: str = DEFAULT_WORKDIR, **options):
        def connect() -> SshTransport:
            return SshTransport(user, host, port, key_filename=key_filename, known_hosts=known_hosts,
                                io_timeout_s=io_timeout_s)

        super().__init__(f"ssh://{user}@{host}:{port}", connect, workdir_base=workdir_base,
                         io_timeout_s=io_timeout_s, **options)
