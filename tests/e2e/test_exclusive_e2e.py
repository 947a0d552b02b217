"""Who has the keyboard, end to end: a real ``twistd -n vncmux --input-policy exclusive``
with a pty as its device, two VNC viewers (A and B, raw RFB clients that keep their
connection) and the HTTP API.

While A holds the keyboard B's keys do not reach the device; after ``--lock-idle`` B can
type; Ctrl+Alt+T takes the keyboard over, and both viewers' status lines, read pixel by
pixel from what they were sent, are what our renderer draws for the takeover notice.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RAW, RFBError, Viewer
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until
from vncmux.client import ApiError, Client
from vncmux.console.keys import XK_Alt_L, XK_Control_L
from vncmux.console.render import Renderer
from vncmux.console.statusline import (
    device_text,
    keyboard_text,
    layout,
    status_cells,
    takeover_notice,
)
from vncmux.events import Client as Who

COLS, ROWS = 80, 24
LOCK_IDLE = 2
REFERENCE = Renderer(COLS, ROWS)
CELL_H = REFERENCE.cell_height


class FbViewer(Viewer):
    """An RFB viewer that keeps the pixels it is sent (Raw only, 32-bit BGRX)."""

    def start(self) -> FbViewer:
        self.handshake()
        # SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 0x00RRGGBB.
        self.send(struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        self.set_encodings(RAW)
        self.fb = Image.new("RGB", (self.width, self.height))
        self.request(0)
        self.read_pixels()
        return self

    @property
    def who(self) -> Who:
        """This viewer as vncmux names it."""
        return Who.of("vnc", f"127.0.0.1:{self.sock.getsockname()[1]}")

    def read_pixels(self) -> None:
        """One FramebufferUpdate, applied to ``fb``."""
        while (mtype := self.u8()) != 0:
            if mtype != 2:  # a bell carries nothing; nothing else is expected
                raise RFBError(f"unexpected server message {mtype}")
        self.recv(1)
        (count,) = struct.unpack("!H", self.recv(2))
        for _ in range(count):
            x, y, w, h, enc = struct.unpack("!HHHHi", self.recv(12))
            if enc != RAW:
                raise RFBError(f"unexpected encoding {enc}")
            data = self.recv(w * h * 4)
            self.fb.paste(Image.frombytes("RGB", (w, h), data, "raw", "BGRX"), (x, y))

    def status_band(self) -> Image.Image:
        """The status line as this viewer has it now (asked for afresh)."""
        top = ROWS * CELL_H
        self.request(0, 0, top, self.width, CELL_H)
        self.read_pixels()
        return self.fb.crop((0, top, self.width, top + CELL_H))

    def press(self, *keysyms: int) -> None:
        for k in keysyms:
            self.send(struct.pack("!BBxxI", 4, 1, k))
        for k in reversed(keysyms):
            self.send(struct.pack("!BBxxI", 4, 0, k))


def expected_band(left: str, right: str, notice: bool) -> bytes:
    """The status line as our renderer draws it."""
    renderer = Renderer(COLS, ROWS)
    renderer.set_status_rows(1)
    renderer.draw_status(status_cells(layout(left, right, COLS), notice))
    top = ROWS * CELL_H
    return renderer.image.crop((0, top, renderer.width, top + CELL_H)).tobytes()


@pytest.fixture
def exclusive(
    vncmux: Callable[..., VncmuxProcess], short_tmp: Path
) -> Iterator[tuple[Pty, int, VncmuxProcess, str]]:
    device = Pty()
    port = free_tcp_port()
    api = f"unix:{short_tmp / 'api.sock'}"
    proc = vncmux(
        [
            "--device",
            device.path,
            "--vnc",
            f"127.0.0.1:{port - 5900}",
            "--input-policy",
            "exclusive",
            "--lock-idle",
            str(LOCK_IDLE),
            "--api",
            api,
        ]
    )
    try:
        proc.wait_for_log(r"Device .* opened", timeout=30)
        proc.wait_for_log(r"API on unix:", timeout=30)
        yield device, port, proc, api
    finally:
        device.close()


def viewer(port: int) -> FbViewer:
    return FbViewer(port).start()  # the VNC port listens before the device opens


def test_one_viewer_types_at_a_time_and_ctrl_alt_t_takes_over(
    exclusive: tuple[Pty, int, VncmuxProcess, str],
) -> None:
    device, port, proc, _api = exclusive
    a, b = viewer(port), viewer(port)
    try:
        assert a.height == (ROWS + 1) * CELL_H, "the status line is a row below the terminal"
        wait_until(
            lambda: (
                a.status_band().tobytes()
                == expected_band(keyboard_text(True, None), device_text(True), False)
            ),
            timeout=10,
            message="the status line says the keyboard is free",
        )

        a.key(ord("a"))
        wait_until(lambda: device.read_available() == b"a", timeout=10)
        b.key(ord("b"))
        proc.wait_for_log(rf"input from {b.who} dropped .*{a.who} holds", timeout=10)
        assert device.read_available() == b"a", "B's key did not reach the device"

        proc.wait_for_log(rf"{a.who} idle for {LOCK_IDLE}(\.0)?s", timeout=LOCK_IDLE + 10)
        b.key(ord("b"))
        wait_until(lambda: device.read_available() == b"ab", timeout=10)
        proc.wait_for_log(rf"Keyboard: {b.who} holds it now", timeout=10)

        a.press(XK_Control_L, XK_Alt_L, ord("t"))
        proc.wait_for_log(rf"{a.who} took it over from {b.who}", timeout=10)
        want = expected_band(takeover_notice(a.who, b.who), device_text(True), True)
        for v in (a, b):
            assert v.status_band().tobytes() == want, "both status lines name the takeover"

        b.key(ord("x"))
        a.key(ord("y"))
        wait_until(lambda: device.read_available().endswith(b"y"), timeout=10)
        proc.wait_for_log(rf"input from {b.who} dropped", timeout=10, count=2)
        assert device.read_available() == b"aby", "Ctrl+Alt+T was not sent; B was dropped"
    finally:
        a.close()
        b.close()


def test_the_api_takes_the_keyboard_and_is_refused_while_another_holds_it(
    exclusive: tuple[Pty, int, VncmuxProcess, str],
) -> None:
    device, port, proc, api = exclusive
    client = Client(api)
    a = viewer(port)
    try:
        a.key(ord("a"))
        wait_until(lambda: device.read_available() == b"a", timeout=10)
        with pytest.raises(ApiError) as refused:
            client.send("nope")
        assert refused.value.status == 409 and str(a.who) in str(refused.value)
        taken = client.takeover()
        assert taken["previous"] == str(a.who) and taken["holder"].startswith("api ")
        client.send("api")
        a.key(ord("z"))
        proc.wait_for_log(rf"input from {a.who} dropped", timeout=10)
        wait_until(lambda: device.read_available() == b"aapi", timeout=10)
        status = client.status()["keyboard"]
        assert status["policy"] == "exclusive" and status["holder"] == taken["holder"]
        assert status["refused"] >= 2
        line = client.screen()["status_line"]
        assert line is not None and line.strip().startswith(f"{taken['holder']} has the keyboard")
    finally:
        a.close()
