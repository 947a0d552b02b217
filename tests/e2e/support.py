"""Helpers for end-to-end tests: run a real ``twistd -n vncmux`` and wait on conditions.

Nothing here sleeps as synchronisation: every wait is a poll of a condition with a deadline,
and a timeout raises with the process's log attached so a failure explains itself.

Typical use (the ``vncmux`` fixture in conftest.py wraps ``start_vncmux`` and stops the
process at teardown)::

    proc = start_vncmux(["--vnc", "none", "--device", dev, "--socket", f"unix:{sock}"], workdir)
    proc.wait_for_log(r"Device .* opened")
    wait_until(lambda: os.path.exists(sock), 5, "socket never appeared")
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
    interval: float = 0.01,
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes
    (``WaitTimeout`` with ``message``; a callable message is evaluated only then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"after {timeout}s: {text}")
        time.sleep(interval)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def twistd_command(args: Sequence[str]) -> list[str]:
    """The command line that runs ``twistd -n vncmux ARGS`` with this interpreter."""
    return [
        sys.executable,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        "vncmux",
        *args,
    ]


class VncmuxProcess:
    """A running ``twistd -n vncmux``; stdout (twistd's log) and stderr go to files so a
    chatty process can never block on a full pipe."""

    def __init__(
        self, args: Sequence[str], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "vncmux.log"
        self.stderr_path = workdir / "vncmux.stderr"
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(REPO) + (
            os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else ""
        )
        # twistd logs to stdout, a file here: unbuffered, so a test waiting for a log line
        # sees it when it is written, not when 8 KiB more have piled up behind it.
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        with open(self.log_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                twistd_command(self.args),
                cwd=str(REPO),
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        """Everything known, for failure messages."""
        return (
            f"vncmux {' '.join(self.args)} (returncode {self.returncode})\n"
            f"--- log ---\n{self.log}\n--- stderr ---\n{self.stderr}"
        )

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) occurs ``count`` times in the log; return the
        last match.  Fails at once, with the log, if the process exits meanwhile."""
        regex = re.compile(pattern)

        def check() -> re.Match[str] | None:
            matches = list(regex.finditer(self.log))
            if len(matches) >= count:
                return matches[count - 1]
            if self.returncode is not None:
                raise AssertionError(
                    f"vncmux exited while waiting for {pattern!r}\n{self.describe()}"
                )
            return None

        return wait_until(
            check, timeout, lambda: f"no {pattern!r} (x{count}) in the log\n{self.describe()}"
        )

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit by itself; its return code."""
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (twistd shuts down cleanly), SIGKILL after ``timeout``; the return code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        return int(self.popen.returncode)


def start_vncmux(
    args: Sequence[str], workdir: Path | None = None, env: dict[str, str] | None = None
) -> VncmuxProcess:
    """Start ``twistd -n vncmux ARGS`` (cwd = the repository, PYTHONPATH set so the plugin in
    twisted/plugins is found).  The caller stops it (or use the ``vncmux`` fixture)."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="vncmux-e2e-"))
    return VncmuxProcess(args, workdir, env)


def connect_unix(path: str | Path, timeout: float = 10.0) -> socket.socket:
    """Connect to a UNIX socket, retrying until it is there (the server may be starting)."""

    def attempt() -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            return None
        return s

    return wait_until(attempt, timeout, f"cannot connect to {path}")


def recv_exactly(sock: socket.socket, size: int, timeout: float) -> bytes:
    """Read exactly ``size`` bytes or fail at the deadline (EOF fails at once)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(
                f"got {got} of {size} bytes in {timeout}s: {b''.join(chunks)[-200:]!r}"
            )
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(size - got, 1 << 20))
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"EOF after {got} of {size} bytes: {b''.join(chunks)[-200:]!r}")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_until(sock: socket.socket, marker: bytes, timeout: float) -> bytes:
    """Read until ``marker`` has been received; everything read (may go past the marker)."""
    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"no {marker!r} within {timeout}s; got {data[-200:]!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"EOF before {marker!r}; got {data[-200:]!r}")
        data += chunk
    return data


def read_fd_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """Like recv_until for a raw fd (a pty master): select + os.read with a deadline."""
    import select

    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"no {marker!r} within {timeout}s on fd {fd}; got {data[-200:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"EOF before {marker!r}; got {data[-200:]!r}")
            data += chunk
    return data


def _paths_claimed_by_other_processes() -> set[str]:
    """Every argument of every other process's command line that looks like a pty path."""
    claimed: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        claimed.update(a.decode(errors="replace") for a in args if a.startswith(b"/dev/pts/"))
    return claimed


def fresh_pty(attempts: int = 16) -> tuple[int, int, str]:
    """``os.openpty()`` whose slave path no other process names on its command line.

    Why: pty numbers are recycled at once, and a leftover process (say a vncmux from an
    earlier test, still retrying ``--device /dev/pts/1``) grabs and locks the next pty that
    gets that number.  Rejected pairs stay open until we are done so the number is not
    handed straight back to us."""
    rejected: list[tuple[int, int]] = []
    try:
        for _ in range(attempts):
            master, slave = os.openpty()
            path = os.ttyname(slave)
            if path not in _paths_claimed_by_other_processes():
                return master, slave, path
            rejected.append((master, slave))
        raise AssertionError(f"every pty tried is named by another process: {rejected}")
    finally:
        for fds in rejected:
            for fd in fds:
                os.close(fd)


class Pty:
    """The far end of a serial line: a test writes device output to the master and reads
    what clients typed from it (vncmux opens ``path``, the slave)."""

    def __init__(self) -> None:
        self.master, self.slave, self.path = fresh_pty()
        self.received = b""

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_available(self) -> bytes:
        """Everything read from the master so far (non-blocking), accumulated."""
        os.set_blocking(self.master, False)
        try:
            while chunk := os.read(self.master, 65536):
                self.received += chunk
        except OSError:  # nothing more now (EAGAIN), or the slave side hung up (EIO)
            pass
        return self.received

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the peer closed/reset the connection (data still queued is discarded)."""

    def check() -> bool:
        sock.settimeout(0.05)
        try:
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True

    return wait_until(check, timeout, "the connection was not closed by vncmux")
