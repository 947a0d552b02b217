"""A stock noVNC in headless Chromium against a real ``twistd -n vncmux`` (issue 6).

The device is a pty this test owns.  The browser opens the page vncmux serves on its
WebSocket port (``--vnc ...,websocket=PORT``), types the VNC password into the page's
form (no ``prompt()``: a JavaScript dialog would fail the test), types a command through noVNC's keyboard handling, and the test checks that the command's bytes
arrived at the device; the test then plays the device's echo and output, and checks that
the noVNC canvas shows exactly the screen a TCP viewer (vncdotool) gets, with the text
on it.  The browser's screenshot is kept under tests/e2e/artifacts/.

Chromium is driven over the Chrome DevTools Protocol from Python (wsproto over a socket,
tests/support/browser.py), so nothing but the Debian packages is needed.  Run with:

    apt-get install -y chromium novnc      # once
    pytest tests/e2e/test_novnc_browser.py -q

The test skips, saying why, when chromium, noVNC or vncdotool is missing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from wsproto.events import TextMessage

from tests.support.browser import CDP, CHROMIUM, NOVNC, browser, canvas, status, wait_for
from tests.support.net import free_tcp_port
from tests.support.pty_device import fresh_pty, read_fd_until
from tests.support.vncmux_process import VncmuxProcess

__all__ = ["browser"]  # a fixture used by the tests below

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VNCDO = shutil.which("vncdo") or str(Path(sys.executable).with_name("vncdo"))
PASSWORD = "ws-e2e"
COMMAND = "echo vncmux-ws 42"

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(not NOVNC, reason="noVNC is not installed (apt-get install novnc)"),
    pytest.mark.skipif(not os.access(VNCDO, os.X_OK), reason="vncdotool's vncdo is not installed"),
    pytest.mark.timeout(240),
]


@pytest.fixture
def console(
    vncmux: Callable[..., VncmuxProcess], tmp_path: Path
) -> Iterator[tuple[int, int, int, VncmuxProcess]]:
    """``twistd -n vncmux`` on a pty this test owns, with a password, a TCP VNC port and a
    WebSocket port: (tcp port, websocket port, pty master fd, process)."""
    master, slave, path = fresh_pty()
    try:
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "\n")
        tcp_port, ws_port = free_tcp_port(), free_tcp_port()
        proc = vncmux(
            [
                "--device",
                path,
                "--vnc",
                f"127.0.0.1:{tcp_port - 5900},websocket={ws_port}",
                "--password-file",
                str(secret),
            ]
        )
        # Ports are bound before the reactor runs; the device opens once it runs.
        proc.wait_for_log(rf"Device {re.escape(path)} opened", timeout=45)
        assert "VNC WebSocket server listening" in proc.log, proc.describe()
        yield tcp_port, ws_port, master, proc
    finally:
        os.close(master)
        os.close(slave)


def key_event(char: str) -> dict[str, Any]:
    """What a real keyboard gives the page for ``char`` (US layout, no modifiers)."""
    if char == "\n":
        return {
            "key": "Enter",
            "code": "Enter",
            "windowsVirtualKeyCode": 13,
            "text": "\r",
        }
    if char == " ":
        return {"key": " ", "code": "Space", "windowsVirtualKeyCode": 32, "text": " "}
    if char == "-":
        return {"key": "-", "code": "Minus", "windowsVirtualKeyCode": 189, "text": "-"}
    if char.isdigit():
        return {
            "key": char,
            "code": f"Digit{char}",
            "windowsVirtualKeyCode": ord(char),
            "text": char,
        }
    assert char.isalpha() and char.islower(), char
    return {
        "key": char,
        "code": f"Key{char.upper()}",
        "windowsVirtualKeyCode": ord(char.upper()),
        "text": char,
    }


def tcp_capture(port: int, where: Path) -> Image.Image:
    """The same screen through the TCP port, as vncdotool sees it."""
    subprocess.run(
        [VNCDO, "-s", f"127.0.0.1::{port}", "-p", PASSWORD, "capture", str(where)],
        check=True,
        timeout=30,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return Image.open(where).convert("RGB")


def ink(image: Image.Image, line: int, rows: int = 24) -> tuple[int, int, int, int] | None:
    """Bounding box of what differs from the background (the most common colour) on
    text line ``line`` of a ``rows``-line console, or None when the line is empty."""
    counts = image.getcolors(4096)  # a terminal has few colours; None if not
    corner: Any = image.getpixel((image.width - 1, image.height - 1))
    background: Any = max(counts)[1] if counts else corner
    cell = image.height // rows
    band = image.crop((0, line * cell, image.width, (line + 1) * cell))
    plain = Image.new("RGB", band.size, background)
    return ImageChops.difference(band, plain).convert("L").getbbox()


def open_page(cdp: CDP, ws_port: int) -> list[str]:
    """Navigate to vncmux's page; the JavaScript dialogs it opens are recorded (and
    dismissed, so a prompt cannot hang the test)."""
    dialogs: list[str] = []

    def dismiss_dialogs(event: dict[str, Any]) -> None:
        if event.get("method") == "Page.javascriptDialogOpening":
            dialogs.append(event["params"].get("message", ""))
            payload = json.dumps(
                {
                    "id": next(cdp.ids),
                    "method": "Page.handleJavaScriptDialog",
                    "params": {"accept": False},
                }
            )
            cdp.sock.sendall(cdp.ws.send(TextMessage(data=payload)))

    cdp.on_event = dismiss_dialogs
    cdp.call("Page.enable")
    cdp.call("Runtime.enable")
    cdp.call("Page.navigate", url=f"http://127.0.0.1:{ws_port}/")
    return dialogs


def log_in(cdp: CDP, password: str, screenshot: Path | None = None) -> None:
    """Wait for the page's password form, type ``password`` into it and press Enter, as a
    user would (DevTools input events, not a script setting values); ``screenshot`` keeps
    a picture of the form with the password typed."""
    shown = "(form => !!form && !form.hidden)(document.getElementById('login'))"
    wait_for(lambda: cdp.evaluate(shown), "the password form")
    assert cdp.evaluate("document.getElementById('username').hidden")  # VNC auth: no user
    assert cdp.evaluate("document.activeElement.id") == "password"
    cdp.call("Input.insertText", text=password)
    if screenshot is not None:
        shot = cdp.call("Page.captureScreenshot", format="png")
        screenshot.parent.mkdir(exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    enter = key_event("\n")
    cdp.call("Input.dispatchKeyEvent", type="keyDown", **enter)
    cdp.call(
        "Input.dispatchKeyEvent", type="keyUp", **{k: v for k, v in enter.items() if k != "text"}
    )
    assert not cdp.evaluate(shown)  # the form hides once the credentials are sent


def test_novnc_types_into_the_device_and_shows_its_output(
    console: tuple[int, int, int, VncmuxProcess], browser: CDP, tmp_path: Path
) -> None:
    tcp_port, ws_port, device, proc = console
    cdp = browser
    dialogs = open_page(cdp, ws_port)
    log_in(cdp, PASSWORD)

    def connected() -> str | None:
        text = status(cdp)
        return text if text in ("connected", "disconnected", "connection lost") else None

    assert wait_for(connected, "noVNC to connect") == "connected", proc.describe()
    assert dialogs == []  # the password went through the form and noVNC's VNC auth
    blank = wait_for(lambda: (img := canvas(cdp)).width > 1 and img or None, "the first frame")
    cw = blank.width // 80
    assert all(ink(blank, line) is None for line in range(1, 24))  # nothing yet (line 0: cursor)
    first = ink(blank, 0)
    assert first is None or first[2] - first[0] <= cw  # at most the cursor

    cdp.evaluate("window.vncmuxRFB.focus(), true")
    for char in COMMAND + "\n":
        event = key_event(char)
        cdp.call("Input.dispatchKeyEvent", type="keyDown", **event)
        cdp.call(
            "Input.dispatchKeyEvent",
            type="keyUp",
            **{k: v for k, v in event.items() if k != "text"},
        )
    got = read_fd_until(device, b"\r", timeout=45)
    assert got == (COMMAND + "\r").encode()  # exactly the typed bytes, Enter as CR

    output = b"vncmux-ws 42"
    os.write(device, (COMMAND + "\r\n").encode() + output + b"\r\n")

    ARTIFACTS.mkdir(exist_ok=True)

    def same_as_tcp_viewer() -> Image.Image | None:
        shown = canvas(cdp)
        if ink(shown, 1) is None:
            return None
        seen = tcp_capture(tcp_port, tmp_path / "tcp.png")
        return (
            shown
            if shown.size == seen.size and ImageChops.difference(shown, seen).getbbox() is None
            else None
        )

    shown = wait_for(same_as_tcp_viewer, "the noVNC canvas to match the TCP viewer's screen")
    shot = cdp.call("Page.captureScreenshot", format="png")
    (ARTIFACTS / "novnc-vncmux.png").write_bytes(base64.b64decode(shot["data"]))
    shown.save(ARTIFACTS / "novnc-vncmux-canvas.png")
    # The echoed command on line 0, the output on line 1, the cursor alone on line 2.
    line0, line1, line2 = ink(shown, 0), ink(shown, 1), ink(shown, 2)
    assert line0 is not None and abs(line0[2] - len(COMMAND) * cw) < cw, line0
    assert line1 is not None and abs(line1[2] - len(output) * cw) < cw, line1
    assert line2 is None or line2[2] - line2[0] <= cw, line2
    assert all(ink(shown, line) is None for line in range(3, 24))
    # The browser's own address and port, in the WebSocket line and the RFB lines alike.
    peer = re.search(r"WebSocket connection from (127\.0\.0\.1:\d+)", proc.log)
    assert peer is not None, proc.log
    assert f"VNC viewer {peer.group(1)} authenticated" in proc.log


def test_a_wrong_password_in_the_form_is_refused_and_said_so(
    console: tuple[int, int, int, VncmuxProcess], browser: CDP
) -> None:
    _, ws_port, _, proc = console
    cdp = browser
    dialogs = open_page(cdp, ws_port)
    log_in(cdp, "wrong", screenshot=ARTIFACTS / "novnc-vncmux-password-form.png")
    failed = wait_for(
        lambda: (text := status(cdp)).startswith("authentication failed") and text or None,
        "the page to say the password was wrong",
    )
    assert "authentication failed" in failed
    proc.wait_for_log(r"VNC viewer 127\.0\.0\.1:\d+: authentication failed; closing")
    assert "authenticated" not in proc.log
    assert dialogs == []
