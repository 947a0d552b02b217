"""A viewer resizes the console (SetDesktopSize) on a real ``twistd -n vncmux``.

Under ``exec:`` the program's pty follows: a shell that prints ``stty size`` on SIGWINCH
is read through a byte socket.  Both viewers, raw RFB clients written from the spec
(tests/support/rfbkit.py), get the new size as ExtendedDesktopSize: the asker with reason
1 (this client), the other with reason 2 (another client), and both keep getting
updates.  A serial device (a pty path) keeps its size unless ``--viewer-resize on``: the
asker hears status 1 (resize prohibited) with the size unchanged.  vncmux's own noVNC page
with ``?resize=remote`` (headless Chromium, tests/support/browser.py) fits the console
to the browser's screen area.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import pytest

from tests.support.browser import CDP, browser, wait_for  # noqa: F401 -- a fixture
from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import Viewer
from tests.support.vncmux_process import VncmuxProcess

RAW, EDS = 0, -308
Start = Callable[..., VncmuxProcess]

# Prints the window size at start and on every SIGWINCH (the trap runs between sleeps).
WINCH_SHELL = (
    "exec:sh -c 'trap \"echo winch; stty size\" WINCH; stty size; while :; do sleep 0.1; done'"
)


def set_desktop_size(width: int, height: int) -> bytes:
    """SetDesktopSize with one screen covering the framebuffer (what TigerVNC and noVNC
    send)."""
    return struct.pack("!BxHHBx", 251, width, height, 1) + struct.pack(
        "!IHHHHI", 0, 0, 0, width, height, 0
    )


def sized_viewer(port: int) -> Viewer:
    """A viewer that announced ExtendedDesktopSize, with its first frame read."""
    v = Viewer(port).handshake()
    v.set_encodings(RAW, EDS)
    v.request(0)
    first = v.read_update()
    assert (0, 0, v.width, v.height, EDS) in first  # the server announces the extension
    v.request(1)
    return v


def size_answer(v: Viewer, timeout: float = 15.0) -> tuple[int, int, int, int]:
    """Read updates (asking for the next each time) until one holds an ExtendedDesktopSize
    that is not the server's own; its (reason, status, width, height)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rects = v.read_update()
        v.request(1, w=65535, h=65535)
        for x, y, w, h, enc in rects:
            if enc == EDS and (x, y) != (0, 0):
                return x, y, w, h
    raise AssertionError("no ExtendedDesktopSize answer within the deadline")


def full_frame(v: Viewer, area: int, timeout: float = 15.0) -> bool:
    """Read updates until one whose Raw rectangles cover ``area`` pixels."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rects = v.read_update()
        if sum(w * h for _x, _y, w, h, enc in rects if enc == RAW) == area:
            return True
    return False


def read_until(sock: socket.socket, marker: bytes, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{marker!r} not seen; got {data[-300:]!r}")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"byte socket closed before {marker!r}; got {data[-300:]!r}")
        data += chunk
    return data


def test_set_desktop_size_resizes_the_exec_pty_and_tells_both_viewers(vncmux: Start) -> None:
    port, bytes_port = free_tcp_port(), free_tcp_port()
    proc = vncmux(
        [
            "--device",
            WINCH_SHELL,
            "--vnc",
            f"127.0.0.1:{port - 5900}",
            "--socket",
            f"tcp:{bytes_port}:interface=127.0.0.1",
            "--socket-replay",
            "4K",
        ]
    )
    proc.wait_for_log(r"Started sh -c .* \(pid \d+\)", timeout=30)
    tap = socket.create_connection(("127.0.0.1", bytes_port), timeout=15)
    read_until(tap, b"24 80")  # replayed: the start size
    asker, other = sized_viewer(port), sized_viewer(port)
    cw, ch = asker.width // 80, asker.height // 24
    assert (asker.width, asker.height) == (80 * cw, 24 * ch)
    want_w, want_h = 100 * cw, 30 * ch
    asker.send(set_desktop_size(want_w + cw - 1, want_h + ch - 1))  # whole cells only

    assert size_answer(asker) == (1, 0, want_w, want_h)
    assert size_answer(other) == (2, 0, want_w, want_h)
    seen = read_until(tap, b"30 100")  # the program's pty follows
    assert b"winch" in seen  # told by SIGWINCH
    proc.wait_for_log(r"resized to 100x30 cells for viewer 127\.0\.0\.1:\d+")

    # Both keep working at the new size: a full frame covers it (after what earlier,
    # incremental requests brought).
    for v in (asker, other):
        v.request(0, w=want_w, h=want_h)
        assert full_frame(v, want_w * want_h)
    for v in (asker, other):
        v.close()
    tap.close()


@pytest.mark.parametrize("allow", [False, True])
def test_a_serial_device_keeps_its_size_unless_allowed(vncmux: Start, allow: bool) -> None:
    device = Pty()
    port = free_tcp_port()
    args = ["--device", device.path, "--vnc", f"127.0.0.1:{port - 5900}"]
    if allow:
        args += ["--viewer-resize", "on"]
    proc = vncmux(args)
    try:
        proc.wait_for_log(r"Device .* opened", timeout=30)
        v = sized_viewer(port)
        cw, ch = v.width // 80, v.height // 24
        v.send(set_desktop_size(60 * cw, 20 * ch))
        if allow:
            assert size_answer(v) == (1, 0, 60 * cw, 20 * ch)
        else:
            assert size_answer(v) == (1, 1, 80 * cw, 24 * ch)  # resize prohibited
            proc.wait_for_log(r"refused, the device cannot be told of a new size")
        v.alive()  # the viewer still works
        v.close()
    finally:
        device.close()


def test_novnc_page_with_resize_remote_fits_the_console_to_the_window(
    vncmux: Start,
    browser: CDP,  # noqa: F811 -- the fixture imported above
) -> None:
    """noVNC's remote resizing from vncmux's own page (``?resize=remote``): the console
    becomes the cells that fit the browser's screen area, and the program is told."""
    tcp_port, ws_port, bytes_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    proc = vncmux(
        [
            "--device",
            WINCH_SHELL,
            "--vnc",
            f"127.0.0.1:{tcp_port - 5900},websocket={ws_port}",
            "--socket",
            f"tcp:{bytes_port}:interface=127.0.0.1",
        ]
    )
    proc.wait_for_log(r"Started sh -c .* \(pid \d+\)", timeout=45)
    probe = Viewer(tcp_port).handshake()
    cw, ch = probe.width // 80, probe.height // 24
    probe.close()
    tap = socket.create_connection(("127.0.0.1", bytes_port), timeout=30)
    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"http://127.0.0.1:{ws_port}/?resize=remote")
    box = wait_for(
        lambda: browser.evaluate(
            "(e => (r => e && r.width > 0 && [r.width, r.height])(e && e.getBoundingClientRect()))"
            "(location.search === '?resize=remote' && document.getElementById('screen'))"
        ),
        "the page's screen area",
    )
    cols, rows = int(box[0]) // cw, int(box[1]) // ch
    assert (cols, rows) != (80, 24)  # the window is not the start size by chance
    proc.wait_for_log(rf"resized to {cols}x{rows} cells for viewer", timeout=45)
    read_until(tap, b"%d %d" % (rows, cols), timeout=30)
    canvas = "(c => c && [c.width, c.height])(document.querySelector('#screen canvas'))"
    wait_for(lambda: browser.evaluate(canvas) == [cols * cw, rows * ch], "noVNC's new size")
    tap.close()
