"""End to end: a real ``twistd -n vncmux --vnc none`` between a device the test owns (a pty
or a listening UNIX socket) and raw socket clients.  Bytes are checked whole or by sha256;
every wait is a condition with a deadline."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.net import (
    closed_by_peer,
    connect_unix,
    free_tcp_port,
    recv_exactly,
    recv_until,
)
from tests.support.pty_device import fresh_pty, read_fd_until
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

Start = Callable[..., VncmuxProcess]

MB = 1 << 20


class DeviceSocket:
    """A listening UNIX socket standing in for QEMU's ``-serial unix:PATH,server=on``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener: socket.socket | None = None
        self.listen()

    def listen(self) -> None:
        if self.path.exists():
            self.path.unlink()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.path))
        s.listen(1)
        self.listener = s

    def accept(self, timeout: float) -> socket.socket:
        assert self.listener is not None
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        conn.settimeout(None)
        return conn

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.path.exists():
            self.path.unlink()


def payload_blocks(total: int, seed: int, block: int = MB) -> Any:
    """Deterministic incompressible-ish blocks adding up to ``total`` bytes."""
    rng = random.Random(seed)
    sent = 0
    while sent < total:
        n = min(block, total - sent)
        yield rng.randbytes(n)
        sent += n


class HashingReader(threading.Thread):
    """Reads ``size`` bytes from a socket in the background, hashing them."""

    def __init__(self, sock: socket.socket, size: int, timeout: float) -> None:
        super().__init__(daemon=True)
        self.sock, self.size, self.timeout = sock, size, timeout
        self.digest: str | None = None
        self.error: BaseException | None = None
        self.got = 0

    def run(self) -> None:
        h = hashlib.sha256()
        try:
            while self.got < self.size:
                n = min(MB, self.size - self.got)
                data = recv_exactly(self.sock, n, self.timeout)
                h.update(data)
                self.got += len(data)
            self.digest = h.hexdigest()
        except Exception as e:  # noqa: BLE001 (reported by the test thread)
            self.error = e


def start_mux(vncmux: Start, device: str, sock: Path, *extra: str) -> VncmuxProcess:
    proc = vncmux(["--vnc", "none", "--device", device, "--socket", f"unix:{sock}", *extra])
    wait_until(lambda: sock.exists() or proc.returncode is not None, 15, proc.describe)
    assert proc.returncode is None, proc.describe()
    return proc


def clients(proc: VncmuxProcess, sock: Path, n: int, already: int = 0) -> list[socket.socket]:
    """Connect n clients and wait until vncmux logged each of them as attached."""
    out = [connect_unix(sock) for _ in range(n)]
    proc.wait_for_log(r"Client .* connected to", count=already + n)
    return out


# -- (a) a pty slave as the serial device ------------------------------------------------


def test_pty_device_to_unix_socket_client_and_back(vncmux: Start, short_tmp: Path) -> None:
    master, slave, path = fresh_pty()
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, path, sock)
        proc.wait_for_log(rf"Device {path} opened")
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        [client] = clients(proc, sock, 1)

        everything = bytes(range(256)) + b"end-of-a\n"  # raw: no byte may be altered
        os.write(master, everything)
        assert recv_exactly(client, len(everything), 10) == everything

        client.sendall(b"typed by client\x03\x1b[A\r")
        got = read_fd_until(master, b"\r", 10)
        assert got == b"typed by client\x03\x1b[A\r"

        # unplug: the pty goes away; vncmux notices through the reactor, keeps the client
        os.close(master)
        os.close(slave)
        master = slave = -1
        proc.wait_for_log(rf"Device {path} lost \(.*\); reopening in 0\.5s")
        proc.wait_for_log(rf"waiting for {path}: ")
        assert proc.returncode is None
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(1)  # still connected: no EOF, just no data
        client.close()
        proc.wait_for_log(r"Client .* disconnected from")
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)


# -- (b) a UNIX-socket device that goes away and comes back ------------------------------


