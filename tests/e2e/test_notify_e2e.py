"""systemd's Type=notify, end to end: a real ``twistd -n vncmux`` started with
``NOTIFY_SOCKET`` pointing at a datagram socket of the test sends READY=1 once it listens,
a STATUS= line naming its consoles, and STOPPING=1 when it is stopped."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.net import free_tcp_port
from tests.support.notify import notify_listener, receive_state
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess


@pytest.fixture
def notify_socket(short_tmp: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(short_tmp / "notify")
    with notify_listener(path, timeout=20) as sock:
        yield sock, path


def test_ready_status_and_stopping(
    vncmux: Callable[..., VncmuxProcess],
    pty: Pty,
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    port = free_tcp_port()
    proc = vncmux(
        ["--device", pty.path, "--vnc", "none", "--socket", f"tcp:{port}:interface=127.0.0.1"],
        env={"NOTIFY_SOCKET": path},
    )
    ready = receive_state(sock)
    assert ready["READY"] == "1", proc.describe()
    assert ready["STATUS"] == "1 console, 1 device up"
    # READY means listening: the byte socket accepts right away
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    # twistd ends by re-raising SIGTERM once shut down (systemd counts that as clean)
    assert proc.stop() in (0, -15)
    assert receive_state(sock) == {"STOPPING": "1", "STATUS": "stopping"}


def test_a_fatal_error_exits_non_zero_without_ready(
    vncmux: Callable[..., VncmuxProcess],
    notify_socket: tuple[socket.socket, str],
    short_tmp: Path,
) -> None:
    sock, path = notify_socket
    proc = vncmux(
        ["--device", str(short_tmp / "no-such-tty"), "--vnc", "none"],
        env={"NOTIFY_SOCKET": path},
    )
    assert proc.wait(20) == 2
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


# As systemd starts a socket-activated service: the listening sockets at fds 3, 4, ...,
# LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID in the environment, the same pid (exec).
_ACTIVATE = """
import os, socket, sys
ports = [int(p) for p in sys.argv[1].split(",")]
held = [socket.socket() for _ in ports]  # open first: none of them may land on fd 3, 4, ...
for sock, port in zip(held, ports):
    sock.bind(("127.0.0.1", port))
    sock.listen(8)
spare = [os.dup(sock.fileno()) for sock in held]
for fd, copy in enumerate(spare, 3):
    os.dup2(copy, fd)
    os.set_inheritable(fd, True)
os.environ.update(LISTEN_FDS=str(len(ports)), LISTEN_PID=str(os.getpid()),
                  LISTEN_FDNAMES=":".join(f"s{i}" for i in range(len(ports))))
os.execv(sys.executable, sys.argv[2:])
"""


def test_socket_activation_vnc_and_byte_socket(
    pty: Pty, short_tmp: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    import os
    import subprocess
    import sys

    from tests.support.net import recv_exactly
    from tests.support.vncmux_process import REPO, twistd_command
    from tests.support.waiting import wait_until

    sock, path = notify_socket
    vnc_port, byte_port = free_tcp_port(), free_tcp_port()
    command = twistd_command(
        ["--device", pty.path, "--vnc", "systemd:0", "--socket", "systemd:domain=INET:index=1"]
    )
    log = short_tmp / "vncmux.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", NOTIFY_SOCKET=path)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _ACTIVATE, f"{vnc_port},{byte_port}", *command],
            env=env,
            cwd=str(REPO),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert receive_state(sock)["READY"] == "1", log.read_text()
        with socket.create_connection(("127.0.0.1", vnc_port), timeout=10) as viewer:
            assert recv_exactly(viewer, 12, 10) == b"RFB 003.008\n"
        with socket.create_connection(("127.0.0.1", byte_port), timeout=10) as client:
            client.sendall(b"typed")
            wait_until(lambda: b"typed" in pty.read_available(), 10, log.read_text)
        assert f"VNC server listening on ('127.0.0.1', {vnc_port}) (from systemd)" in (
            log.read_text()
        )
    finally:
        proc.terminate()
        proc.wait(10)


def test_socket_activation_missing_socket_is_one_line_exit_2(
    vncmux: Callable[..., VncmuxProcess], pty: Pty
) -> None:
    proc = vncmux(["--device", pty.path, "--vnc", "systemd:0"])
    assert proc.wait(20) == 2
    assert "vncmux: error: --vnc systemd:0: systemd passed no such socket" in proc.stderr
