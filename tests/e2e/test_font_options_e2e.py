"""``--font-size``, ``--scale``, ``--font`` and ``--palette`` end to end: a real
``twistd -n vncmux`` whose framebuffer size, read from the ServerInit a raw RFB client
gets, is the cell size of the font times the console's cells (times the scale); a font or
palette that cannot be used ends the process with exit status 2 and one line.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RAW, Viewer
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until
from vncmux.console import palette
from vncmux.console.render import Renderer

COLS, ROWS = 40, 10


def connect(port: int) -> Viewer:
    """A viewer past ServerInit (the VNC port listens a moment after the process starts)."""

    def attempt() -> Viewer | None:
        try:
            return Viewer(port).handshake()
        except OSError:
            return None

    return wait_until(attempt, 30, f"no VNC server on port {port}", interval=0.1)


def start(vncmux: Callable[..., VncmuxProcess], pty: Pty, *options: str) -> tuple[int, Viewer]:
    port = free_tcp_port()
    vnc = f"127.0.0.1:{port - 5900}"
    args = ["--device", pty.path, "--vnc", vnc, "--cols", str(COLS), "--rows", str(ROWS)]
    vncmux([*args, *options])
    return port, connect(port)


@pytest.mark.parametrize(
    ("options", "cell"),
    [
        ((), (8, 16)),
        (("--font-size", "24"), (12, 24)),
        (("--font-size", "32"), (16, 32)),
        (("--scale", "2"), (16, 32)),
        (("--font-size", "12", "--scale", "3"), (18, 36)),
    ],
)
def test_font_size_and_scale_set_the_framebuffer_size(
    vncmux: Callable[..., VncmuxProcess],
    pty: Pty,
    options: tuple[str, ...],
    cell: tuple[int, int],
) -> None:
    _, viewer = start(vncmux, pty, *options)
    try:
        assert (viewer.width, viewer.height) == (COLS * cell[0], ROWS * cell[1])
    finally:
        viewer.close()


def read_frame(viewer: Viewer) -> Image.Image:
    """One full Raw update in 32-bit 0x00RRGGBB, as an image."""
    viewer.send(struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    viewer.set_encodings(RAW)
    viewer.request(0)
    frame = Image.new("RGB", (viewer.width, viewer.height))
    assert viewer.u8() == 0  # FramebufferUpdate
    viewer.recv(1)
    (count,) = struct.unpack("!H", viewer.recv(2))
    for _ in range(count):
        x, y, w, h, encoding = struct.unpack("!HHHHi", viewer.recv(12))
        assert encoding == RAW
        data = viewer.recv(w * h * 4)
        frame.paste(Image.frombytes("RGB", (w, h), data, "raw", "BGRX"), (x, y))
    return frame


def test_scale_2_doubles_every_pixel_of_the_1x_picture(
    vncmux: Callable[..., VncmuxProcess], pty: Pty
) -> None:
    """The scaled framebuffer is the unscaled one with each pixel a 2×2 square: text
    written to the device, read back from both processes' viewers, compared exactly."""
    text = b"\x1b[2J\x1b[Hscale \x1b[1;31mred\x1b[0m \xe4\xb8\xad \xe2\x9c\x93\r\n"
    frames = []
    for scale in ("1", "2"):
        device = Pty()
        try:
            _, viewer = start(vncmux, device, "--scale", scale)
            try:
                device.write(text)
                cw = Renderer(1, 1).cell_width * int(scale)

                def drawn(viewer: Viewer = viewer, cw: int = cw) -> Image.Image | None:
                    frame = read_frame(viewer)  # a full update each time: no state kept
                    check = frame.crop((13 * cw, 0, 14 * cw, 2 * cw))  # the last cell: ✓
                    return frame if check.getbbox() else None

                frames.append(wait_until(drawn, 30, "the text never appeared"))
            finally:
                viewer.close()
        finally:
            device.close()
    one, two = frames
    assert two.size == (one.width * 2, one.height * 2)
    assert two.tobytes() == one.resize(two.size, Image.Resampling.NEAREST).tobytes()


def test_palette_vga_paints_blue_as_vga_does(
    vncmux: Callable[..., VncmuxProcess], pty: Pty, tmp_path: Path
) -> None:
    _, viewer = start(vncmux, pty, "--palette", "vga")
    try:
        pty.write(b"\x1b[2J\x1b[H\x1b[44m    \x1b[0m")
        cw = Renderer(1, 1).cell_width

        def blue() -> bool:
            return read_frame(viewer).getpixel((cw, 1)) == palette.VGA_16[4]

        wait_until(blue, 30, "the cell never turned VGA blue")
    finally:
        viewer.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--font-size", "15"), "vncmux: error: --font-size 15: the bundled Terminus font has"),
        (("--scale", "9"), "vncmux: error: --scale: 9 is out of range"),
        (("--palette", "NOFILE"), "vncmux: error: --palette NOFILE: not a palette name"),
        (("--font", "NOFILE"), "vncmux: error: --font NOFILE: font file NOFILE does not exist"),
    ],
)
def test_a_bad_font_or_palette_exits_2_with_one_line(
    vncmux: Callable[..., VncmuxProcess],
    pty: Pty,
    tmp_path: Path,
    options: tuple[str, ...],
    message: str,
) -> None:
    resolved = [str(tmp_path / o) if o == "NOFILE" else o for o in options]
    proc = vncmux(["--device", pty.path, "--vnc", f"127.0.0.1:{free_tcp_port() - 5900}", *resolved])
    assert proc.wait(30) == 2
    assert proc.stderr.startswith(message.replace("NOFILE", str(tmp_path / "NOFILE")))
    assert proc.stderr.count("\n") == 1
