"""Viewer slots against a real ``twistd -n vncmux``: hostile connections cannot hold them.

- A connection the server has closed gives its place in ``connections=`` back at once and
  is gone within the close grace, even when its peer reads nothing: over TLS (X509Plain
  with over-long lengths, X509Vnc with a wrong password: the TLS close used to wait for a
  producer that was never unregistered) and after authentication (a viewer that stops
  reading, then sends junk, used to stay forever, whatever ``--stall-timeout`` said).
- A flood of handshakes from one host evicts its own, not a user from another host who is
  still at the password prompt.
- The blacklist holds for every address of a host: all of 127.0.0.0/8 is one host.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RAW, RFBError, Viewer
from tests.support.tls_files import TLSFiles
from tests.support.vncmux_process import VncmuxProcess
from vncmux.rfb import vencrypt

Start = Callable[..., VncmuxProcess]

# The server's close grace is 2 s; every deadline here leaves ample margin over it, and
# none is long enough for the old behaviour (never) to pass.
DEADLINE = 10.0


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    directory = tmp_path / "pki"
    directory.mkdir()
    return TLSFiles(directory)


@pytest.fixture
def held() -> Iterator[list[socket.socket | ssl.SSLSocket]]:
    """Sockets the test keeps open (and unread) until it ends."""
    socks: list[socket.socket | ssl.SSLSocket] = []
    yield socks
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def serve(start: Start, pty: Pty, vnc_options: str, *extra: str) -> tuple[VncmuxProcess, int]:
    port = free_tcp_port()
    proc = start(["--device", pty.path, "--vnc", f"127.0.0.1:{port - 5900}{vnc_options}", *extra])
    proc.wait_for_log(r"VNC server listening", timeout=30)
    proc.wait_for_log(r"Device .* opened", timeout=30)
    return proc, port


def local_port(sock: socket.socket | ssl.SSLSocket) -> int:
    return int(sock.getsockname()[1])


def gone(proc: VncmuxProcess, sock: socket.socket | ssl.SSLSocket) -> None:
    """Wait for the server's log to say this (unread) connection is gone."""
    proc.wait_for_log(rf"VNC viewer 127\.0\.0\.1:{local_port(sock)} disconnected", DEADLINE)


def gets_in(port: int, **kw: str) -> Viewer:
    """A viewer that completes the handshake (security None) and is served."""
    v = Viewer(port, **kw).handshake()
    v.set_encodings(RAW)
    v.alive()
    return v


# -- item 1: a close always finishes, and a closed viewer does not count ------------------


def users_file(tmp_path: Path) -> str:
    path = tmp_path / "users"
    path.write_text("alice:a long passphrase\n")
    path.chmod(0o600)
    return str(path)


def password_file(tmp_path: Path, password: str) -> str:
    path = tmp_path / "pw"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return str(path)


def tls_viewer(port: int, subtype: int, tls: TLSFiles) -> Viewer:
    v = Viewer(port)
    v.version()
    assert v.security_types() == [vencrypt.SEC_VENCRYPT]
    v.vencrypt(subtype, tls.client_context())
    return v


def overlong_plain(port: int, tls: TLSFiles) -> Viewer:
    """X509Plain, then lengths past the cap: the server refuses and closes."""
    v = tls_viewer(port, vencrypt.X509_PLAIN, tls)
    v.send(struct.pack("!II", 5, 0xFFFFFFFF))
    return v


def wrong_vnc_password(port: int, tls: TLSFiles) -> Viewer:
    """X509Vnc with a wrong password: the server answers "failed" and closes."""
    v = tls_viewer(port, vencrypt.X509_VNC, tls)
    v.vnc_auth(b"wrong")
    return v


@pytest.mark.parametrize("attack", [overlong_plain, wrong_vnc_password])
def test_tls_connections_closed_without_reading_do_not_hold_slots(
    vncmux: Start,
    pty: Pty,
    tls: TLSFiles,
    tmp_path: Path,
    held: list[socket.socket | ssl.SSLSocket],
    attack: Callable[[int, TLSFiles], Viewer],
) -> None:
    proc, port = serve(
        vncmux,
        pty,
        f",tls-cert={tls.cert},tls-key={tls.key},connections=2",
        "--users-file",
        users_file(tmp_path),
        "--password-file",
        password_file(tmp_path, "secret"),
    )
    for _ in range(2):
        held.append(attack(port, tls).sock)  # never read, never closed by the client
    proc.wait_for_log(r"; closing", DEADLINE, count=2)
    # the two slots are free at once: a real user gets in
    v = tls_viewer(port, vencrypt.X509_PLAIN, tls)
    v.send(vencrypt.plain_credentials("alice", "a long passphrase"))
    v.security_result()
    v.client_init()
    v.set_encodings(RAW)
    v.alive()
    # and the hostile connections are gone, though they never read nor answered the close
    for sock in held:
        gone(proc, sock)
    assert "limit of 2 connections reached" not in proc.log


