"""Headless Chromium for end-to-end tests of vncmux's pages: the ``browser`` fixture (a
fresh profile, its first page under DevTools control), the smallest DevTools client
(``CDP``, wsproto over a socket, so nothing but the Debian packages is needed), and what
the tests read from a noVNC page (its canvas, its status line).

``browser`` is a pytest fixture: a test module imports it by name to use it."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from tests.support.waiting import wait_until

# Where vncmux looks for noVNC (vncmux.rfb.novnc_page.find_novnc); not imported, so that
# this file runs from a checkout without `pip install -e .`: vncmux runs as a subprocess.
NOVNC = [
    d
    for d in (os.environ.get("VNCMUX_NOVNC", ""), "/usr/share/novnc")
    if d and os.path.isfile(os.path.join(d, "core", "rfb.js"))
]
#: The Chromium to run (Debian names it chromium, other systems chromium-browser), or None.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    """``wait_until`` with a generous deadline: a loaded CI box starts Chromium slowly."""
    return wait_until(probe, timeout, f"waiting for {what}", interval=0.05)


class CDP:
    """The smallest Chrome DevTools Protocol client: commands by id, events queued."""

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self.on_event: Callable[[dict[str, Any]], None] = lambda event: None
        self._text = ""
        self._open = False
        self.sock.sendall(self.ws.send(Request(host=authority, target="/" + path)))
        while not self._open:
            self._read()

    def _read(self, timeout: float = 30.0) -> None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise AssertionError("the browser did not answer within 30 s")
        data = self.sock.recv(1 << 20)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self._open = True
            elif isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    message = json.loads(self._text)
                    self._text = ""
                    if "id" in message:
                        self.replies[message["id"]] = message
                    else:
                        self.events.append(message)
                        self.on_event(message)
            elif isinstance(event, CloseConnection):
                raise ConnectionError("the browser closed the DevTools connection")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply's result (an error reply fails)."""
        ident = next(self.ids)
        payload = json.dumps({"id": ident, "method": method, "params": params})
        self.sock.sendall(self.ws.send(TextMessage(data=payload)))
        while ident not in self.replies:
            self._read()
        reply = self.replies.pop(ident)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript ``expression`` in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def browser() -> Iterator[CDP]:
    """Headless Chromium with a fresh profile, its first page under DevTools control."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="vncmux-chromium-")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1000,500",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cdp: CDP | None = None
    try:
        active = Path(profile) / "DevToolsActivePort"
        port = wait_for(
            lambda: active.exists() and active.read_text().split("\n")[0].strip() or None,
            "chromium's DevTools port",
        )

        def page_url() -> str | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                targets = json.load(answer)
            pages = [t for t in targets if t.get("type") == "page"]
            return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

        cdp = CDP(wait_for(page_url, "chromium's first page"))
        yield cdp
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def canvas(cdp: CDP) -> Image.Image:
    """noVNC's framebuffer canvas at its native size (what the server sent, unscaled)."""
    url = cdp.evaluate("document.querySelector('#screen canvas').toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def status(cdp: CDP) -> str:
    """The text of noVNC's status line ("None" while the page has none)."""
    return str(
        cdp.evaluate(
            "document.getElementById('status') && document.getElementById('status').textContent"
        )
    )
