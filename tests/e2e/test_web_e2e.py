"""The web entry (``--web``) of a real ``twistd -n vncmux`` running a config file of three
consoles on ptys this test owns: the index lists them with their state, each
``/c/NAME/websockify`` reaches its own console (a raw RFB handshake over a wsproto
WebSocket: the desktop name is the title that console's device set, and a key typed there
arrives at that console's pty only), ``/metrics`` parses with ``prometheus_client``'s own
parser, and ``/healthz`` turns 503 when a device goes away and 200 when it returns.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until
from tests.support.web_site import NAMES, get, site, write_site

__all__ = ["site"]  # a fixture used by the tests below

pytestmark = pytest.mark.timeout(120)


class RfbOverWebSocket:
    """An RFB viewer over a WebSocket (wsproto framing over a blocking socket)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.buffer = bytearray()
        self.accepted = False
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
        while not self.accepted:
            self._read()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the WebSocket")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, BytesMessage):
                self.buffer += event.data
            elif isinstance(event, CloseConnection):
                raise ConnectionError(f"closed by the server: {event.code} {event.reason}")

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._read()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def handshake(self) -> str:
        """RFB 3.8, security None, shared: ServerInit's desktop name."""
        assert self.take(12) == b"RFB 003.008\n"
        self.send(b"RFB 003.008\n")
        count = self.take(1)[0]
        assert 1 in self.take(count), "security None is offered (no password configured)"
        self.send(b"\x01")
        assert self.take(4) == b"\0\0\0\0"
        self.send(b"\x01")
        head = self.take(24)
        (length,) = struct.unpack("!I", head[20:24])
        return self.take(length).decode()

    def type(self, text: str) -> None:
        for char in text:
            keysym = 0xFF0D if char == "\r" else ord(char)  # Return, else Latin-1
            for down in (1, 0):
                self.send(struct.pack("!BBxxI", 4, down, keysym))

    def close(self) -> None:
        self.sock.close()


def listing(port: int) -> dict[str, Any]:
    status, kind, body = get(port, "/consoles.json")
    assert status == 200 and kind.startswith("application/json")
    return {c["name"]: c for c in json.loads(body)["consoles"]}


def test_index_lists_the_consoles_and_each_websocket_reaches_its_own(
    site: tuple[int, dict[str, Pty], VncmuxProcess],
) -> None:
    port, ptys, proc = site
    for name, pty in ptys.items():  # a title (the desktop name) and a line of its own
        pty.write(f"\x1b]2;title-{name}\x07hello from {name}\r\n".encode())
    status, kind, page = get(port, "/")
    assert status == 200 and kind.startswith("text/html")
    for name in NAMES:
        assert f'href="c/{name}/"' in page.decode()
    consoles = wait_until(
        lambda: (
            (found := listing(port))
            and all(c["clients_text"] == "no clients" and c["last_output"] for c in found.values())
            and found
        ),
        15,
        "every console to have output",
    )
    assert list(consoles) == list(NAMES)
    assert {c["state"] for c in consoles.values()} == {"up"}

    thumbnails = set()
    for name in NAMES:
        status, kind, png = get(port, f"/c/{name}/thumbnail.png")
        assert status == 200 and Image.open(io.BytesIO(png)).format == "PNG"
        thumbnails.add(png)
    assert len(thumbnails) == 3  # three different screens

    for name in NAMES:
        viewer = RfbOverWebSocket(port, f"/c/{name}/websockify")
        try:
            assert viewer.handshake() == f"title-{name}"
            viewer.type(f"typed-{name}\r")
            pty = ptys[name]
            wait_until(
                lambda pty=pty: b"\r" in pty.read_available(), 15, f"the keys at {name}'s pty"
            )
            assert pty.received == f"typed-{name}\r".encode()
            seen = listing(port)[name]["clients"]
            assert seen.get("websocket") == 1, seen
        finally:
            viewer.close()
    assert all(b"typed-" in ptys[n].read_available() for n in NAMES)  # nothing went astray
    assert all(ptys[n].received.count(b"typed-") == 1 for n in NAMES)
    assert proc.returncode is None


