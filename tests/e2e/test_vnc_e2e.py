"""The virtual console seen through a third-party VNC client (vncdotool's ``vncdo``).

A real ``twistd -n vncmux`` runs with a pty slave as its serial device; the test owns the
master.  What the test writes to the master must appear in vncdo's captures exactly as our
renderer draws those cells, and what vncdo types must arrive at the master as xterm bytes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
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


@pytest.fixture
def console(vncmux: Callable[..., VncmuxProcess]) -> Iterator[tuple[Pty, int]]:
    device = Pty()
    port = free_tcp_port()
    proc = vncmux(["--device", device.path, "--vnc", f"127.0.0.1:{port - 5900}"])
    try:
        wait_until(lambda: port_open(port), timeout=30, message=proc.describe)
        proc.wait_for_log(
            r"Device .* opened", timeout=30
        )  # output written before is not ours to judge
        yield device, port
    finally:
        device.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(12).startswith(b"RFB ")
    except OSError:
        return False


def vncdo(port: int, *args: str) -> None:
    subprocess.run(
        [VNCDO, "--nocursor", "-t", "20", "-s", f"127.0.0.1::{port}", *args],
        check=True,
        timeout=30,
        capture_output=True,
    )


def capture(port: int, directory: Path, name: str) -> Image.Image:
    path = directory / name
    vncdo(port, "capture", str(path))
    with Image.open(path) as img:
        return img.convert("RGB")


OUTPUT = (
    b"\x1b[1;31mred bold\x1b[0m \x1b[42mon green\x1b[0m \x1b[38;5;208morange\x1b[0m\r\n"
    b"\xe2\x94\x8c\xe2\x94\x80\xe2\x94\x90 box \xce\xb1\xce\xb2\xce\xb3 \xd0\x96 caf\xc3\xa9\r\n"
    b"$ "
)


def test_device_output_appears_in_a_viewer_pixel_for_pixel(console: tuple[Pty, int]) -> None:
    device, port = console
    device.write(OUTPUT)
    want = expected_screen(OUTPUT)
    shots = Path(tempfile.mkdtemp(prefix="vncmux-e2e-"))
    got: list[Image.Image] = []

    def matches() -> bool:
        got.append(capture(port, shots, f"shot{len(got)}.png"))
        return same(got[-1], want)

    wait_until(matches, timeout=30, interval=0.2)
    colours = want.getcolors(4096) or []
    assert len(colours) > 4, "the expectation has the colours it was written with"


def test_second_and_late_viewers_see_the_current_screen(console: tuple[Pty, int]) -> None:
    device, port = console
    device.write(OUTPUT)
    want = expected_screen(OUTPUT)
    shots = Path(tempfile.mkdtemp(prefix="vncmux-e2e-"))
    wait_until(lambda: same(capture(port, shots, "first.png"), want), timeout=30, interval=0.2)
    assert same(capture(port, shots, "second.png"), want)
    more = b"later line\r\n$ "
    device.write(more)
    want_later = expected_screen(OUTPUT + more)
    wait_until(lambda: same(capture(port, shots, "late.png"), want_later), timeout=30, interval=0.2)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["type", "ls -l"], b"ls -l"),
        (["key", "enter"], b"\r"),
        (["key", "ctrl-c"], b"\x03"),
        (["key", "up"], b"\x1b[A"),
        (["key", "bsp"], b"\x7f"),
        (["key", "f5"], b"\x1b[15~"),
        (["key", "esc"], b"\x1b"),
    ],
)
def test_keys_typed_in_a_viewer_reach_the_device(
    console: tuple[Pty, int], keys: list[str], expected: bytes
) -> None:
    device, port = console
    vncdo(port, *keys)
    wait_until(lambda: expected in device.read_available(), timeout=20)
    assert device.received == expected


def test_a_program_finds_synchronized_output_and_its_frame_is_shown(
    console: tuple[Pty, int],
) -> None:
    """A program at the device's end asks whether synchronized output is there (DECRQM
    2026: "reset" means supported), opens an update, draws a frame and ends the update:
    the viewer shows that frame."""
    device, port = console
    device.write(b"\x1b[?2026$p")
    wait_until(lambda: b"\x1b[?2026;2$y" in device.read_available(), timeout=20)
    device.write(b"\x1b[?2026h\x1b[?2026$p")
    wait_until(lambda: b"\x1b[?2026;1$y" in device.read_available(), timeout=20)
    device.write(b"\x1b[H\x1b[2J" + OUTPUT + b"\x1b[?2026l")
    want = expected_screen(OUTPUT)
    shots = Path(tempfile.mkdtemp(prefix="vncmux-e2e-"))
    wait_until(lambda: same(capture(port, shots, "sync.png"), want), timeout=30, interval=0.2)
