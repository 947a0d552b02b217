"""End to end with third-party telnet and RFC 2217 clients on a real ``twistd -n vncmux``:
pyserial's ``rfc2217://`` client sets the line of a pty device (the test owns the pty and
reads its termios) and reads its modem lines (notified, and polled), the ``telnet``
command sends BREAK to an ``exec:`` device (a pty's BREAK is SIGINT to its foreground
process group, seen by a shell trap), and the telnet and RFC 2217 devices carry BREAK and
bytes to a server the test plays."""

from __future__ import annotations

import logging
import os
import select
import shutil
import socket
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from tests.support.net import connect_unix, free_tcp_port, recv_until
from tests.support.pty_device import Pty, fresh_pty, read_fd_until
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until

Start = Callable[..., VncmuxProcess]

IAC, WILL, DO, BRK = b"\xff", b"\xfb", b"\xfd", b"\xf3"
ECHO, SGA, BINARY = b"\x01", b"\x03", b"\x00"


def rfc2217_vncmux(vncmux: Start, pty: Pty) -> tuple[VncmuxProcess, int]:
    port = free_tcp_port()
    proc = vncmux(
        [
            "--vnc",
            "none",
            "--device",
            pty.path,
            "--telnet",
            f"tcp:{port}:interface=127.0.0.1",
            "--rfc2217",
        ]
    )
    proc.wait_for_log(r"Device .* opened")
    proc.wait_for_log(r"Listening for byte clients")
    return proc, port


def line_of(fd: int) -> tuple[int, int, bool, bool]:
    """(speed, data bits flag, two stop bits, parity) as the kernel has them."""
    attrs = termios.tcgetattr(fd)
    cflag = attrs[2]
    return (
        attrs[4],
        cflag & termios.CSIZE,
        bool(cflag & termios.CSTOPB),
        bool(cflag & termios.PARENB),
    )


def test_pyserial_sets_9600_8n2_on_a_pty_device_and_bytes_flow(vncmux: Start, pty: Pty) -> None:
    proc, port = rfc2217_vncmux(vncmux, pty)
    client = serial.serial_for_url(
        f"rfc2217://127.0.0.1:{port}", baudrate=9600, bytesize=8, parity="N", stopbits=2, timeout=5
    )
    try:
        assert line_of(pty.slave) == (termios.B9600, termios.CS8, True, False)
        client.write(b"ping\xff\r")
        assert read_fd_until(pty.master, b"ping\xff\r", 10).endswith(b"ping\xff\r")
        pty.write(b"pong\xff!")
        assert client.read(6) == b"pong\xff!"
        client.send_break(0.1)
        proc.wait_for_log(
            r"BREAK from telnet 127\.0\.0\.1:\d+ \(RFC 2217 BREAK-ON\) to .*serial break"
        )
    finally:
        client.close()


def test_settings_a_pty_refuses_are_answered_with_the_old_value(vncmux: Start, pty: Pty) -> None:
    proc, port = rfc2217_vncmux(vncmux, pty)
    client = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", baudrate=19200, timeout=5)
    try:
        with pytest.raises(ValueError, match="rejected value for option 'datasize'"):
            client.bytesize = 7  # a pty: EINVAL
        client.bytesize = 8
        with pytest.raises(ValueError, match="rejected value for option 'parity'"):
            client.parity = "E"
        client.parity = "N"
        client.dtr = False  # a pty has no modem lines: remembered, answered as asked
        assert line_of(pty.slave) == (termios.B19200, termios.CS8, False, False)
        proc.wait_for_log(r"asked for data bits 7: the device keeps 8")
        proc.wait_for_log(r"asked for parity E: the device keeps N")
        proc.wait_for_log(r"has no modem lines \(ENOTTY\)")
        client.write(b"still here\r")  # the server stayed up, the line still works
        read_fd_until(pty.master, b"still here\r", 10)
        assert proc.returncode is None
    finally:
        client.close()


