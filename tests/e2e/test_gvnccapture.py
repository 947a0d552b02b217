"""The virtual console captured by gtk-vnc's ``gvnccapture`` (the README's screenshot tool).

gvnccapture asks for ZRLE in the server's own pixel format, whose compact pixels leave out
the spare byte; gtk-vnc fills that byte in per subencoding and saves it as the PNG's alpha
channel (issue 13 item 12).  A real ``twistd -n vncmux`` on a pty shows coloured text over
a mostly blank screen (blank tiles are what came out transparent); the capture must be
opaque everywhere and, in colour, the same picture vncdotool's ``vncdo`` captures.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.screen_image import expected_screen, same
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

VNCDO = shutil.which("vncdo") or str(Path(sys.executable).with_name("vncdo"))
GVNCCAPTURE = shutil.which("gvnccapture")

# Bold, 16-colour, 256-colour and background attributes, a row of 256-colour cells (many
# colours in one tile), and below that a blank screen (tiles of one colour).
OUTPUT = (
    b"\x1b[1;31mred bold\x1b[0m \x1b[42mon green\x1b[0m \x1b[38;5;208morange\x1b[0m "
    b"\x1b[44;33myellow on blue\x1b[0m\r\n"
    + b"".join(b"\x1b[48;5;%dm  " % (16 + 6 * i) for i in range(40))
    + b"\x1b[0m\r\n\x1b[7mreverse\x1b[0m caf\xc3\xa9 \xe2\x94\x8c\xe2\x94\x80\xe2\x94\x90\r\n$ "
)


@pytest.fixture
def display(vncmux: Callable[..., VncmuxProcess]) -> Iterator[tuple[Pty, int]]:
    """A vncmux on a pty, its VNC server on 127.0.0.1 display N (gvnccapture takes display
    numbers only, port 5900 + N); yields the pty and N."""
    if GVNCCAPTURE is None:
        pytest.skip("gvnccapture (Debian package gvncviewer) not installed")
    device = Pty()
    port = free_tcp_port()
    assert port > 5900, "an ephemeral port has a display number"
    proc = vncmux(["--device", device.path, "--vnc", f"127.0.0.1:{port - 5900}"])
    try:
        wait_until(lambda: rfb_greets(port), timeout=30, message=proc.describe)
        proc.wait_for_log(r"Device .* opened", timeout=30)
        yield device, port - 5900
    finally:
        device.close()


def rfb_greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(12).startswith(b"RFB ")
    except OSError:
        return False


def vncdo_capture(display: int, path: Path) -> Image.Image:
    server = f"127.0.0.1::{5900 + display}"  # vncdo reads a large display number as a port
    subprocess.run(
        [VNCDO, "--nocursor", "-t", "20", "-s", server, "capture", str(path)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    with Image.open(path) as img:
        return img.convert("RGB")


def gvnccapture(display: int, path: Path) -> Image.Image:
    assert GVNCCAPTURE is not None
    subprocess.run(
        [GVNCCAPTURE, "-q", f"127.0.0.1:{display}", str(path)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    with Image.open(path) as img:
        img.load()
        return img


def test_gvnccapture_png_is_opaque_and_matches_vncdo(
    display: tuple[Pty, int], tmp_path: Path
) -> None:
    device, number = display
    device.write(OUTPUT)
    want = expected_screen(OUTPUT)
    assert len(want.getcolors(4096) or []) > 40, "the picture has the colours written"
    shots: list[Image.Image] = []

    def drawn() -> bool:  # the whole output is on the screen: nothing changes after this
        shots.append(vncdo_capture(number, tmp_path / f"vncdo{len(shots)}.png"))
        return same(shots[-1], want)

    wait_until(drawn, timeout=30, interval=0.2)

    shot = gvnccapture(number, tmp_path / "gvnccapture.png")
    assert shot.mode == "RGBA", shot.mode
    alpha = shot.getchannel("A")
    transparent = alpha.point(lambda a: 255 if a < 255 else 0).getbbox()
    assert transparent is None, f"alpha below 255 within {transparent}: {alpha.getextrema()}"
    reference = vncdo_capture(number, tmp_path / "vncdo-after.png")
    assert same(shot.convert("RGB"), reference)
    assert same(reference, want)
