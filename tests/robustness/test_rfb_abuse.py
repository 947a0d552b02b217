"""Hostile VNC clients against a REAL ``twistd -n vncmux`` (pty device, raw TCP sockets).

Every case is an abuse that has broken some VNC server in the wild (oversized lengths,
stalls, bad pixel formats, floods).  Each must be handled as the spec says or close that one
client with a logged reason; afterwards the server, a VNC viewer connected before the abuse,
and a raw byte client must all still work -- the byte client receiving every byte the device
wrote, in order.

One vncmux process serves the whole module (``server``), so damage from one case would show
in the next; ``check_survivors`` runs after every case.  ``VNCMUX_CHURN_CYCLES`` sets the
connect/handshake/ZRLE/disconnect cycles of the memory test (default 2000; a developer run:
``VNCMUX_CHURN_CYCLES=10000 pytest tests/robustness/test_rfb_abuse.py -k churn``).
"""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.support.abuse_server import STALL, Server, rss_kib
from tests.support.net import recv_exactly
from tests.support.rfbkit import ZRLE, RFBError, Viewer, wait_closed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("abuse"))
    try:
        yield s
    finally:
        s.close()
        print(s.proc.describe())


@pytest.fixture
def srv(server: Server) -> Iterator[Server]:
    """The shared server, checked after the case (and its log shown if the case failed)."""
    mark = len(server.proc.log)
    yield server
    server.check_survivors()
    print(server.proc.log[mark:])


def viewer(srv: Server) -> Viewer:
    v = Viewer(srv.port).handshake()
    v.set_encodings(ZRLE, 0)
    return v


def closed_with_reason(srv: Server, v: Viewer, pattern: str) -> None:
    wait_closed(v.sock, 10)
    srv.proc.wait_for_log(pattern)
    v.close()


# -- handshake ---------------------------------------------------------------------------


@pytest.mark.parametrize("choice", [0, 2, 16, 19, 255])
def test_security_type_not_offered(srv: Server, choice: int) -> None:
    v = Viewer(srv.port)
    v.version()
    assert v.security_types() == [1]
    v.send(bytes([choice]))
    with pytest.raises(RFBError, match="security result 1.*not offered"):
        v.security_result()
    closed_with_reason(srv, v, rf"security type {choice} was not offered")


@pytest.mark.parametrize(
    "line, outcome",
    [
        (b"GET / HTTP/1.1\r\n", "not an RFB client"),
        (b"\x00" * 12, "not an RFB client"),
        (b"RFB 004.000\n", "unsupported RFB protocol version 4.0"),
        (b"RFB 003.889\n", None),  # Apple: spoken as 3.8
        (b"RFB 003.005\n", None),  # unknown minor: 3.3
    ],
)
def test_version_strings(srv: Server, line: bytes, outcome: str | None) -> None:
    v = Viewer(srv.port)
    v.version(line)
    if outcome is None:
        if line == b"RFB 003.889\n":
            assert v.security_types() == [1]
            v.send(b"\x01")
            v.security_result()
        else:
            assert v.u32() == 1  # 3.3: the server chooses None
        v.client_init()
        v.set_encodings(0)
        v.alive()
        v.close()
    else:
        closed_with_reason(srv, v, re.escape(outcome))


def test_byte_at_a_time_handshake(srv: Server) -> None:
    v = Viewer(srv.port)
    v.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert v.recv(12).startswith(b"RFB 003.008")
    for byte in b"RFB 003.008\n":
        v.send(bytes([byte]))
    assert v.security_types() == [1]
    v.send(b"\x01")
    v.security_result()
    v.client_init()
    for byte in struct.pack("!BxHi", 2, 1, ZRLE) + struct.pack(
        "!BBHHHH", 3, 0, 0, 0, v.width, v.height
    ):
        v.send(bytes([byte]))
    assert v.read_update()
    v.close()


def test_stalled_handshakes_evict_oldest(srv: Server) -> None:
    """More connections stuck in the handshake than the cap: the oldest are evicted, and a
    real viewer still gets in (QEMU CVE-2023-3354 was a crash on such an eviction)."""
    stuck = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
    for s in stuck[:4]:  # 20 - 16: the four oldest made room for the newest
        wait_closed(s, 10)
    srv.proc.wait_for_log(r"evicted: 16 handshakes in progress")
    v = viewer(srv)
    v.alive()
    v.close()
    for s in stuck:
        s.close()


