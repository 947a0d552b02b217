"""Hostile device output against a REAL ``twistd -n vncmux``: escape sequences that have
frozen or exhausted terminal emulators.  The console must keep going, the reactor must stay
responsive (a byte client's input reaches the device in well under a second while the flood
runs), every flood byte must still reach a byte client in order, memory stays bounded, and a
VNC viewer is still served afterwards.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.abuse_server import Server, rss_kib
from tests.support.net import connect_unix
from tests.support.pty_device import read_fd_until
from tests.support.rfbkit import ZRLE, Viewer

MIB = 1 << 20


def _random(size: int) -> bytes:
    return random.Random(size).randbytes(size)


FLOODS: dict[str, bytes] = {
    "huge-csi-number": b"\x1b[" + b"9" * 200_000 + b"m" + b"\x1b[99999999999;99999999999H",
    "many-csi-params": b"\x1b[" + b"1;" * 100_000 + b"m" + b"\x1b[" + b"38;5;" * 20_000 + b"H",
    "csi-question-1-M": b"\x1b[?1M" * 20_000 + b"\x1b[?1000h\x1b[?1M\x1b[?1000l",
    "huge-repeat-and-erase": (
        b"x\x1b[999999999b"
        + b"\x1b[999999999@\x1b[999999999L\x1b[999999999P"
        + b"\x1b[999999999X\x1b[999999999M"
    )
    * 200,
    "unterminated-osc-10MiB": b"\x1b]0;" + b"A" * (10 * MIB),
    "unterminated-dcs-10MiB": b"\x1bP1$r" + b"q" * (10 * MIB),
    "combining-100k": b"e" + "\u0301".encode() * 100_000 + b"\r\n",
    "random-2MiB": _random(2 * MIB),
    "bell-1MiB": b"\x07" * MIB,  # issue 13: a bell flood costs what text costs
    # Issue 13: queries whose answers go to the device (which may echo them back).
    "device-queries": b"\x1b[>c\x1b[c\x1b[5n\x1b[6n" * 2000,
}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A long stall timeout: the floods below are meant to hold the device up for a while.
    c = Server(tmp_path_factory.mktemp("console"), stall=30, byte_client=False)
    try:
        yield c
    finally:
        c.close()
        print(c.proc.describe())


@pytest.mark.parametrize("name", list(FLOODS))
def test_hostile_output(console: Server, name: str) -> None:
    flood = FLOODS[name] + b"\x1b\\\x07\x1bc" + f"after {name}\r\n".encode()
    expected = hashlib.sha256(flood).hexdigest()
    client = connect_unix(console.sock_path)
    received = hashlib.sha256()
    got = [0]
    reader_error: list[BaseException] = []

    def read() -> None:
        try:
            client.settimeout(60)
            while got[0] < len(flood):
                chunk = client.recv(1 << 20)
                if not chunk:
                    raise AssertionError(f"byte client closed after {got[0]} bytes")
                received.update(chunk)
                got[0] += len(chunk)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            reader_error.append(e)

    def write() -> None:
        view = memoryview(flood)
        while view:
            view = view[os.write(console.pty.master, view[: 64 * 1024]) :]

    reader = threading.Thread(target=read, daemon=True)
    writer = threading.Thread(target=write, daemon=True)
    base = rss_kib(console.proc.pid)
    reader.start()
    writer.start()
    worst = 0.0
    probes = 0
    deadline = time.monotonic() + 120
    while (writer.is_alive() or reader.is_alive()) and time.monotonic() < deadline:
        probes += 1
        marker = f"<probe{probes}>".encode()
        t0 = time.monotonic()
        client.sendall(marker)
        read_fd_until(console.pty.master, marker, 10)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.05)  # pacing between probes, not synchronisation
    writer.join(5)
    reader.join(60)
    assert not reader_error, reader_error
    assert got[0] == len(flood) and received.hexdigest() == expected, "bytes lost or altered"
    print(
        f"{name}: {len(flood)} bytes, {probes} probes, worst input latency {worst * 1000:.0f} ms, "
        f"RSS {base} -> {rss_kib(console.proc.pid)} KiB"
    )
    assert worst < 1.0, f"input took {worst:.2f} s to reach the device during the flood"
    assert rss_kib(console.proc.pid) - base < 128 * 1024
    console.viewer.alive()
    fresh = Viewer(console.port).handshake()
    fresh.set_encodings(ZRLE)
    fresh.alive()
    fresh.close()
    client.close()
    assert console.proc.returncode is None