def test_socket_device_reconnects_clients_stay_and_input_is_not_replayed(
    vncmux: Start, short_tmp: Path
) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, f"unix:{dev.path}", sock)
        conn = dev.accept(10)
        a, b = clients(proc, sock, 2)
        conn.sendall(b"first life\n")
        for c in (a, b):
            assert recv_exactly(c, 11, 10) == b"first life\n"

        # the device goes away entirely: connection closed and nobody listening
        conn.close()
        dev.close()
        proc.wait_for_log(r"Device unix:\S+ lost")
        proc.wait_for_log(r"waiting for unix:\S+dev\.sock: .*retrying in")
        a.sendall(b"typed-while-down")
        proc.wait_for_log(r"Device is down: dropping input")

        dev.listen()
        conn = dev.accept(15)
        proc.wait_for_log(r"Device unix:\S+ is up again")
        conn.sendall(b"second life\n")
        for c in (a, b):  # the same client connections
            assert recv_exactly(c, 12, 10) == b"second life\n"
        b.sendall(b"after\n")
        got = recv_until(conn, b"after\n", 10)
        assert got == b"after\n"  # nothing typed while it was down arrives late
        assert proc.returncode is None
    finally:
        dev.close()


# -- (c) a 50 MB burst to two clients ----------------------------------------------------


def test_two_clients_get_a_50mb_burst_intact(vncmux: Start, short_tmp: Path) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, f"unix:{dev.path}", sock)
        conn = dev.accept(10)
        socks = clients(proc, sock, 2)
        size = 50 * MB
        readers = [HashingReader(s, size, 60) for s in socks]
        for r in readers:
            r.start()
        expected = hashlib.sha256()
        for block in payload_blocks(size, seed=50):
            expected.update(block)
            conn.sendall(block)
        for r in readers:
            r.join(90)
            assert r.error is None, f"{r.error}\n{proc.describe()}"
            assert r.digest == expected.hexdigest()
    finally:
        dev.close()


# -- (d) a stalled client is dropped, the other gets everything ---------------------------


def test_stalled_client_is_dropped_and_the_other_gets_every_byte(
    vncmux: Start, short_tmp: Path
) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, f"unix:{dev.path}", sock, "--stall-timeout", "2")
        conn = dev.accept(10)
        stuck, good = clients(proc, sock, 2)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        size = 16 * MB
        reader = HashingReader(good, size, 60)
        reader.start()
        expected = hashlib.sha256()
        for block in payload_blocks(size, seed=7):
            expected.update(block)
            conn.sendall(block)  # blocks while the stuck client holds the device paused
        proc.wait_for_log(r"blocked for more than 2(\.0)?s: disconnecting it", timeout=15)
        reader.join(60)
        assert reader.error is None, f"{reader.error}\n{proc.describe()}"
        assert reader.digest == expected.hexdigest()
        assert closed_by_peer(stuck, 10)
    finally:
        dev.close()


# -- (e) max clients -----------------------------------------------------------------------


def test_connection_past_max_clients_is_refused(vncmux: Start, short_tmp: Path) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, f"unix:{dev.path}", sock, "--max-clients", "2")
        conn = dev.accept(10)
        a, b = clients(proc, sock, 2)
        extra = connect_unix(sock)
        proc.wait_for_log(r"Refusing .* already 2 clients")
        assert closed_by_peer(extra, 10)
        conn.sendall(b"still here\n")
        for c in (a, b):
            assert recv_exactly(c, 11, 10) == b"still here\n"
        # a freed slot is usable again
        a.close()
        proc.wait_for_log(r"Client .* disconnected from")
        [again] = clients(proc, sock, 1, already=2)
        conn.sendall(b"welcome\n")
        assert recv_exactly(again, 8, 10) == b"welcome\n"
    finally:
        dev.close()


# -- exec device and pty backend -----------------------------------------------------------