# -- pixel formats -------------------------------------------------------------------------


def pixel_format(
    bpp: int,
    depth: int,
    true_colour: int,
    maxes: tuple[int, int, int],
    shifts: tuple[int, int, int],
) -> bytes:
    return struct.pack("!BxxxBBBBHHHBBBxxx", 0, bpp, depth, 0, true_colour, *maxes, *shifts)


@pytest.mark.parametrize(
    "fmt",
    [
        (0, 0, 1, (255, 255, 255), (0, 8, 16)),
        (1, 1, 1, (1, 1, 1), (0, 0, 0)),
        (7, 7, 1, (3, 3, 1), (0, 2, 4)),
        (24, 24, 1, (255, 255, 255), (0, 8, 16)),
        (33, 24, 1, (255, 255, 255), (0, 8, 16)),
        (255, 24, 1, (255, 255, 255), (0, 8, 16)),
        (32, 24, 1, (0, 255, 255), (0, 8, 16)),  # max 0
        (32, 24, 1, (5, 255, 255), (0, 8, 16)),  # max not 2^n - 1
        (32, 24, 1, (255, 255, 255), (40, 8, 16)),  # shift beyond bpp
        (16, 16, 1, (255, 255, 255), (0, 8, 12)),  # bits + shift > bpp
        (32, 24, 1, (255, 255, 255), (0, 4, 16)),  # overlapping masks
        (16, 24, 1, (31, 63, 31), (11, 5, 0)),  # depth > bpp
        (32, 24, 0, (0, 0, 0), (0, 0, 0)),  # colour map at depth 24
    ],
)
def test_insane_pixel_formats_close(srv: Server, fmt: tuple) -> None:  # type: ignore[type-arg]
    v = viewer(srv)
    v.send(pixel_format(*fmt))
    closed_with_reason(srv, v, r"invalid pixel format")


# -- ClientCutText -------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x80000000])
def test_cut_text_huge_length_then_stall(srv: Server, length: int) -> None:
    """The length is a claim: nothing is allocated for it; the text streams in and is cut.
    The client then stalls mid-message: the server keeps waiting (as the spec says) while
    everyone else is served, and memory does not grow by the claimed size."""
    before = rss_kib(srv.proc.pid)
    v = viewer(srv)
    v.send(struct.pack("!BxxxI", 6, length) + b"x" * (3 << 20))
    srv.check_survivors()  # while this client stalls in the middle of its message
    assert rss_kib(srv.proc.pid) - before < 64 * 1024
    v.close()


def test_cut_text_over_cap_resyncs(srv: Server) -> None:
    v = viewer(srv)
    size = (1 << 20) + 1
    v.send(struct.pack("!BxxxI", 6, size) + b"y" * size)
    v.alive()  # the stream is still in step after the long message
    srv.proc.wait_for_log(rf"clipboard text of {size} bytes cut to {1 << 20}")
    v.close()


def test_cut_text_zero_length(srv: Server) -> None:
    v = viewer(srv)
    v.send(struct.pack("!BxxxI", 6, 0))
    v.alive()
    v.close()


# -- SetEncodings / FBUR / unknown types / Fence --------------------------------------------


def test_set_encodings_65535_junk_entries(srv: Server) -> None:
    v = viewer(srv)
    rng = random.Random(65535)
    junk = [rng.randrange(-(1 << 31), 1 << 31) for _ in range(65535)]
    v.send(struct.pack(f"!BxH{len(junk)}i", 2, len(junk), *junk))
    v.alive()  # no usable encoding announced: served in Raw anyway
    v.close()


@pytest.mark.parametrize(
    "rect",
    [
        (0, 0, 0, 100),
        (0, 0, 100, 0),
        (65535, 0, 1, 1),
        (0, 65535, 1, 1),
        (65535, 65535, 65535, 65535),
        (600, 0, 65535, 10),
        (1, 1, 65535, 65535),
    ],
)
def test_fbur_degenerate_rects(srv: Server, rect: tuple[int, int, int, int]) -> None:
    v = viewer(srv)
    v.send(struct.pack("!BBHHHH", 3, 0, *rect))
    for x, y, w, h, _enc in v.read_update():
        assert x + w <= v.width and y + h <= v.height
    v.alive()
    v.close()


