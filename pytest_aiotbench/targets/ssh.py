"""Linux boards over SSH (paramiko): key authentication only, host keys checked against known_hosts (never
accepted blindly), and every call bounded: connect/banner/auth/channel timeouts, SFTP with a socket timeout, and
commands read under a deadline."""

from __future__ import annotations

import getpass
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import one_line
from .remote import DEFAULT_IO_TIMEOUT_S, RemoteTarget, TransportError

DEFAULT_WORKDIR = "/tmp"


def parse_ssh_spec(spec: str) -> tuple[str, str, int]:
    """ssh://user@host[:port] -> (user, host, port). No user part means the local user name; a written but empty
    user (``ssh://@host``) or port (``host:``, ``host:0``) is a mistake, never root or port 22."""
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        raise TransportError(f"{spec}: bad port (expected 1..65535)") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TransportError(f"{spec}: expected ssh://user@host[:port]")
    hostport = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc and not parts.username:
        raise TransportError(f"{spec}: empty user name before '@' (write ssh://user@host, or leave out 'user@' "
                             "for your local user name)")
    if parts.password is not None:
        raise TransportError(f"{spec}: no password in the address: ssh devices use key authentication "
                             "(--aiotbench-ssh-key)")
    if port == 0 or (port is None and hostport.endswith(":")):
        raise TransportError(f"{spec}: bad port (expected 1..65535)")
    return parts.username or getpass.getuser(), parts.hostname, port or 22


def check_ssh_files(key_filename: str | None, known_hosts: str | None) -> None:
    """A key or known_hosts file that was asked for but is not there is a usage error at start, not a
    traceback per case (paramiko would fail each connection)."""
    for flag, path in (("--aiotbench-ssh-key", key_filename), ("--aiotbench-ssh-known-hosts", known_hosts)):
        if path is None:
            continue
        p = Path(path).expanduser()
        if not p.exists():
            raise TransportError(f"{flag} {path}: file not found")
        if not p.is_file():
            raise TransportError(f"{flag} {path}: not a file")
        try:
            with p.open("rb"):
                pass
        except OSError as exc:
            raise TransportError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None


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
            sock = self._open_socket(t)
            client.connect(self.host, self.port, username=self.user, key_filename=self.key_filename,
                           look_for_keys=self.key_filename is None, allow_agent=self.key_filename is None,
                           timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t, sock=sock)
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

    def _open_socket(self, timeout: float) -> socket.socket:
        """The TCP connection, once the server has said something: a port that accepts and never sends the SSH
        banner is named as such (paramiko would only say 'No existing session' after its timeout)."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.settimeout(timeout)
            first = sock.recv(1, socket.MSG_PEEK)  # left in the socket for paramiko
        except TimeoutError:
            sock.close()
            raise TransportError(f"{self.host}:{self.port} accepted the connection but sent no SSH banner in "
                                 f"{timeout:g}s (not an SSH server, or its sshd is hung)") from None
        except OSError:
            sock.close()
            raise
        if not first:
            sock.close()
            raise TransportError(f"{self.host}:{self.port} closed the connection before sending the SSH banner "
                                 "(not an SSH server, or it refuses this client)")
        return sock

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
        check_ssh_files(key_filename, known_hosts)  # built at start (pytest_configure): exit 4 there
        first_failure: list[str] = []
        reached: list[bool] = []

        def connect() -> SshTransport:
            # A board never reached in this run is not tried again for every later case (each try can cost a full
            # timeout): later cases fail at once, naming the first failure. One that answered before is retried
            # (a reboot, a flaky link).
            if first_failure and not reached:
                raise TransportError(f"not tried again: the first connection in this run failed ({first_failure[0]})")
            try:
                transport = SshTransport(user, host, port, key_filename=key_filename, known_hosts=known_hosts,
                                         io_timeout_s=io_timeout_s)
            except TransportError as exc:
                first_failure.append(str(exc))
                raise
            reached.append(True)
            return transport

        super().__init__(f"ssh://{user}@{host}:{port}", connect, workdir_base=workdir_base,
                         io_timeout_s=io_timeout_s, **options)