def test_exec_device_runs_in_sized_pty_with_term_and_respawns(
    vncmux: Start, short_tmp: Path
) -> None:
    sock = short_tmp / "c.sock"
    command = "exec:sh -c 'read x; stty size; echo TERM=$TERM; cat; exit 3'"
    proc = start_mux(vncmux, command, sock)
    proc.wait_for_log(r"Started sh -c .* \(pid \d+\)")
    [client] = clients(proc, sock, 1)
    client.sendall(b"go\r")
    out = recv_until(client, b"TERM=xterm-256color", 10)
    assert b"24 80" in out  # --vnc none: the default 80x24 window
    client.sendall(b"\x04")  # EOF to cat: the command exits
    proc.wait_for_log(r"lost \(command exited with status 3\); reopening in")
    proc.wait_for_log(r"Started sh -c .* \(pid \d+\)", count=2)
    client.sendall(b"again\r")
    out = recv_until(client, b"TERM=xterm-256color", 10)
    assert b"24 80" in out
    pid = int(proc.wait_for_log(r"Started sh -c .* \(pid (\d+)\)", count=2).group(1))
    assert os.path.exists(f"/proc/{pid}")
    proc.stop()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "the command outlived vncmux")
    assert "Closing device exec:" in proc.log


def test_pty_backend_carries_bytes_both_ways(vncmux: Start, short_tmp: Path) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        sock = short_tmp / "c.sock"
        proc = start_mux(vncmux, f"unix:{dev.path}", sock, "--chardev", "pty,id=p0")
        match = proc.wait_for_log(r"char device redirected to (/dev/pts/\d+) \(label p0\)")
        conn = dev.accept(10)
        [client] = clients(proc, sock, 1)
        conn.sendall(b"nobody reads this\n")  # no pty reader yet: dropped there, never blocks
        assert recv_exactly(client, 18, 10) == b"nobody reads this\n"
        fd = os.open(match.group(1), os.O_RDWR | os.O_NOCTTY)
        try:
            proc.wait_for_log(r"reader attached")
            conn.sendall(b"to the pty\n")
            assert read_fd_until(fd, b"\n", 10) == b"to the pty\n"
            os.write(fd, b"typed on the pty\r")
            assert recv_until(conn, b"\r", 10) == b"typed on the pty\r"
        finally:
            os.close(fd)
        proc.wait_for_log(r"reader gone")
    finally:
        dev.close()


def test_tcp_socket_endpoint_logs_peer_and_carries_bytes(vncmux: Start, short_tmp: Path) -> None:
    dev = DeviceSocket(short_tmp / "dev.sock")
    try:
        port = free_tcp_port()
        proc = vncmux(
            [
                "--vnc",
                "none",
                "--device",
                f"unix:{dev.path}",
                "--socket",
                f"tcp:{port}:interface=127.0.0.1",
            ]
        )
        conn = dev.accept(15)
        client = wait_until(lambda: _tcp_connect(port), 15, proc.describe)
        local = client.getsockname()[1]
        proc.wait_for_log(rf"Client 127\.0\.0\.1:{local} connected to tcp:{port}")
        conn.sendall(b"over tcp\n")
        assert recv_exactly(client, 9, 10) == b"over tcp\n"
        client.sendall(b"back\n")
        assert recv_until(conn, b"back\n", 10) == b"back\n"
        client.close()
        proc.wait_for_log(rf"Client 127\.0\.0\.1:{local} disconnected from tcp:{port}")
    finally:
        dev.close()


def _tcp_connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return None


def test_port_in_use_is_a_one_line_error(vncmux: Start, short_tmp: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        proc = vncmux(
            [
                "--vnc",
                "none",
                "--device",
                f"unix:{short_tmp}/d.sock",
                "--socket",
                f"tcp:{port}:interface=127.0.0.1",
            ]
        )
        code = proc.wait(30)
        assert code != 0
        assert (
            f"cannot listen on tcp:{port}:interface=127.0.0.1: address already in use"
            in proc.stderr
        )
    finally:
        taken.close()


pytestmark = pytest.mark.timeout(180)
