"""Blocking socket helpers for tests that talk to a real vncmux: every read has a deadline,
and EOF or a timeout fails with the bytes seen so far."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.support.waiting import WaitTimeout, wait_until


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