def test_a_viewer_that_stops_reading_then_sends_junk_does_not_hold_its_slot(
    vncmux: Start, pty: Pty, held: list[socket.socket | ssl.SSLSocket]
) -> None:
    # A raw frame of 300x100 cells is over 10 MB: more than the kernel's socket buffers
    # hold, so the server's transport is full, as with a viewer that stopped reading.
    proc, port = serve(
        vncmux, pty, ",connections=2", "--cols", "300", "--rows", "100", "--stall-timeout", "600"
    )
    for _ in range(2):
        v = Viewer(port)
        v.handshake()
        v.set_encodings(RAW)
        v.request(0)  # a whole raw frame, never read
        v.send(bytes([100]) + bytes(30))  # then junk (an unknown message type)
        held.append(v.sock)
    proc.wait_for_log(r"unknown message type 100.*; closing", DEADLINE, count=2)
    gets_in(port)  # within the limit again at once
    for sock in held:
        gone(proc, sock)  # dropped within the close grace, not after --stall-timeout
    proc.wait_for_log(r"still open 2 s after closing; aborting", DEADLINE)


# -- item 6: a flood of handshakes from one host evicts its own -------------------------


def test_a_handshake_flood_from_one_host_does_not_evict_a_user_typing_a_password(
    vncmux: Start, pty: Pty, tmp_path: Path, held: list[socket.socket | ssl.SSLSocket]
) -> None:
    # All of 127.0.0.0/8 is one host; the user is played from ::1, a host of its own, on a
    # dual-stack listener (IPv4 peers arrive as mapped addresses and count as IPv4).
    port = free_tcp_port()
    proc = vncmux(
        [
            "--device",
            pty.path,
            "--vnc",
            f"[::]:{port - 5900}",
            "--password-file",
            password_file(tmp_path, "pw"),
        ]
    )
    proc.wait_for_log(r"VNC server listening", timeout=30)
    proc.wait_for_log(r"Device .* opened", timeout=30)
    user = Viewer(port, host="::1")
    source = "::1"
    user.version()
    assert user.security_types() == [2]
    user.send(b"\x02")
    challenge = user.recv(16)  # at the password prompt, taking their time
    flood = []
    for _ in range(64):  # many more than the 16 handshakes allowed in progress at once
        f = Viewer(port)
        held.append(f.sock)
        flood.append(f)
    proc.wait_for_log(r"VNC connection from \[::ffff:127\.0\.0\.1\]", DEADLINE, count=64)
    proc.wait_for_log(r"evicted: 16 handshakes in progress", DEADLINE, count=48)
    from vncmux.rfb.auth import vnc_auth_response

    user.send(vnc_auth_response(challenge, b"pw"))
    user.security_result()  # not evicted: logged in
    user.client_init()
    user.set_encodings(RAW)
    user.alive()
    assert f"VNC viewer [{source}]:{local_port(user.sock)}: evicted" not in proc.log


# -- item 8: the blacklist holds for every address of a host ----------------------------


def test_blacklist_holds_across_the_loopback_range(vncmux: Start, pty: Pty, tmp_path: Path) -> None:
    proc, port = serve(vncmux, pty, "", "--password-file", password_file(tmp_path, "pw"))
    for i in range(5):
        v = Viewer(port, source=f"127.0.0.{i + 2}")  # a new address for every guess
        with pytest.raises(RFBError, match="security result 1"):
            v.handshake(b"wrong")
        v.close()
    proc.wait_for_log(r"5 authentication failures from 127\.0\.0\.6; blocked for 10 s")
    for address in ("127.0.0.1", "127.0.0.41", "127.1.2.3"):
        v = Viewer(port, source=address)
        with pytest.raises(RFBError, match="too many authentication failures"):
            v.handshake(b"pw")  # even the right password, from any loopback address
        v.close()
