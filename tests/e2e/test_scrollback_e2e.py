"""Scrollback and copy-out on a real ``twistd -n vncmux``, seen by raw RFB viewers.

The device is a pty the test writes to.  Each viewer keeps its own copy of the framebuffer
from Raw updates (so every pixel it shows is one the server sent it), and a row is read
by comparing it with the same text drawn by our renderer.  One viewer scrolls back with
Shift+PgUp while another keeps seeing new output; a viewer selects text with pointer
events and gets it as ServerCutText (Latin-1) or an Extended Clipboard provide (UTF-8).
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Iterator

import pytest
from PIL import Image

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RFBError, Viewer
from tests.support.viewer_setup import row_picture, same
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import WaitTimeout, wait_until

COLS, ROWS = 40, 10
RAW = 0
EXTENDED_CLIPBOARD = -1063131698  # 0xC0A1E5CE as a signed encoding number
CLIP_TEXT, CLIP_CAPS, CLIP_PROVIDE = 1, 1 << 24, 1 << 28
XK_Shift_L, XK_Prior = 0xFFE1, 0xFF55
LEFT = 1


class Screen:
    """A raw RFB viewer that keeps the framebuffer and the clipboard texts it is sent."""

    def __init__(self, port: int, extended_clipboard: bool = False) -> None:
        self.viewer = Viewer(port).handshake()
        v = self.viewer
        self.image = Image.new("RGB", (v.width, v.height))
        self.cw, self.ch = v.width // COLS, v.height // ROWS
        self.cut: list[str] = []
        encodings = [RAW, EXTENDED_CLIPBOARD] if extended_clipboard else [RAW]
        v.set_encodings(*encodings)
        v.request(0)
        self._read_update(deadline=time.monotonic() + 10)

    def close(self) -> None:
        self.viewer.close()

    # -- what the server sends ----------------------------------------------------------

    def _read_message(self) -> bool:
        """Read one server message; True when it was news (a FramebufferUpdate or text
        for the clipboard), False for a bell or the server's clipboard capabilities."""
        v = self.viewer
        kind = v.u8()
        if kind == 0:
            v.recv(1)
            (count,) = struct.unpack("!H", v.recv(2))
            for _ in range(count):
                x, y, w, h, enc = struct.unpack("!HHHHi", v.recv(12))
                if enc != RAW:
                    raise RFBError(f"encoding {enc} was not asked for")
                data = v.recv(w * h * 4)
                self.image.paste(Image.frombytes("RGB", (w, h), data, "raw", "BGRX"), (x, y))
            return True
        if kind == 2:
            return False
        if kind == 3:
            v.recv(3)
            (length,) = struct.unpack("!i", v.recv(4))
            if length >= 0:
                self.cut.append(v.recv(length).decode("latin-1"))
                return True
            body = v.recv(-length)
            (flags,) = struct.unpack_from("!I", body)
            if not flags & CLIP_CAPS and flags & CLIP_PROVIDE and flags & CLIP_TEXT:
                raw = zlib.decompress(body[4:])
                (size,) = struct.unpack_from("!I", raw)
                self.cut.append(raw[4 : 4 + size].rstrip(b"\0").decode("utf-8"))
                return True
            return False  # the server's capabilities
        raise RFBError(f"unexpected server message {kind}")

    def _read_update(self, deadline: float) -> None:
        while True:
            self.viewer.timeout = max(0.1, deadline - time.monotonic())
            if self._read_message():
                return

    def update(self, incremental: int = 1, timeout: float = 10.0) -> None:
        """Ask for an update and read until it (or clipboard text) arrives."""
        self.viewer.request(incremental)
        self._read_update(time.monotonic() + timeout)

    def read_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Take updates until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"after {timeout}s: the viewer never showed what was expected")
            self.update(1, deadline - time.monotonic())

    # -- reading it -------------------------------------------------------------------------

    def row(self, row: int) -> Image.Image:
        return self.image.crop((0, row * self.ch, self.image.width, (row + 1) * self.ch))

    def shows(self, row: int, text: str) -> bool:
        return same(self.row(row), row_picture(text, COLS))

    # -- what the viewer sends --------------------------------------------------------------

    def key(self, keysym: int, down: bool) -> None:
        self.viewer.send(struct.pack("!BBxxI", 4, int(down), keysym))

    def pointer(self, buttons: int, col: int, row: int) -> None:
        x, y = col * self.cw + self.cw // 2, row * self.ch + self.ch // 2
        self.viewer.send(struct.pack("!BBHH", 5, buttons, x, y))


