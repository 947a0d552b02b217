"""Scale-out on websockify's token plugins, end to end: two real vncmux processes register
their consoles (``--token-prefix`` keeps the tokens apart), a real ``websockify`` (PyPI) with
``--token-plugin TokenFile`` or ``TokenRedis`` (a real ``redis-server``) routes an RFB
handshake sent over its WebSocket with ``?token=...`` to the right process (ServerInit's
desktop name names that process's device), and stopping one vncmux removes its entries."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until


class WebSocket:
    """The client side of RFC 6455, as much as a binary RFB conversation needs."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"websockify closed during the upgrade: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buffer = b""

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "websockify closed the connection"
            data += chunk
        return data

    def _frame(self) -> tuple[int, bytes]:
        first, second = self._exact(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._exact(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._exact(8))[0]
        mask = self._exact(4) if second & 0x80 else b""
        payload = self._exact(size)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return first & 0x0F, payload

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            opcode, payload = self._frame()
            assert opcode != 8, f"websockify closed the WebSocket: {payload!r}"
            if opcode in (0, 1, 2):
                self.buffer += payload
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, data: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x82])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self) -> None:
        self.sock.close()


def desktop_name(websockify_port: int, token: str) -> str:
    """RFB 3.8 through websockify to the console ``token`` routes to: its desktop name."""
    ws = WebSocket(websockify_port, f"/websockify?token={token}")
    try:
        assert ws.read(12) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        count = ws.read(1)[0]
        types = ws.read(count)
        assert 1 in types, f"no security type None offered: {list(types)}"
        ws.send(b"\x01")
        assert ws.read(4) == b"\0\0\0\0"
        ws.send(b"\x01")  # ClientInit: shared
        _w, _h = struct.unpack("!HH", ws.read(4))
        ws.read(16)  # pixel format
        (size,) = struct.unpack("!I", ws.read(4))
        return ws.read(size).decode("utf-8")
    finally:
        ws.close()


def start_websockify(plugin: str, source: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_tcp_port()
    websockify = shutil.which("websockify", path=str(Path(sys.executable).parent))
    assert websockify, "websockify is missing (pip install websockify: the test extra)"
    out = open(log, "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(
        [websockify, "--token-plugin", plugin, "--token-source", source, f"127.0.0.1:{port}"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    out.close()

    def listening() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, 20, lambda: f"websockify never listened: {log.read_text()}")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def two_ptys() -> Iterator[tuple[Pty, Pty]]:
    a, b = Pty(), Pty()
    yield a, b
    a.close()
    b.close()


def two_hosts(
    vncmux: Callable[..., VncmuxProcess], ptys: tuple[Pty, Pty], *registration: str
) -> list[VncmuxProcess]:
    """Two vncmux processes, one console each, tokens host1-console and host2-console."""
    procs = []
    for index, pty in enumerate(ptys, 1):
        display = free_tcp_port() - 5900
        procs.append(
            vncmux(
                [
                    "--device",
                    pty.path,
                    "--vnc",
                    f"127.0.0.1:{display}",
                    "--token-prefix",
                    f"host{index}-",
                    *registration,
                ]
            )
        )
    for proc in procs:
        proc.wait_for_log(r"websockify tokens: .*(host\d-console|registered)", timeout=20)
    return procs


def test_token_file_routes_to_the_right_console(
    vncmux: Callable[..., VncmuxProcess], two_ptys: tuple[Pty, Pty], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    procs = two_hosts(vncmux, two_ptys, "--websockify-tokens", str(tokens))
    assert sorted(p.name for p in tokens.iterdir()) == ["host1-console", "host2-console"]
    proxy, port = start_websockify("TokenFile", str(tokens), tmp_path / "websockify.log")
    try:
        for index, pty in enumerate(two_ptys, 1):
            assert pty.path in desktop_name(port, f"host{index}-console")
        assert procs[0].stop() in (0, -15)
        assert sorted(p.name for p in tokens.iterdir()) == ["host2-console"]
        assert two_ptys[1].path in desktop_name(port, "host2-console")
    finally:
        stop(proxy)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing (Debian package redis-server)"
    port = free_tcp_port()
    log = tmp_path / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(up, 20, lambda: f"redis-server never listened: {log.read_text()}")
    yield port
    stop(proc)


def test_token_redis_routes_and_entries_expire_or_go(
    vncmux: Callable[..., VncmuxProcess],
    two_ptys: tuple[Pty, Pty],
    redis_server: int,
    tmp_path: Path,
) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server)
    procs = two_hosts(vncmux, two_ptys, "--redis", f"redis://127.0.0.1:{redis_server}/0")
    assert sorted(client.keys()) == [b"host1-console", b"host2-console"]
    assert 0 < client.ttl("host1-console") <= 30  # renewed while the console lives
    proxy, port = start_websockify(
        "TokenRedis", f"127.0.0.1:{redis_server}", tmp_path / "websockify.log"
    )
    try:
        for index, pty in enumerate(two_ptys, 1):
            assert pty.path in desktop_name(port, f"host{index}-console")
        assert procs[1].stop() in (0, -15)
        assert client.keys() == [b"host1-console"]
        assert two_ptys[0].path in desktop_name(port, "host1-console")
    finally:
        stop(proxy)


def test_config_file_consoles_follow_reload(
    vncmux: Callable[..., VncmuxProcess], two_ptys: tuple[Pty, Pty], tmp_path: Path
) -> None:
    """With --config, every console gets its entry; a SIGHUP that removes one console
    removes its entry and one that adds a console adds it."""
    import signal

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "consoles.toml"

    displays = {name: free_tcp_port() - 5900 for name in ("alpha", "beta", "gamma")}

    def write(names: list[str]) -> None:
        lines = [f'websockify-tokens = "{tokens}"', 'token-prefix = "lab-"', ""]
        for name, pty in zip(names, two_ptys):
            display = displays[name]
            lines += ["[[console]]", f'name = "{name}"', f'device = "{pty.path}"']
            lines += [f'vnc = "127.0.0.1:{display}"', ""]
        config.write_text("\n".join(lines))

    write(["alpha", "beta"])
    proc = vncmux(["--config", str(config)])

    def names() -> list[str]:
        return sorted(p.name for p in tokens.iterdir())

    wait_until(lambda: names() == ["lab-alpha", "lab-beta"], 20, lambda: f"{names()}")
    line = (tokens / "lab-alpha").read_text()
    assert line.startswith("lab-alpha: 127.0.0.1:")
    write(["alpha"])
    proc.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: names() == ["lab-alpha"], 20, lambda: f"{names()}\n{proc.describe()}")
    assert (tokens / "lab-alpha").read_text() == line  # unchanged console: same entry
    write(["alpha", "gamma"])
    proc.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: names() == ["lab-alpha", "lab-gamma"], 20, lambda: f"{names()}")
    assert proc.stop() in (0, -15)
    assert names() == []
