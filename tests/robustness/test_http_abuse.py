"""Hostile clients on the HTTP/WebSocket port of a REAL ``twistd -n vncmux``.

* A flood of half-open requests: it used to take every file descriptor of the process
  (1,100 of them against the common limit of 1024), and then every listener (VNC,
  WebSocket, byte sockets) refused new clients.  Now the port holds at most its cap (a
  quarter of the descriptor limit), closes the rest at once, and the VNC port still
  serves.  The process under test runs with a small descriptor limit (256) so that the
  flood is quick; the cap is read from its start-up line.
* A client trickling its request head a byte a second: Twisted's idle timeout restarts
  with every byte, so it held its connection as long as it liked; now the request must
  arrive whole within the request deadline (10 s).
* Over WebSocket, a viewer that fills the server's send buffer with pongs and then sends
  a bad version: the Close frame queued behind the pongs never went out, and the viewer
  kept its slot (``connections=``) for good; now the close is aborted after a grace.
"""

from __future__ import annotations

import os
import re
import resource
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Request

from tests.support.net import free_tcp_port, recv_until
from tests.support.pty_device import Pty
from tests.support.rfbkit import Viewer
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

Start = Callable[..., VncmuxProcess]

#: The soft descriptor limit of the vncmux under test in the flood case.
CHILD_NOFILE = 256


@contextmanager
def child_nofile(soft: int) -> Iterator[None]:
    """Lower this process's soft RLIMIT_NOFILE while a child is started (it inherits the
    limit), then put it back."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert len(os.listdir("/proc/self/fd")) < soft - 16, "too many descriptors open to start"
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def serve(
    start: Start, pty: Pty, options: str = ""
) -> tuple[VncmuxProcess, int, int, re.Match[str]]:
    """vncmux on ``pty`` with a VNC and a WebSocket port: (process, VNC port, WebSocket
    port, the match of its WebSocket start-up line: groups ``n`` (cap) and ``t``)."""
    vnc, ws = free_tcp_port(), free_tcp_port()
    proc = start(["--device", pty.path, "--vnc", f"127.0.0.1:{vnc - 5900},websocket={ws}{options}"])
    line = proc.wait_for_log(
        r"VNC WebSocket server listening .* at most (?P<n>\d+) connections,"
        r" (?P<t>[\d.]+) s per request",
        timeout=30,
    )
    proc.wait_for_log(r"Device .* opened", timeout=30)
    return proc, vnc, ws, line


def closed(sock: socket.socket) -> bool:
    """True if the peer closed or reset ``sock`` (without waiting)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for it in recv
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset, or never connected
        return True
    finally:
        sock.settimeout(timeout)


def test_half_open_flood_is_capped_and_the_vnc_port_still_serves(vncmux: Start, pty: Pty) -> None:
    with child_nofile(CHILD_NOFILE):
        proc, vnc, ws, line = serve(vncmux, pty)
    cap = int(line["n"])
    assert cap == CHILD_NOFILE // 4
    flood = CHILD_NOFILE + 44  # more than the process has descriptors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < flood + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, flood + 64), hard))
    socks: list[socket.socket] = []
    try:
        start = time.monotonic()
        for _ in range(flood):
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect(("127.0.0.1", ws))
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
            except OSError:  # the server's backlog is full: not served either
                pass
            socks.append(s)
        wait_until(
            lambda: sum(closed(s) for s in socks) >= flood - cap,
            8,
            lambda: f"{sum(closed(s) for s in socks)} of {flood} closed\n{proc.describe()}",
        )
        held = [s for s in socks if not closed(s)]
        assert time.monotonic() - start < float(line["t"])  # before the deadline closes any
        assert len(held) == cap
        refusals = re.findall(r"HTTP/WebSocket connection from \S+ refused: limit of", proc.log)
        assert 1 <= len(refusals) <= 3, refusals  # logged, rate-limited
        # The other listener still has descriptors: a VNC viewer connects and is served.
        viewer = Viewer(vnc)
        assert viewer.version() == b"RFB 003.008\n"
        assert viewer.security_types()
        viewer.close()
        # The held ones sent half a request head: the deadline closes them too, and the
        # port serves again.
        wait_until(lambda: all(closed(s) for s in held), float(line["t"]) + 5, proc.describe)
        probe = socket.create_connection(("127.0.0.1", ws), timeout=10)
        probe.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        assert recv_until(probe, b"\r\n", 10).split(b"\r\n")[0].endswith(b" 200 OK")
        probe.close()
        assert proc.returncode is None
    finally:
        for s in socks:
            s.close()


def test_a_trickled_request_head_is_cut_off_by_the_deadline(vncmux: Start, pty: Pty) -> None:
    proc, _, ws, line = serve(vncmux, pty)
    deadline = float(line["t"])
    silent = socket.create_connection(("127.0.0.1", ws))
    trickler = socket.create_connection(("127.0.0.1", ws))
    start = time.monotonic()
    trickler.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    while not closed(trickler):
        assert time.monotonic() - start < deadline + 5, "still open past the deadline"
        try:
            trickler.sendall(b"a")  # one byte a second: each restarts the idle timer
        except OSError:
            break
        select.select([trickler], [], [], 1.0)  # the close, or a second, whichever first
    held = time.monotonic() - start
    assert deadline - 1 <= held < deadline + 5, held
    proc.wait_for_log(r"request not complete after \d+ s \(\d+ bytes\); closing")
    wait_until(lambda: closed(silent), 5, "the silent connection was not closed")
    trickler.close()
    silent.close()


def test_a_close_behind_unread_pongs_does_not_keep_the_viewer_slot(vncmux: Start, pty: Pty) -> None:
    proc, vnc, ws, _ = serve(vncmux, pty, ",connections=1")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast, never read
    sock.settimeout(10)
    sock.connect(("127.0.0.1", ws))
    client = WSConnection(ConnectionType.CLIENT)
    sock.sendall(client.send(Request(host=f"127.0.0.1:{ws}", target="/websockify")))
    answer = recv_until(sock, b"\r\n\r\n", 10)
    assert answer.startswith(b"HTTP/1.1 101")
    client.receive_data(answer)
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    proc.wait_for_log(r"VNC connection from 127\.0\.0\.1:\d+")
    # 6 MiB of pings (the server answers each with a pong nobody reads): more than the
    # socket buffers hold, less than the unread-output cap (8 MiB) that would end it by
    # itself; an empty message now and then, so the guard does not take it for one huge
    # message.
    pings = client.send(Ping(payload=b"p" * 125)) * 4096
    empty = client.send(BytesMessage(data=b""))
    for _ in range(12):
        sock.sendall(pings + empty)
    sock.sendall(client.send(BytesMessage(data=b"RFB 004.000\n")))  # a version we refuse
    proc.wait_for_log(r"unsupported RFB protocol version 4\.0; closing")
    # The refusal and the Close frame wait behind megabytes of pongs: the session must end
    # anyway, and the slot (connections=1) must come back.
    proc.wait_for_log(r"VNC viewer 127\.0\.0\.1:\d+ disconnected", timeout=20)
    viewer = Viewer(vnc)
    viewer.version()
    assert viewer.security_types()
    viewer.close()
    sock.close()