def test_metrics_parse_with_prometheus_own_parser(
    site: tuple[int, dict[str, Pty], VncmuxProcess],
) -> None:
    port, ptys, _ = site
    ptys["beta"].write(b"0123456789")
    viewer = RfbOverWebSocket(port, "/c/beta/websockify")
    viewer.handshake()
    viewer.send(struct.pack("!BxHi", 2, 1, 0))  # SetEncodings: Raw
    viewer.send(struct.pack("!BBHHHH", 3, 0, 0, 0, 64, 64))  # one FramebufferUpdateRequest

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, kind, body = get(port, "/metrics")
        assert status == 200 and kind.startswith("text/plain")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    beta = (("console", "beta"),)
    found = wait_until(
        lambda: (
            (m := scrape())
            and m[("vncmux_frames_sent_total", beta)] >= 1
            and m[("vncmux_device_output_bytes_total", beta)] >= 10
            and m
        ),
        15,
        "a frame sent and the output counted",
    )
    viewer.close()
    for name in NAMES:
        assert found[("vncmux_device_up", (("console", name),))] == 1
    assert found[("vncmux_clients", (("console", "beta"), ("kind", "websocket")))] == 1
    assert found[("vncmux_encode_seconds_total", beta)] > 0
    assert found[("vncmux_auth_failures_total", beta)] == 0


def test_a_reload_adds_and_removes_consoles_on_the_web_entry(
    vncmux: Callable[..., VncmuxProcess], tmp_path: Path
) -> None:
    ptys = {name: Pty() for name in (*NAMES, "delta")}
    try:
        port = free_tcp_port()
        config = tmp_path / "consoles.toml"
        first = [(name, ptys[name].path) for name in NAMES]
        displays = write_site(config, port, first)
        proc = vncmux(["--config", str(config)])
        proc.wait_for_log(r"Web entry on tcp:", timeout=45)
        proc.wait_for_log(r"Device /dev/pts/\d+ opened", timeout=45, count=3)
        assert list(listing(port)) == list(NAMES)

        second = [(n, ptys[n].path) for n in ("alpha", "beta", "delta")]
        write_site(config, port, second, displays)
        os.kill(proc.pid, signal.SIGHUP)
        wait_until(
            lambda: list(listing(port)) == ["alpha", "beta", "delta"] or None,
            30,
            "the index to list the consoles of the new file",
            interval=0.1,
        )
        assert get(port, "/c/gamma/")[0] == 404
        assert get(port, "/c/gamma/thumbnail.png")[0] == 404
        ptys["delta"].write(b"\x1b]2;title-delta\x07")
        wait_until(lambda: listing(port)["delta"]["state"] == "up" or None, 30, "delta up")

        def delta_name() -> str | None:
            viewer = RfbOverWebSocket(port, "/c/delta/websockify")
            try:
                name = viewer.handshake()
            finally:
                viewer.close()
            return name if name == "title-delta" else None

        wait_until(delta_name, 15, "delta's viewer to show its title", interval=0.1)
        status, _, body = get(port, "/metrics")
        assert b'console="delta"' in body and b'console="gamma"' not in body
    finally:
        for pty in ptys.values():
            pty.close()


def test_healthz_is_503_while_a_device_is_away_and_200_when_it_returns(
    vncmux: Callable[..., VncmuxProcess], tmp_path: Path, short_tmp: Path, pty: Pty
) -> None:
    path = str(short_tmp / "dev.sock")

    def serve() -> socket.socket:
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        server.settimeout(30)
        return server

    server = serve()
    port = free_tcp_port()
    config = tmp_path / "consoles.toml"
    write_site(config, port, [("serial", pty.path), ("board", f"unix:{path}")])
    proc = vncmux(["--config", str(config)])
    conn, _ = server.accept()
    proc.wait_for_log(r"Web entry on tcp:", timeout=45)
    wait_until(lambda: get(port, "/healthz")[0] == 200, 20, "a healthy site", interval=0.1)

    conn.close()
    server.close()
    os.unlink(path)
    status, _, body = wait_until(
        lambda: (answer := get(port, "/healthz"))[0] == 503 and answer,
        20,
        "healthz to say the device is away",
        interval=0.1,
    )
    text = body.decode()
    assert text.startswith("unhealthy: 1 of 2 consoles have no device"), text
    assert "serial: up" in text and "board: device " in text, text

    server = serve()
    try:
        conn, _ = server.accept()  # vncmux reconnects with its backoff
        status, _, body = wait_until(
            lambda: (answer := get(port, "/healthz"))[0] == 200 and answer,
            20,
            "healthz to be 200 again",
            interval=0.1,
        )
        assert body.decode().startswith("ok: 2 consoles")
        conn.close()
    finally:
        server.close()
