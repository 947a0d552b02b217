"""Security end to end against a real ``twistd -n vncmux``: VeNCrypt with a real TLS client
(Python's ssl module on the same socket after the VeNCrypt exchange), client certificates,
X509Plain users, the view-only password, TLS raw byte sockets, the authentication blacklist
and the start-up warning for unauthenticated listeners."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.net import connect_unix, free_tcp_port, recv_until
from tests.support.pty_device import Pty, read_fd_until
from tests.support.rfbkit import RFBError, Viewer
from tests.support.tls_files import TLSFiles
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until
from vncmux.rfb import vencrypt

Start = Callable[..., VncmuxProcess]


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    directory = tmp_path / "pki"
    directory.mkdir()
    return TLSFiles(directory)


def serve(start: Start, pty: Pty, vnc_options: str = "", *extra: str) -> tuple[VncmuxProcess, int]:
    port = free_tcp_port()
    proc = start(["--device", pty.path, "--vnc", f"127.0.0.1:{port - 5900}{vnc_options}", *extra])
    proc.wait_for_log(r"VNC server listening", timeout=30)
    proc.wait_for_log(r"Device .* opened", timeout=30)
    return proc, port


def password_file(tmp_path: Path, name: str, password: str) -> str:
    path = tmp_path / name
    path.write_text(password + "\n")
    return str(path)


def test_x509vnc_real_tls_and_input(vncmux: Start, pty: Pty, tls: TLSFiles, tmp_path: Path) -> None:
    proc, port = serve(
        vncmux,
        pty,
        f",tls-cert={tls.cert},tls-key={tls.key}",
        "--password-file",
        password_file(tmp_path, "pw", "secret"),
    )
    v = Viewer(port)
    v.version()
    assert v.security_types() == [vencrypt.SEC_VENCRYPT]  # nothing in clear text
    offered = v.vencrypt(vencrypt.X509_VNC, tls.client_context())
    assert offered == [vencrypt.X509_VNC]
    assert isinstance(v.sock, ssl.SSLSocket) and v.sock.version() in ("TLSv1.2", "TLSv1.3")
    v.vnc_auth(b"secret")
    v.security_result()
    v.client_init()
    v.set_encodings(16, 0)
    v.alive()
    v.key(ord("q"))
    assert b"q" in read_fd_until(pty.master, b"q", 10)
    proc.wait_for_log(r"TLS started \(VeNCrypt X509Vnc\)")
    # a clear-text client that asks for VNC auth anyway is refused (CVE-2006-2369)
    plain = Viewer(port)
    plain.version()
    plain.security_types()
    plain.send(b"\x02")
    with pytest.raises(RFBError, match="security result 1"):
        plain.security_result()
    v.close()


def test_x509plain_with_client_certificates(
    vncmux: Start, pty: Pty, tls: TLSFiles, tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("alice:a long passphrase\nbob:watch:view\n")
    proc, port = serve(
        vncmux,
        pty,
        f",tls-cert={tls.cert},tls-key={tls.key},tls-ca={tls.ca},x509verify=on",
        "--users-file",
        str(users),
    )
    # without a client certificate the TLS handshake fails and the server says why
    anon = Viewer(port)
    anon.version()
    anon.security_types()
    anon.send(bytes([19]))
    anon.recv(2)
    anon.send(b"\x00\x02")
    anon.recv(2 + 4)
    anon.send(vencrypt.X509_PLAIN.to_bytes(4, "big"))
    assert anon.u8() == 1
    raw = anon.sock
    assert isinstance(raw, socket.socket)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        # TLS 1.2: the server refuses during the handshake ("handshake failure")
        wrapped = tls.client_context().wrap_socket(raw, server_hostname="localhost")
        wrapped.sendall(vencrypt.plain_credentials("alice", "a long passphrase"))
        wrapped.recv(4)
    raw.close()
    proc.wait_for_log(r"disconnected \(state plain: .*peer did not return a certificate")

    # with one: alice logs in and is logged with her certificate's subject
    v = Viewer(port)
    v.version()
    v.security_types()
    assert v.vencrypt(vencrypt.X509_PLAIN, tls.client_context(with_cert=True)) == [
        vencrypt.X509_PLAIN
    ]
    v.send(vencrypt.plain_credentials("alice", "a long passphrase"))
    v.security_result()
    v.client_init()
    v.set_encodings(0)
    v.alive()
    proc.wait_for_log(r"authenticated as user 'alice'.*client certificate CN=alice")
    # a wrong password inside TLS is refused after the delay
    w = Viewer(port)
    w.version()
    w.security_types()
    w.vencrypt(vencrypt.X509_PLAIN, tls.client_context(with_cert=True))
    w.send(vencrypt.plain_credentials("alice", "guess"))
    with pytest.raises(RFBError, match="authentication failed"):
        w.security_result()
    proc.wait_for_log(r"authentication failed for user 'alice' from 127\.0\.0\.1")


def test_view_password_e2e(vncmux: Start, pty: Pty, tmp_path: Path) -> None:
    proc, port = serve(
        vncmux,
        pty,
        "",
        "--password-file",
        password_file(tmp_path, "pw", "full"),
        "--view-password-file",
        password_file(tmp_path, "view", "look"),
    )
    watcher = Viewer(port).handshake(b"look")
    watcher.set_encodings(0)
    watcher.key(ord("w"))
    watcher.send(bytes([5, 4, 0, 10, 0, 10]) + bytes([5, 0, 0, 10, 0, 10]))  # wheel
    watcher.alive()  # still served
    proc.wait_for_log(r"is view-only: its key events")
    driver = Viewer(port).handshake(b"full")
    driver.key(ord("d"))
    got = read_fd_until(pty.master, b"d", 10)
    assert b"w" not in got


def test_blacklist_e2e(vncmux: Start, pty: Pty, tmp_path: Path) -> None:
    proc, port = serve(vncmux, pty, "", "--password-file", password_file(tmp_path, "pw", "pw"))
    for _ in range(5):
        v = Viewer(port)
        with pytest.raises(RFBError, match="security result 1"):
            v.handshake(b"wrong")
        v.close()
    proc.wait_for_log(r"5 authentication failures from 127\.0\.0\.1; blocked for 10 s")
    v = Viewer(port)
    with pytest.raises(RFBError, match="too many authentication failures"):
        v.handshake(b"pw")  # the right password does not help now


def test_tls_byte_socket(vncmux: Start, pty: Pty, tls: TLSFiles) -> None:
    port = free_tcp_port()
    endpoint = f"ssl:{port}:interface=127.0.0.1:privateKey={tls.key}:certKey={tls.cert}"
    proc = vncmux(["--device", pty.path, "--vnc", "none", "--socket", endpoint])
    proc.wait_for_log(r"Device .* opened", timeout=30)

    def connect() -> ssl.SSLSocket | None:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            return None
        return tls.client_context().wrap_socket(raw, server_hostname="localhost")

    client = wait_until(connect, 20, proc.describe)
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    client.sendall(b"typed over tls")  # also makes the server finish its side of the handshake
    assert b"typed over tls" in read_fd_until(pty.master, b"typed over tls", 10)
    os.write(pty.master, b"device says hi\n")
    assert b"device says hi" in recv_until(client, b"device says hi", 10)  # type: ignore[arg-type]
    client.close()


def test_warning_for_unauthenticated_listeners(vncmux: Start, pty: Pty) -> None:
    port = free_tcp_port()
    byte_port = free_tcp_port()
    proc = vncmux(
        ["--device", pty.path, "--vnc", f":{port - 5900}", "--socket", f"tcp:{byte_port}"]
    )
    proc.wait_for_log(r"VNC server listening", timeout=30)
    wait_until(lambda: proc.stderr.count("WARNING") >= 2, 10, proc.describe)
    assert "VNC listens on all interfaces" in proc.stderr
    assert f"byte socket tcp:{byte_port} listens beyond loopback" in proc.stderr
    assert "WITHOUT AUTHENTICATION" in proc.log


def test_read_only_byte_socket(vncmux: Start, pty: Pty, short_tmp: Path) -> None:
    ro_path, rw_path = short_tmp / "ro.sock", short_tmp / "rw.sock"
    proc = vncmux(
        [
            "--device",
            pty.path,
            "--vnc",
            "none",
            "--socket-ro",
            f"unix:{ro_path}",
            "--socket",
            f"unix:{rw_path}",
        ]
    )
    proc.wait_for_log(r"Device .* opened", timeout=30)
    ro, rw = connect_unix(ro_path), connect_unix(rw_path)
    proc.wait_for_log(r"connected to unix:.*ro\.sock")
    proc.wait_for_log(r"connected to unix:.*rw\.sock")
    os.write(pty.master, b"output for all\n")
    assert b"output for all" in recv_until(ro, b"output for all", 10)
    assert b"output for all" in recv_until(rw, b"output for all", 10)
    ro.sendall(b"<from-ro>")
    proc.wait_for_log(r"read-only .*: its input is ignored")
    rw.sendall(b"<from-rw>")
    got = read_fd_until(pty.master, b"<from-rw>", 10)
    assert b"<from-ro>" not in got
    ro.close()
    rw.close()
