"""End to end: replay of the output history to byte clients that connect late, on a real
``twistd -n vncmux --vnc none`` fed by a pty the test owns.

The device writes a counter stream, numbered lines ``%08d\\n``, so whatever a client
received says by itself whether anything is missing or doubled: its lines must be
consecutive numbers, the first one whole (the replay starts at a line boundary), the last
one the last written.  A watcher connected from the start, without replay, must get every
line.  Every wait is a condition with a deadline.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.net import connect_unix
from tests.support.pty_device import fresh_pty
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

Start = Callable[..., VncmuxProcess]

LINE = 9  # b"%08d\n"
REPLAY = 64 * 1024
TIMEOUT = 60.0


def counter(first: int, last: int) -> bytes:
    """Lines ``first``..``last`` inclusive."""
    return b"".join(b"%08d\n" % n for n in range(first, last + 1))


def counter_lines(data: bytes, what: str) -> tuple[int, int]:
    """(first, last) line numbers of ``data``, which must be whole, consecutive lines;
    otherwise an AssertionError that says where the first gap or duplicate is."""
    assert data, f"{what}: received nothing"
    assert re.match(rb"\d{8}\n", data), f"{what}: does not start at a line: {data[:20]!r}"
    first = int(data[:8])
    count = len(data) // LINE
    expected = counter(first, first + count - 1)
    if data != expected or len(data) % LINE:
        bad = next(
            (i for i in range(0, len(data), LINE) if data[i : i + LINE] != expected[i : i + LINE]),
            len(expected),
        )
        raise AssertionError(
            f"{what}: line {bad // LINE} after {first} is {data[bad : bad + LINE]!r}, "
            f"expected {expected[bad : bad + LINE]!r} (a gap or a duplicate)"
        )
    return first, first + count - 1


class Collector(threading.Thread):
    """Everything one client socket receives, read in the background (so that vncmux never
    has to pause the device for it)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.chunks: list[bytes] = []
        self.lock = threading.Lock()
        self.stopping = False
        self.start()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.chunks.append(chunk)

    @property
    def data(self) -> bytes:
        with self.lock:
            joined = b"".join(self.chunks)
            self.chunks = [joined]
            return joined

    def wait_for_line(self, number: int, what: str) -> bytes:
        """Wait until the stream ends with line ``number``; everything received."""
        tail = b"%08d\n" % number
        return wait_until(
            lambda: self.data if self.data.endswith(tail) else None,
            TIMEOUT,
            lambda: f"{what}: never got line {number}; last bytes {self.data[-30:]!r}",
        )

    def close(self) -> None:
        self.stopping = True
        self.join(5)
        self.sock.close()


class Writer(threading.Thread):
    """Writes lines ``first``..``last`` to the pty master, in pieces that cut lines."""

    def __init__(self, master: int, first: int, last: int) -> None:
        super().__init__(daemon=True)
        self.master, self.payload = master, counter(first, last)
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            view = memoryview(self.payload)
            while view:
                view = view[os.write(self.master, view[:4001]) :]
        except BaseException as e:  # noqa: BLE001 (reported by the test thread)
            self.error = e

    def finish(self) -> None:
        self.join(TIMEOUT)
        assert not self.is_alive(), "the device writer is stuck (vncmux stopped reading?)"
        assert self.error is None, f"the device writer failed: {self.error!r}"


@pytest.mark.parametrize("form", ["chardev replay=", "--socket-replay"])
def test_a_late_client_gets_the_tail_then_the_live_stream_without_gap_or_duplicate(
    vncmux: Start, short_tmp: Path, form: str
) -> None:
    watch, late = short_tmp / "watch.sock", short_tmp / "late.sock"
    if form == "chardev replay=":
        sockets = [
            "--socket",
            f"unix:{watch}",
            "--chardev",
            f"socket,id=late,path={late},server=on,replay=64K",
        ]
    else:
        sockets = [
            "--chardev",
            f"socket,id=watch,path={watch},server=on",
            "--socket-ro",
            f"unix:{late}",
            "--socket-replay",
            "64K",
        ]
    master, slave, path = fresh_pty()
    collectors: list[Collector] = []
    try:
        proc = vncmux(["--vnc", "none", "--device", path, *sockets])
        proc.wait_for_log(rf"Device {path} opened", timeout=30)
        wait_until(lambda: watch.exists() and late.exists(), 15, proc.describe)
        watcher = Collector(connect_unix(watch))
        collectors.append(watcher)
        proc.wait_for_log(r"Client .* connected to", count=1)

        # 1. 100 KB of output before anyone with replay connects
        before = 100_000 // LINE + 1  # lines 0..before-1
        Writer(master, 0, before - 1).finish()
        assert watcher.wait_for_line(before - 1, "watcher") == counter(0, before - 1)

        # 2. a late client while the device is quiet: exactly the last 64K, cut to a line
        quiet = Collector(connect_unix(late))
        collectors.append(quiet)
        proc.wait_for_log(r"Client .* connected to", count=2)

        # 3. more output, and a late client connecting while it streams
        last = before + 20_000 - 1
        writer = Writer(master, before, last)
        busy = Collector(connect_unix(late))
        collectors.append(busy)
        proc.wait_for_log(r"Client .* connected to", count=3)
        writer.finish()

        assert counter_lines(watcher.wait_for_line(last, "watcher"), "watcher") == (0, last)

        window = before * LINE - REPLAY  # where the quiet client's replay window began
        first_whole_line = -(-window // LINE)
        got = quiet.wait_for_line(last, "quiet late client")
        assert counter_lines(got, "quiet late client") == (first_whole_line, last)

        got = busy.wait_for_line(last, "busy late client")
        first, end = counter_lines(got, "busy late client")
        assert end == last
        assert len(got) >= REPLAY - (LINE - 1)  # a full replay (at most a line cut), then live
        assert first >= first_whole_line  # no more than the window
        assert proc.returncode is None
    finally:
        for collector in collectors:
            collector.close()
        os.close(master)
        os.close(slave)