@pytest.mark.parametrize("mtype", [1, 7, 8, 9, 100, 127, 128, 200, 249, 252, 254])
def test_unknown_message_types_close(srv: Server, mtype: int) -> None:
    v = viewer(srv)
    v.send(bytes([mtype]) + b"\0" * 40)
    closed_with_reason(srv, v, rf"unknown message type {mtype}")


def test_fence_payload_over_64_closes(srv: Server) -> None:
    v = viewer(srv)
    v.send(struct.pack("!BxxxIB", 248, 1 << 31, 65) + b"f" * 65)
    closed_with_reason(srv, v, r"Fence payload of 65 bytes")


# -- clients that never read ------------------------------------------------------------------


def test_viewers_that_never_read_are_dropped(srv: Server) -> None:
    """Viewers that keep asking for updates (and Fence replies) but never read, while the
    device floods: each is dropped (stall timeout or output cap), memory stays bounded and
    the byte client loses nothing (QEMU CVE-2017-15124)."""
    before = rss_kib(srv.proc.pid)
    hogs = []
    for _ in range(4):
        v = viewer(srv)
        v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        v.send(struct.pack("!BxHi", 2, 1, -312))  # Fence, so requests are answered
        hogs.append(v)
    fence = struct.pack("!BxxxIB", 248, 1 << 31, 64) + b"f" * 64
    request = struct.pack("!BBHHHH", 3, 0, 0, 0, 65535, 65535)
    deadline = time.monotonic() + STALL * 5
    flood = b"\x1b[2J" + b"".join(f"\x1b[{r};1H{r:04d} flood".encode() for r in range(1, 25))
    written = b""
    while hogs and time.monotonic() < deadline:
        srv.device_write(flood)
        written += flood
        for v in list(hogs):
            try:
                # Long enough that only the server ends this: it drops the hog (the send
                # then fails at once with a reset), not our own timeout.
                v.sock.settimeout(STALL * 10)
                v.sock.sendall(request + fence * 20)
            except OSError:
                hogs.remove(v)
                v.close()
        # the byte client keeps reading: it must get every byte, in order
        got = recv_exactly(srv.byte_client, len(written), 10)
        assert got == written
        written = b""
    assert not hogs, "a viewer that never reads was never dropped"
    srv.proc.wait_for_log(r"not reading( for|: over)")
    assert rss_kib(srv.proc.pid) - before < 64 * 1024


# -- churn -----------------------------------------------------------------------------------


def test_churn_memory_flat(srv: Server) -> None:
    """connect / handshake / ZRLE update / disconnect, many times: RSS stays flat (per-
    connection zlib streams are freed: QEMU CVE-2019-20382).  Growth allowed: 8 MiB,
    far below what leaking a zlib stream (~256 KiB each) per cycle would cost."""
    cycles = int(os.environ.get("VNCMUX_CHURN_CYCLES", "2000"))
    # The first ~2000 cycles include one-time growth (the console scrolls, caches fill,
    # the allocator settles): measured only after them.
    warm = 2000

    def cycle(i: int) -> None:
        v = Viewer(srv.port)
        v.handshake()
        v.set_encodings(ZRLE)
        if i % 7 == 0:
            srv.device_write(f"churn {i}\r\n".encode())
        # a small area keeps the cycle cheap; the zlib stream is made (and must be freed)
        # all the same
        v.request(0, 0, 0, 128, 64)
        rects = v.read_update()
        assert rects and all(r[4] == ZRLE for r in rects), rects
        v.close()

    for i in range(warm):
        cycle(i)
    recv_exactly(srv.byte_client, sum(len(f"churn {i}\r\n") for i in range(warm) if i % 7 == 0), 10)
    start = rss_kib(srv.proc.pid)
    samples = [start]
    t0 = time.monotonic()
    for i in range(warm, warm + cycles):
        cycle(i)
        if (i - warm + 1) % max(1, cycles // 4) == 0:
            samples.append(rss_kib(srv.proc.pid))
    elapsed = time.monotonic() - t0
    recv_exactly(
        srv.byte_client,
        sum(len(f"churn {i}\r\n") for i in range(warm, warm + cycles) if i % 7 == 0),
        10,
    )
    grown = samples[-1] - start
    print(f"churn: {cycles} cycles in {elapsed:.1f}s, RSS KiB {samples}")
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over {cycles} cycles: {samples}"
    # a leak grows with every cycle: the second half must be as flat as the first
    assert samples[-1] - samples[len(samples) // 2] < 2 * 1024, samples
