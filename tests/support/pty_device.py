"""A pty standing in for a serial line: the test holds the master, vncmux opens the slave
path as its ``--device``."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

from tests.support.waiting import WaitTimeout


def read_fd_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """Read a raw fd (a pty master) until ``marker`` arrived: select + os.read with a
    deadline; everything read (may go past the marker)."""
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