@pytest.fixture
def console(vncmux: Callable[..., VncmuxProcess]) -> Iterator[tuple[Pty, int]]:
    device = Pty()
    port = free_tcp_port()
    proc = vncmux(
        [
            "--device",
            device.path,
            "--vnc",
            f"127.0.0.1:{port - 5900}",
            "--cols",
            str(COLS),
            "--rows",
            str(ROWS),
        ]
    )
    try:
        proc.wait_for_log(r"Device .* opened", timeout=30)
        yield device, port
    finally:
        device.close()


def lines(first: int, last: int) -> bytes:
    return b"".join(b"line %d\r\n" % n for n in range(first, last))


def connect(port: int, **kw: bool) -> Screen:
    return wait_until(lambda: _try_connect(port, **kw), timeout=30, message="no VNC server")


def _try_connect(port: int, **kw: bool) -> Screen | None:
    try:
        return Screen(port, **kw)
    except OSError:
        return None


def test_one_viewer_scrolls_back_while_another_stays_live(console: tuple[Pty, int]) -> None:
    device, port = console
    device.write(b"\x1b[2J\x1b[H" + lines(0, 60))  # rows 0-8: line 51..59, row 9: the cursor
    back, live = connect(port), connect(port)
    try:
        for screen in (back, live):
            screen.read_until(lambda s=screen: s.shows(8, "line 59"))  # type: ignore[misc]
        back.key(XK_Shift_L, True)
        back.key(XK_Prior, True)
        back.key(XK_Prior, False)
        back.key(XK_Shift_L, False)
        back.read_until(lambda: back.shows(0, "line 42"))
        assert all(back.shows(r, f"line {42 + r}") for r in range(ROWS)), "a page back"

        device.write(lines(60, 65))
        live.read_until(lambda: live.shows(8, "line 64"))
        assert live.shows(0, "line 56")
        back.update(incremental=0)  # the whole picture, as this viewer sees it now
        assert all(back.shows(r, f"line {42 + r}") for r in range(ROWS)), (
            "new output does not move a scrolled-back view"
        )

        back.key(ord("x"), True)
        back.key(ord("x"), False)
        back.read_until(lambda: back.shows(8, "line 64"))
        assert back.shows(0, "line 56"), "typing brought the view back to the live screen"
        wait_until(lambda: b"x" in device.read_available(), 10, "the key reached the device")
    finally:
        back.close()
        live.close()


def test_selecting_text_sends_it_to_the_viewers_clipboard(console: tuple[Pty, int]) -> None:
    device, port = console
    device.write("\x1b[2J\x1b[Hhello world from vncmux\r\ngrüße ☃ zum Schluss\r\n".encode())
    plain, extended = connect(port), connect(port, extended_clipboard=True)
    try:
        plain.read_until(lambda: plain.shows(0, "hello world from vncmux"))
        plain.pointer(LEFT, 0, 0)  # drag over "hello"
        plain.pointer(LEFT, 4, 0)
        plain.pointer(0, 4, 0)
        plain.read_until(lambda: plain.cut == ["hello"])
        highlighted = row_picture("hello world from vncmux", COLS, reverse=(0, 5))
        plain.read_until(lambda: same(plain.row(0), highlighted))
        extended.update(incremental=0)
        assert extended.shows(0, "hello world from vncmux"), "highlighted for the selector only"

        for _ in range(2):  # double click: the word
            plain.pointer(LEFT, 8, 0)
            plain.pointer(0, 8, 0)
        plain.read_until(lambda: plain.cut[-1:] == ["world"])

        for _ in range(3):  # triple click: the line, as each viewer can take it
            extended.pointer(LEFT, 2, 1)
            extended.pointer(0, 2, 1)
        extended.read_until(lambda: extended.cut[-1:] == ["grüße ☃ zum Schluss"])
        extended.pointer(LEFT, 0, 0)
        extended.pointer(LEFT, 10, 1)
        extended.pointer(0, 10, 1)
        extended.read_until(lambda: extended.cut[-1:] == ["hello world from vncmux\r\ngrüße ☃ zum"])
        plain.pointer(LEFT, 0, 1)
        plain.pointer(LEFT, 6, 1)
        plain.pointer(0, 6, 1)
        plain.read_until(lambda: plain.cut[-1:] == ["grüße ?"])
        assert device.read_available() == b"", "selecting typed nothing"
    finally:
        plain.close()
        extended.close()
