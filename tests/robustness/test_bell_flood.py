"""A flood of BEL from the device cannot starve the viewers (issue 13, item 9).

A REAL ``twistd -n vncmux`` on a pty: ten viewers keep requesting updates and reading what
comes, a byte client reads the device's output, and the test writes 1 MiB of BEL into the
pty followed by a marker.  An eleventh viewer meanwhile types keys that the device echoes
(the test reads the pty master and writes back what vncmux typed) and times each until a
FramebufferUpdate covering the echoed row arrives.

Before bells were coalesced, every BEL went out as one Bell message to every viewer: ten
million messages, 16 s of flood (as much CPU) on a quiet 2-core machine, an echoed key
1.9 s to show (5.6 s at worst).  Now a run of BELs is one terminal token and the viewers
hear at most one bell per frame interval: the flood is gone in well under a second, each
viewer hears about ten bells, and an echo shows in a few milliseconds.
"""

from __future__ import annotations

import os
import re
import select
import selectors
import statistics
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.net import connect_unix, free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RAW, ZRLE, RFBError, Viewer
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import WaitTimeout, wait_until

MIB = 1 << 20
VIEWERS = 10
FLOOD = b"\x07" * MIB
MARKER = b"<bell flood done>"
#: The flood must be consumed by then (it takes well under a second; unmerged, 9 to 16 s).
FLOOD_DEADLINE = 5.0
#: An echoed key shows within this while the flood runs (issue 13 asks for under 200 ms).
LATENCY_BOUND = 0.2
#: Display's shortest frame interval: at most one bell per viewer in each.
FRAME_INTERVAL = 0.005
#: Probes wanted while the flood runs, so the latency figures describe the flood.  The
#: flood now lasts a few tens of milliseconds, a probe a few: six to ten fit in it.
MIN_PROBES = 3
PROBE_TIMEOUT = 10.0
#: Row 0 is where every probe's echo lands: the test echoes ``CR key``.
ECHO_ROW = 0
ROWS = 24

Rect = tuple[int, int, int, int, int]
_BELLS = re.compile(rb"\x02+")