def test_pyserial_reads_the_modem_lines_of_a_pty_device(
    vncmux: Start, pty: Pty, caplog: pytest.LogCaptureFixture
) -> None:
    proc, port = rfc2217_vncmux(vncmux, pty)
    # pyserial refuses to read CTS/DSR/RI/CD until the server sent NOTIFY-MODEMSTATE once
    client = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", timeout=5)
    try:
        # a pty has no modem lines: vncmux reports a null-modem cable's CTS, DSR and CD
        assert (client.cts, client.dsr, client.cd, client.ri) == (True, True, True, False)
    finally:
        client.close()
    url = f"rfc2217://127.0.0.1:{port}?poll_modem&logging=debug"
    with caplog.at_level(logging.DEBUG, logger="pySerial.rfc2217"):
        polling = serial.serial_for_url(url, timeout=5)
        try:
            for _ in range(3):
                time.sleep(0.4)  # let the client's 0.3 s cache age: each look polls the server
                assert (polling.cts, polling.dsr, polling.cd, polling.ri) == (
                    True,
                    True,
                    True,
                    False,
                )
        finally:
            polling.close()
    assert caplog.text.count("polling modem state") >= 3
    assert "poll for modem state failed" not in caplog.text
    assert proc.returncode is None


def test_pyserial_sees_every_line_drop_when_the_device_goes_away(vncmux: Start, pty: Pty) -> None:
    proc, port = rfc2217_vncmux(vncmux, pty)
    client = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", timeout=5)
    try:
        assert client.cd and client.cts and client.dsr
        os.close(pty.master)  # the far end hangs up: vncmux reads EIO, the device is lost
        pty.master = -1  # closed here already (the fixture's close ignores the error)
        proc.wait_for_log(r"Device \S+ lost")
        wait_until(
            lambda: not (client.cd or client.cts or client.dsr),
            10,
            lambda: f"the client still sees CD={client.cd} CTS={client.cts} DSR={client.dsr}",
        )
        assert proc.returncode is None
    finally:
        client.close()


def test_without_rfc2217_the_com_port_option_is_refused(vncmux: Start, pty: Pty) -> None:
    port = free_tcp_port()
    proc = vncmux(
        ["--vnc", "none", "--device", pty.path, "--telnet", f"tcp:{port}:interface=127.0.0.1"]
    )
    proc.wait_for_log(r"Listening for byte clients")
    url = f"rfc2217://127.0.0.1:{port}?timeout=1"
    with pytest.raises(serial.SerialException, match="does not accept parameter change"):
        serial.serial_for_url(url, baudrate=9600)
    assert proc.returncode is None


# -- the telnet command ------------------------------------------------------------------


