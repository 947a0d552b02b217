"""End to end: the audit log and the asciicast recording of a real ``twistd -n vncmux`` whose
device is a pty the test owns.

- Two VNC viewers (one with the full password, one with the view-only password) and a byte
  client attach, type and leave: the audit log holds exactly their attach/input/detach
  events, in order, each with the client's address and credential; a bad password is an
  auth-failure line; SIGHUP reopens the file after it was moved away (logrotate).
- A recorded session: ``asciinema cat`` (asciinema from PyPI) prints exactly the device's
  output, a multibyte character cut between two writes and an invalid byte included; the
  file is line-delimited JSON with the asciicast v2 header and markers.

Every wait is a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import RFBError, Viewer
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

Start = Callable[..., VncmuxProcess]
TIMEOUT = 30.0


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def wait_for_device(pty: Pty, expected: bytes) -> None:
    wait_until(
        lambda: expected in pty.read_available(),
        TIMEOUT,
        lambda: f"the device did not get {expected!r}: {pty.received!r}",
    )


def test_the_audit_log_of_two_viewers_and_a_byte_client(
    vncmux: Start, pty: Pty, tmp_path: Path
) -> None:
    full, view = tmp_path / "pw", tmp_path / "view-pw"
    full.write_text("secret1\n")
    view.write_text("look2\n")
    full.chmod(0o600)
    view.chmod(0o600)
    audit = tmp_path / "audit.jsonl"
    vnc, byte_port = free_tcp_port(), free_tcp_port()
    proc = vncmux(
        [
            "--device",
            pty.path,
            "--vnc",
            f"127.0.0.1:{vnc - 5900}",
            "--password-file",
            str(full),
            "--view-password-file",
            str(view),
            "--socket",
            f"tcp:{byte_port}:interface=127.0.0.1",
            "--audit-log",
            str(audit),
            "--audit-input",
        ]  # fmt: skip
    )
    proc.wait_for_log(r"Device .* opened", timeout=TIMEOUT)

    driver = wait_until(lambda: _viewer(vnc, b"secret1"), TIMEOUT, proc.describe)
    driver.key(ord("a"))
    wait_for_device(pty, b"a")
    watcher = Viewer(vnc).handshake(b"look2")
    watcher.key(ord("b"))  # view-only: dropped, so no input line
    script = socket.create_connection(("127.0.0.1", byte_port), timeout=TIMEOUT)
    proc.wait_for_log(r"Client .* connected to", timeout=TIMEOUT)
    a, b, s = address(driver.sock), address(watcher.sock), address(script)  # type: ignore[arg-type]
    script.sendall(b"uname\n")
    wait_for_device(pty, b"uname\n")
    script.close()
    proc.wait_for_log(r"Client .* disconnected from", timeout=TIMEOUT)
    watcher.close()
    proc.wait_for_log(r"VNC viewer .* disconnected", timeout=TIMEOUT)
    driver.close()
    proc.wait_for_log(r"VNC viewer .* disconnected", timeout=TIMEOUT, count=2)
    full_cred = {"kind": "vnc", "peer": a, "credential": "full"}
    view_cred = {"kind": "vnc", "peer": b, "credential": "view-only"}
    sock_cred = {"kind": "socket", "peer": s, "credential": "full"}
    expected = [
        ("attach", full_cred, None),
        ("input", full_cred, "a"),
        ("attach", view_cred, None),
        ("attach", sock_cred, None),
        ("input", sock_cred, "uname\\n"),
        ("detach", sock_cred, None),
        ("detach", view_cred, None),
        ("detach", full_cred, None),
    ]

    def clients() -> list[tuple[str, Any, Any]]:
        return [
            (r["event"], r["client"], r.get("input"))
            for r in records(audit)
            if r["event"] in ("attach", "input", "detach")
        ]

    wait_until(lambda: len(clients()) >= len(expected), TIMEOUT, lambda: repr(records(audit)))
    assert clients() == expected
    lines = records(audit)
    assert [r["event"] for r in lines[:2]] == ["start", "device-up"]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 24 for r in lines)
    assert [r["bytes"] for r in lines if r["event"] == "input"] == [1, 6]

    # A wrong password: an auth-failure line with the address.
    bad = Viewer(vnc)
    bad_address = address(bad.sock)  # type: ignore[arg-type]
    try:
        bad.handshake(b"wrong")
    except (RFBError, OSError):
        pass
    wait_until(
        lambda: any(r["event"] == "auth-failure" for r in records(audit)),
        TIMEOUT,
        lambda: repr(records(audit)),
    )
    failure = next(r for r in records(audit) if r["event"] == "auth-failure")
    assert failure["client"] == {"kind": "vnc", "peer": bad_address, "credential": "none"}
    bad.close()

    # logrotate: the file moved away, SIGHUP, the next line goes to a new file.
    audit.rename(tmp_path / "audit.jsonl.1")
    os.kill(proc.pid, signal.SIGHUP)
    proc.wait_for_log(r"Audit log .*: reopened", timeout=TIMEOUT)
    script = socket.create_connection(("127.0.0.1", byte_port), timeout=TIMEOUT)
    s = address(script)
    wait_until(lambda: records(audit), TIMEOUT, proc.describe)
    assert records(audit)[0]["event"] == "attach"
    assert records(audit)[0]["client"]["peer"] == s
    script.close()
    assert proc.returncode is None


def _viewer(port: int, password: bytes) -> Viewer | None:
    try:
        return Viewer(port).handshake(password)
    except ConnectionRefusedError:
        return None


def test_a_recording_plays_back_the_device_output(vncmux: Start, pty: Pty, tmp_path: Path) -> None:
    cast = tmp_path / "session.cast"
    byte_port = free_tcp_port()
    proc = vncmux(
        [
            "--device",
            pty.path,
            "--vnc",
            "none",
            "--chardev",
            "vc,id=vc0,cols=100,rows=30",
            "--socket",
            f"tcp:{byte_port}:interface=127.0.0.1",
            "--record",
            str(cast),
            "--record-input",
        ]  # fmt: skip
    )
    proc.wait_for_log(r"Device .* opened", timeout=TIMEOUT)
    client = socket.create_connection(("127.0.0.1", byte_port), timeout=TIMEOUT)
    proc.wait_for_log(r"Client .* connected to", timeout=TIMEOUT)
    euro = "€".encode()
    pieces = [b"boot: ok\r\n", b"price 5" + euro[:2], euro[2:] + b"\r\n", b"bad \xff byte\r\nEND"]
    received = b""
    for piece in pieces:
        pty.write(piece)
        want = received + piece

        def got(want: bytes = want) -> bool:
            nonlocal received
            received += client.recv(4096)
            return received == want

        wait_until(got, TIMEOUT, lambda: f"the byte client got {received!r}")
    client.sendall(b"x")
    wait_for_device(pty, b"x")
    client.close()
    proc.wait_for_log(r"Client .* disconnected from", timeout=TIMEOUT)
    proc.stop()
    assert "Server Shut Down" in proc.log  # stopped cleanly: the recording was flushed

    lines = [json.loads(line) for line in cast.read_text("utf-8").splitlines()]
    header, events = lines[0], lines[1:]
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (100, 30)
    assert isinstance(header["timestamp"], int) and header["title"]
    assert all(
        isinstance(e, list) and len(e) == 3 and isinstance(e[0], float | int) for e in events
    )
    times = [e[0] for e in events]
    assert times == sorted(times)
    kinds = {e[1] for e in events}
    assert kinds <= {"o", "i", "m", "r"}
    markers = [e[2] for e in events if e[1] == "m"]
    assert markers[0].startswith("device up")
    assert any(m.startswith("attach socket 127.0.0.1:") for m in markers)
    assert any(m.startswith("detach socket 127.0.0.1:") for m in markers)
    assert [e[2] for e in events if e[1] == "i"] == ["x"]

    played = subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(cast)],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    assert played == b"".join(pieces).decode("utf-8", "replace").encode("utf-8")