class ServerStream:
    """Server-to-client RFB messages parsed as bytes arrive on a non-blocking socket.

    Counts Bell messages (a run of them in one regex step, so a million cost the test
    little and the viewer never falls behind) and returns each whole FramebufferUpdate's
    rectangles.  Understands ZRLE, Raw (32 bpp), CopyRect, the size pseudo-encodings,
    ServerCutText, colour maps and fences."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.sock = viewer.sock
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.bells = 0
        self.updates = 0
        self.closed = False

    def pump(self) -> list[list[Rect]]:
        """Read what is there now and parse it; the rectangles of each update completed."""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buf += chunk
        return self._parse()

    def _parse(self) -> list[list[Rect]]:
        done: list[list[Rect]] = []
        buf = self.buf
        pos = 0
        while pos < len(buf):
            kind = buf[pos]
            if kind == 2:
                run = _BELLS.match(buf, pos)
                assert run is not None
                self.bells += run.end() - pos
                end: int | None = run.end()
            elif kind == 0:
                parsed = _update(buf, pos)
                if parsed is None:
                    break
                end, rects = parsed
                self.updates += 1
                done.append(rects)
            elif kind == 3:
                end = _sized(buf, pos + 4, 4, cut_text=True)
            elif kind == 1:
                end = None if len(buf) < pos + 6 else pos + 6 + 6 * _u16(buf, pos + 4)
            elif kind == 248:
                end = None if len(buf) < pos + 9 else pos + 9 + buf[pos + 8]
            else:
                raise RFBError(
                    f"unexpected server message {kind} at {bytes(buf[pos : pos + 16])!r}"
                )
            if end is None or end > len(buf):
                break
            pos = end
        del buf[:pos]
        return done


def _u16(buf: bytearray, at: int) -> int:
    return int(struct.unpack_from("!H", buf, at)[0])


def _sized(buf: bytearray, at: int, width: int, cut_text: bool = False) -> int | None:
    """The end of a block whose ``width``-byte length is at ``at``, or None if not all here."""
    if len(buf) < at + width:
        return None
    length = int.from_bytes(buf[at : at + width], "big")
    if cut_text and length >= 0x80000000:  # extended clipboard: a negative length
        length = (1 << 32) - length
    return at + width + length


def _update(buf: bytearray, pos: int) -> tuple[int, list[Rect]] | None:
    """A whole FramebufferUpdate at ``pos``: its end and rectangles; None if not all here."""
    if len(buf) < pos + 4:
        return None
    count = _u16(buf, pos + 2)
    at = pos + 4
    rects: list[Rect] = []
    for _ in range(count):
        if len(buf) < at + 12:
            return None
        x, y, w, h, enc = struct.unpack_from("!HHHHi", buf, at)
        at += 12
        if enc == ZRLE:
            end = _sized(buf, at, 4)
            if end is None:
                return None
            at = end
        elif enc == RAW:
            at += w * h * 4
        elif enc == 1:  # CopyRect
            at += 4
        elif enc == -308:  # ExtendedDesktopSize
            if len(buf) < at + 1:
                return None
            at += 4 + 16 * buf[at]
        elif enc != -307:  # DesktopSize has no body
            raise RFBError(f"unexpected encoding {enc}")
        if at > len(buf):
            return None
        rects.append((x, y, w, h, enc))
    return at, rects


def _request(stream: ServerStream) -> None:
    """An incremental FramebufferUpdateRequest for the whole screen."""
    v = stream.viewer
    stream.sock.sendall(struct.pack("!BBHHHH", 3, 1, 0, 0, v.width, v.height))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _background(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _connect(port: int) -> Viewer:
    """A viewer past the handshake that got its first full update (before any bell)."""
    viewer = Viewer(port).handshake()
    viewer.set_encodings(ZRLE, RAW)
    viewer.alive()
    return viewer


def test_bell_flood_does_not_starve_viewers(
    vncmux: Callable[..., VncmuxProcess], pty: Pty, short_tmp: Path
) -> None:
    port = free_tcp_port()
    sock_path = short_tmp / "bytes.sock"
    proc = vncmux(
        [
            "--device",
            pty.path,
            "--vnc",
            f"127.0.0.1:{port - 5900}",
            "--socket",
            f"unix:{sock_path}",
            "--rows",
            str(ROWS),
        ]
    )
    proc.wait_for_log(r"VNC server listening", timeout=30)
    proc.wait_for_log(r"Device .* opened", timeout=30)

    stop = threading.Event()
    errors: list[BaseException] = []

    # The byte client: everything the device says, until the marker shows the flood is over.
    byte_client = connect_unix(sock_path)
    flood_done = threading.Event()
    flood_done_at = [0.0]

    def read_bytes() -> None:
        tail = b""
        byte_client.settimeout(0.1)
        while not stop.is_set():
            try:
                chunk = byte_client.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError("vncmux closed the byte client")
            if not flood_done.is_set() and MARKER in tail + chunk:
                flood_done_at[0] = time.monotonic()
                flood_done.set()
            tail = (tail + chunk)[-len(MARKER) :]

    # Ten viewers that ask for every update and read everything, bells included.
    crowd = [ServerStream(_connect(port)) for _ in range(VIEWERS)]
    for stream in crowd:
        _request(stream)

    def read_viewers() -> None:
        with selectors.DefaultSelector() as selector:
            for stream in crowd:
                selector.register(stream.sock, selectors.EVENT_READ, stream)
            while not stop.is_set():
                for key, _ in selector.select(0.05):
                    stream = key.data
                    for _rects in stream.pump():
                        _request(stream)
                    if stream.closed:
                        selector.unregister(stream.sock)

    # The device echoes: what vncmux types comes back after a CR, so every probe's key
    # lands in column 0 of ``ECHO_ROW`` and changes that row.
    def echo() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([pty.master], [], [], 0.05)
            if ready:
                typed = os.read(pty.master, 4096)
                os.write(pty.master, b"\r" + typed)

    probe = ServerStream(_connect(port))
    row_top = ECHO_ROW * probe.viewer.height // ROWS
    row_bottom = (ECHO_ROW + 1) * probe.viewer.height // ROWS

    def measure(keysym: int) -> float:
        """Type ``keysym``; seconds until an update covering the echo row arrives."""
        started = time.monotonic()
        probe.sock.sendall(
            struct.pack("!BBxxI", 4, 1, keysym) + struct.pack("!BBxxI", 4, 0, keysym)
        )
        _request(probe)
        deadline = started + PROBE_TIMEOUT
        while True:
            for rects in probe.pump():
                if any(y < row_bottom and y + h > row_top for _, y, _, h, _ in rects):
                    return time.monotonic() - started
                _request(probe)
            if probe.closed:
                raise AssertionError("vncmux closed the probing viewer")
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"no update of row {ECHO_ROW} {PROBE_TIMEOUT}s after a key")
            select.select([probe.sock], [], [], left)

    def write_flood() -> None:
        view = memoryview(FLOOD + MARKER)
        while view:  # small writes: an echo waits behind at most one of them
            view = view[os.write(pty.master, view[:4096]) :]

    threads = [_background(f, errors) for f in (read_bytes, read_viewers, echo)]
    measure(ord("0"))  # the echo path works before the flood starts
    cpu_before = _cpu_seconds(proc.pid)
    flood_started = time.monotonic()
    threads.append(_background(write_flood, errors))

    latencies: list[float] = []
    try:
        while not flood_done.is_set() and not errors:
            if time.monotonic() - flood_started > FLOOD_DEADLINE:
                break
            try:
                latencies.append(measure(ord("a") + len(latencies) % 26))
            except WaitTimeout:  # counted as the bound's breach it is; no more probes
                latencies.append(PROBE_TIMEOUT)
                break
        flood_done.wait(max(0.0, flood_started + FLOOD_DEADLINE - time.monotonic()))
        flood_seconds = (flood_done_at[0] or time.monotonic()) - flood_started
        if flood_done.is_set() and PROBE_TIMEOUT not in latencies:
            # One more echo after the flood: every bell the flood rang went out before the
            # update that shows it, so the crowd has counted them all once it has it too.
            before = [s.updates for s in crowd]
            measure(ord("#"))
            wait_until(
                lambda: all(s.updates > n or s.closed for s, n in zip(crowd, before)),
                10,
                "the crowd never got the update after the flood",
            )
        window = time.monotonic() - flood_started
        cpu = _cpu_seconds(proc.pid) - cpu_before  # until the viewers caught up
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        byte_client.close()
        probe.viewer.close()
        for stream in crowd:
            stream.viewer.close()

    bells = [s.bells for s in crowd]
    figures = (
        f"flood {flood_seconds:.2f} s (vncmux CPU {cpu:.2f} s), bells received "
        f"{sum(bells)} in all ({min(bells)}-{max(bells)} per viewer), "
        f"{len(latencies)} probes during the flood: key->update latency p50 "
        f"{statistics.median(latencies) * 1000 if latencies else float('nan'):.0f} ms, "
        f"max {max(latencies, default=float('nan')) * 1000:.0f} ms "
        f"(each: {[round(x * 1000) for x in latencies]})"
    )
    print(figures)
    assert not errors, f"{errors!r}; {figures}"
    assert proc.returncode is None, proc.describe()
    assert flood_done.is_set(), f"the flood was not consumed in {FLOOD_DEADLINE}s; {figures}"
    assert not any(s.closed for s in crowd), f"a viewer was dropped; {figures}"
    # Every viewer heard the bell, and at most once per frame interval (plus the one that
    # rings at once and the one at the end of an interval).
    bound = window / FRAME_INTERVAL + 2
    assert min(bells) >= 1, f"a viewer never heard the bell; {figures}"
    assert max(bells) <= bound, f"more than one bell per frame (<= {bound:.0f}); {figures}"
    assert len(latencies) >= MIN_PROBES, f"too few probes during the flood; {figures}"
    assert statistics.median(latencies) < LATENCY_BOUND / 2, figures
    assert max(latencies) < LATENCY_BOUND, figures