class Terminal:
    """A program run on a pty the test holds, as a person at a terminal runs it."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave, _path = fresh_pty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.seen = b""

    def expect(self, marker: bytes, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} from the terminal; saw {self.seen[-500:]!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    raise AssertionError(f"terminal closed; saw {self.seen[-500:]!r}") from None

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminals() -> Iterator[Callable[[list[str]], Terminal]]:
    made: list[Terminal] = []

    def make(argv: list[str]) -> Terminal:
        made.append(Terminal(argv))
        return made[-1]

    yield make
    for terminal in made:
        terminal.close()


def test_the_telnet_command_sends_break_which_an_exec_device_gets_as_sigint(
    vncmux: Start, terminals: Callable[[list[str]], Terminal]
) -> None:
    telnet = shutil.which("telnet")
    assert telnet, "the telnet command is needed (Debian package telnet)"
    port = free_tcp_port()
    # (READY again and again: the break is sent once the trap is surely in place, whenever
    # the telnet client came in)
    script = 'trap "echo GOT-INT" INT; while :; do echo READY; sleep 0.2; done'
    proc = vncmux(
        [
            "--vnc",
            "none",
            "--device",
            f"exec:sh -c '{script}'",
            "--telnet",
            f"tcp:{port}:interface=127.0.0.1",
        ]
    )
    proc.wait_for_log(r"Listening for byte clients")
    term = terminals([telnet, "127.0.0.1", str(port)])
    term.expect(b"Escape character is")
    proc.wait_for_log(r"Client 127\.0\.0\.1:\d+ connected")
    term.expect(b"READY")
    term.type(b"\x1d")  # Ctrl+]: telnet's own prompt
    term.expect(b"telnet>")
    term.type(b"send brk\n")
    term.expect(b"GOT-INT")  # the shell's trap ran: SIGINT reached the foreground group
    proc.wait_for_log(r"BREAK from telnet 127\.0\.0\.1:\d+ \(IAC BREAK\) to exec:.*SIGINT")


# -- the network devices: telnet: and rfc2217:// ------------------------------------------


class TelnetSerialServer(threading.Thread):
    """Plays QEMU's ``-serial telnet:...,server=on``: offers ECHO, SGA and BINARY, keeps
    every byte vncmux sends, and sends what the test gives it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.conn: socket.socket | None = None
        self.start()

    def run(self) -> None:
        self.listener.settimeout(30)
        conn, _ = self.listener.accept()
        self.conn = conn
        conn.sendall(IAC + WILL + ECHO + IAC + WILL + SGA + IAC + WILL + BINARY + IAC + DO + BINARY)
        try:
            while chunk := conn.recv(4096):
                self.received += chunk
        except OSError:
            pass  # vncmux went away first (aborted at its shutdown)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def test_a_telnet_device_gets_iac_break_and_escaped_bytes(vncmux: Start) -> None:
    server = TelnetSerialServer()
    try:
        port = free_tcp_port()
        proc = vncmux(
            [
                "--vnc",
                "none",
                "--device",
                f"telnet:127.0.0.1:{server.port}",
                "--telnet",
                f"tcp:{port}:interface=127.0.0.1",
            ]
        )
        proc.wait_for_log(r"Device telnet:127\.0\.0\.1:\d+ opened")
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        proc.wait_for_log(r"Client 127\.0\.0\.1:\d+ connected")
        client.sendall(b"a" + IAC + IAC + b"b" + IAC + BRK + b"h")
        wait_until(
            lambda: b"a\xff\xffb\xff\xf3h" in server.received,
            10,
            lambda: f"the telnet server got {server.received!r}",
        )
        assert server.conn is not None
        server.conn.sendall(b"x\xff\xffy")  # the server's 0xff, escaped
        assert recv_until(client, b"x\xff\xffy", 10).endswith(b"x\xff\xffy")
        proc.wait_for_log(r"BREAK from telnet .* to telnet:127\.0\.0\.1:\d+: IAC BREAK")
        client.close()
    finally:
        server.close()


def test_an_rfc2217_device_passes_its_line_settings_through(
    vncmux: Start, pty: Pty, short_tmp: Path
) -> None:
    _server, port = rfc2217_vncmux(vncmux, pty)
    sock = short_tmp / "b.sock"
    relay = vncmux(
        [
            "--vnc",
            "none",
            "--device",
            f"rfc2217://127.0.0.1:{port}",
            "--baud",
            "9600",
            "--stopbits",
            "2",
            "--socket",
            f"unix:{sock}",
        ]
    )
    relay.wait_for_log(r"Device rfc2217://127\.0\.0\.1:\d+ opened", timeout=20)
    assert line_of(pty.slave) == (termios.B9600, termios.CS8, True, False)
    client = connect_unix(sock)
    relay.wait_for_log(r"Client .* connected")
    client.sendall(b"through\xff")
    read_fd_until(pty.master, b"through\xff", 10)
    pty.write(b"back\xff")
    assert recv_until(client, b"back\xff", 10).endswith(b"back\xff")
    client.close()
