"""Input to a device that does not read is throttled, not buffered (issue 13, item 2).

The device reads nothing, a hung board or a paused guest: a UNIX socket served by the test
that accepts the connection and then does not read, or a pty whose slave vncmux opens as a
serial port and whose master the test does not read.  A byte client then tries to write 200 MiB.  Before
input had flow control, vncmux read all of it into the device's write buffer (+200 MB of
RSS, and the client's writes "succeeded"); now the client's writes block after a few
megabytes of kernel buffers, vncmux's memory stays flat, and once the device reads again
every byte arrives, in order.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.abuse_server import rss_kib
from tests.support.net import connect_unix
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess

MiB = 1024 * 1024
ATTEMPT = 200 * MiB
# What may be accepted while the device reads nothing: the client's send buffer, vncmux's
# receive buffer, one read per client, the device transport's 64 KiB, the device socket's
# buffers.  A few MiB at most; the bound keeps a wide margin.
ACCEPTED_BOUND = 32 * MiB
RSS_GROWTH_BOUND = 48 * MiB

PERIOD = 251  # the stream's byte at offset k is k % 251: order and loss both show
PATTERN = bytes(i % PERIOD for i in range(PERIOD + MiB))


def chunk_at(offset: int, size: int) -> bytes:
    start = offset % PERIOD
    return PATTERN[start : start + size]


def write_until_blocked(sock: socket.socket, total: int, quiet: float) -> int:
    """Write the pattern until ``total`` bytes are accepted or the socket takes nothing for
    ``quiet`` seconds; the number of bytes accepted."""
    sock.setblocking(False)
    sent = 0
    last_progress = time.monotonic()
    while sent < total:
        _, writable, _ = select.select([], [sock], [], 0.1)
        if writable:
            try:
                n = sock.send(chunk_at(sent, min(MiB, total - sent)))
            except BlockingIOError:
                n = 0
            if n:
                sent += n
                last_progress = time.monotonic()
                continue
        if time.monotonic() - last_progress >= quiet:
            break
    return sent


def read_exactly_pattern(fd: int, offset: int, size: int, timeout: float) -> None:
    """Read ``size`` bytes from ``fd`` and check they are the pattern from ``offset`` on."""
    deadline = time.monotonic() + timeout
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        assert left > 0, f"got {got} of {size} bytes in {timeout}s"
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        data = os.read(fd, min(MiB, size - got))
        assert data, f"device closed after {got} of {size} bytes"
        assert data == chunk_at(offset + got, len(data)), f"wrong bytes at {offset + got}"
        got += len(data)


@contextmanager
def unix_device(directory: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    """A QEMU-like console socket; the fd of the accepted connection, which reads nothing
    until the test says so."""
    path = directory / "dev.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(10)
    accepted: list[socket.socket] = []

    def device_fd() -> int:
        if not accepted:
            accepted.append(listener.accept()[0])
        return accepted[0].fileno()

    try:
        yield f"unix:{path}", device_fd
    finally:
        for sock in [*accepted, listener]:
            sock.close()


@contextmanager
def tty_device() -> Iterator[tuple[str, Callable[[], int]]]:
    """A pty whose slave vncmux opens as a serial port; the master (the board) reads nothing
    until the test says so, so vncmux's writes to the slave block."""
    pty = Pty()
    try:
        yield pty.path, lambda: pty.master
    finally:
        pty.close()


@pytest.mark.parametrize("kind", ["unix", "tty"])
def test_a_client_writing_to_a_device_that_does_not_read_is_throttled(
    vncmux: Callable[..., VncmuxProcess], short_tmp: Path, kind: str
) -> None:
    client_path = short_tmp / "bytes.sock"
    device_cm = unix_device(short_tmp) if kind == "unix" else tty_device()
    with device_cm as (device_arg, device_fd):
        proc = vncmux(["--vnc", "none", "--device", device_arg, "--socket", f"unix:{client_path}"])
        fd = device_fd()  # and then the device reads nothing
        proc.wait_for_log(r"Device \S+ opened")
        client = connect_unix(client_path)
        try:
            proc.wait_for_log(r"Client .* connected")
            before = rss_kib(proc.pid) * 1024
            accepted = write_until_blocked(client, ATTEMPT, quiet=2.0)
            growth = rss_kib(proc.pid) * 1024 - before
            assert accepted < ACCEPTED_BOUND, (
                f"the client wrote {accepted / MiB:.0f} MiB into a device that reads nothing: "
                "its input was not throttled"
            )
            assert growth < RSS_GROWTH_BOUND, f"vncmux grew by {growth / MiB:.0f} MiB"
            assert proc.returncode is None

            # the device reads again: everything accepted arrives, whole and in order, and
            # the client may write again (it was resumed, not dropped; less than what the
            # buffers hold, as this test reads the device only after the write)
            read_exactly_pattern(fd, 0, accepted, timeout=10)
            more = min(accepted // 2, 64 * 1024)
            client.settimeout(10)
            client.sendall(chunk_at(accepted, more))
            read_exactly_pattern(fd, accepted, more, timeout=10)
            assert proc.returncode is None
        finally:
            client.close()
