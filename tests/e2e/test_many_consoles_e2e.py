"""Many consoles in one real ``twistd -n vncmux --config FILE``: each console's VNC display
shows its own device's text; SIGHUP adds and removes consoles while an unchanged console's
byte client keeps every byte; a bad file is one line and exit status 2; a bad file on
reload is logged and changes nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.rfbkit import Viewer, wait_closed
from tests.support.screen_image import expected_screen
from tests.support.vncmux_process import VncmuxProcess
from tests.support.waiting import wait_until
from vncmux.console.render import Renderer

VNCDO = shutil.which("vncdo") or str(Path(sys.executable).with_name("vncdo"))


def vnc_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(12).startswith(b"RFB ")
    except OSError:
        return False


def shows(port: int, output: bytes, directory: Path) -> None:
    """Wait until the viewer on ``port`` shows ``output`` pixel for pixel (the terminal's
    area: anything drawn below it, such as a status line, is not compared)."""
    want = expected_screen(output)
    shots: list[Image.Image] = []

    def matches() -> bool:
        path = directory / f"shot-{port}-{len(shots)}.png"
        subprocess.run(
            [VNCDO, "--nocursor", "-t", "20", "-s", f"127.0.0.1::{port}", "capture", str(path)],
            check=True,
            timeout=30,
            capture_output=True,
        )
        with Image.open(path) as img:
            shots.append(img.convert("RGB").crop((0, 0, *want.size)))
        return ImageChops.difference(shots[-1], want).getbbox() is None

    wait_until(matches, timeout=30, interval=0.2, message=lambda: f"port {port} never showed it")


class Console:
    """One console of the file: its pty, VNC port and byte socket port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pty = Pty()
        self.vnc = free_tcp_port()
        self.bytes = free_tcp_port()

    def table(self, **extra: str) -> str:
        lines = [
            "[[console]]",
            f'name = "{self.name}"',
            f'device = "{self.pty.path}"',
            f'vnc = "127.0.0.1:{self.vnc - 5900}"',
            f'sockets = ["tcp:{self.bytes}:interface=127.0.0.1"]',
        ]
        lines += [f"{key} = {value}" for key, value in extra.items()]
        return "\n".join(lines) + "\n"


def write_config(path: Path, consoles: list[Console], **extra: dict[str, str]) -> None:
    """The file: ``extra`` maps a console's name to keys of its own."""
    tables = [c.table(**extra.get(c.name, {})) for c in consoles]
    path.write_text('history = "256K"\n\n' + "\n".join(tables))


@pytest.fixture
def consoles() -> Iterator[dict[str, Console]]:
    made = {name: Console(name) for name in ("alpha", "bravo", "charlie", "delta")}
    yield made
    for console in made.values():
        console.pty.close()


def start_site(
    vncmux: Callable[..., VncmuxProcess], config: Path, running: list[Console]
) -> VncmuxProcess:
    proc = vncmux(["--config", str(config)])
    proc.wait_for_log(r"Device /dev/pts/\d+ opened", timeout=45, count=len(running))
    for console in running:
        wait_until(lambda c=console: vnc_open(c.vnc), timeout=30, message=proc.describe)
    return proc


def text_for(name: str) -> bytes:
    return f"console {name} says hello\r\n\x1b[1;32m{name.upper()}\x1b[0m $ ".encode()


def test_three_consoles_show_their_own_text(
    vncmux: Callable[..., VncmuxProcess], consoles: dict[str, Console], tmp_path: Path
) -> None:
    running = [consoles[n] for n in ("alpha", "bravo", "charlie")]
    config = tmp_path / "consoles.toml"
    write_config(config, running)
    start_site(vncmux, config, running)
    for console in running:
        console.pty.write(text_for(console.name))
    for console in running:
        shows(console.vnc, text_for(console.name), tmp_path)


class ByteReader(threading.Thread):
    """A byte client reading everything until the server closes."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.data = bytearray()
        self.closed = False

    def run(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
        except OSError:
            pass
        self.closed = True


class CounterWriter(threading.Thread):
    """Writes numbered lines to a pty's master until stopped; keeps what it wrote."""

    def __init__(self, pty: Pty) -> None:
        super().__init__(daemon=True)
        self.pty = pty
        self.written = bytearray()
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            chunk = b"".join(b"%08d\n" % i for i in range(n, n + 40))
            n += 40
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.pty.master, view) :]
            self.written += chunk
            time.sleep(0.002)  # pacing, so the stream spans the reload (not a wait)


def test_sighup_adds_and_removes_while_an_unchanged_console_keeps_every_byte(
    vncmux: Callable[..., VncmuxProcess], consoles: dict[str, Console], tmp_path: Path
) -> None:
    alpha, bravo, charlie, delta = (consoles[n] for n in ("alpha", "bravo", "charlie", "delta"))
    config = tmp_path / "consoles.toml"
    write_config(config, [alpha, bravo, charlie])
    proc = start_site(vncmux, config, [alpha, bravo, charlie])

    reader = ByteReader(alpha.bytes)
    leaving = ByteReader(charlie.bytes)
    proc.wait_for_log(rf"Client .* connected to tcp:{charlie.bytes}", timeout=10)
    proc.wait_for_log(rf"Client .* connected to tcp:{alpha.bytes}", timeout=10)
    reader.start()
    leaving.start()
    viewer = Viewer(alpha.vnc).handshake()
    viewer.alive()
    gone = Viewer(charlie.vnc).handshake()
    gone.alive()

    writer = CounterWriter(alpha.pty)
    writer.start()
    wait_until(lambda: len(reader.data) > 20_000, timeout=30, message="no stream before")

    # charlie leaves, delta arrives, bravo changes (same ports: rebound after the old close)
    write_config(config, [alpha, bravo, delta], bravo={"cols": "100"})
    os.kill(proc.pid, signal.SIGHUP)
    proc.wait_for_log(r"reload: added delta, removed charlie, restarted bravo, unchanged alpha")
    wait_until(lambda: vnc_open(delta.vnc), timeout=30, message=proc.describe)
    wait_until(lambda: vnc_open(bravo.vnc), timeout=30, message=proc.describe)
    restarted = Viewer(bravo.vnc).handshake()  # the new bravo: 100 columns wide
    restarted.close()
    assert restarted.width == Renderer(100, 24).image.width
    wait_until(lambda: leaving.closed, timeout=10, message="charlie's client not closed")
    wait_closed(gone.sock, timeout=10)  # charlie's viewer too
    proc.wait_for_log(r"VNC viewer .*: console charlie removed; closing")
    during = len(reader.data)
    wait_until(lambda: len(reader.data) > during + 20_000, timeout=30, message="no stream after")
    writer.stop.set()
    writer.join(10)
    wait_until(
        lambda: len(reader.data) >= len(writer.written),
        timeout=30,
        message=lambda: f"got {len(reader.data)} of {len(writer.written)} bytes",
    )

    assert hashlib.sha256(reader.data).hexdigest() == hashlib.sha256(writer.written).hexdigest()
    assert not reader.closed
    viewer.alive()  # alpha's viewer is still connected and served
    assert b"[vncmux: console charlie removed]" in leaving.data
    assert not vnc_open(charlie.vnc)
    delta.pty.write(text_for("delta"))
    shows(delta.vnc, text_for("delta"), tmp_path)
    viewer.close()
    reader.sock.close()


def test_a_config_error_exits_2_naming_file_console_and_key(
    vncmux: Callable[..., VncmuxProcess], consoles: dict[str, Console], tmp_path: Path
) -> None:
    config = tmp_path / "consoles.toml"
    good = consoles["alpha"].table()
    config.write_text(good + "\n" + consoles["bravo"].table(baud='"fast"'))
    proc = vncmux(["--config", str(config)])
    assert proc.wait(30) == 2
    assert proc.stderr.startswith(f"vncmux: error: {config}: console 'bravo': key 'baud': ")
    assert proc.stderr.count("\n") == 1
    assert not vnc_open(consoles["alpha"].vnc)  # nothing listened


def test_two_consoles_on_one_display_exit_2_naming_both(
    vncmux: Callable[..., VncmuxProcess], consoles: dict[str, Console], tmp_path: Path
) -> None:
    alpha, bravo = consoles["alpha"], consoles["bravo"]
    bravo.vnc = alpha.vnc
    config = tmp_path / "consoles.toml"
    write_config(config, [alpha, bravo])
    proc = vncmux(["--config", str(config)])
    assert proc.wait(30) == 2
    assert proc.stderr == (
        f"vncmux: error: {config}: console 'bravo' and console 'alpha' both listen on "
        f"127.0.0.1:{alpha.vnc} (VNC display {alpha.vnc - 5900}; VNC display "
        f"{alpha.vnc - 5900})\n"
    )


def test_a_reload_with_an_error_changes_nothing(
    vncmux: Callable[..., VncmuxProcess], consoles: dict[str, Console], tmp_path: Path
) -> None:
    alpha, bravo = consoles["alpha"], consoles["bravo"]
    config = tmp_path / "consoles.toml"
    write_config(config, [alpha, bravo])
    proc = start_site(vncmux, config, [alpha, bravo])
    reader = ByteReader(bravo.bytes)
    reader.start()
    proc.wait_for_log(rf"Client .* connected to tcp:{bravo.bytes}", timeout=10)

    config.write_text(alpha.table() + "\n" + bravo.table(cols="5000"))
    os.kill(proc.pid, signal.SIGHUP)
    proc.wait_for_log(rf"reload refused, nothing changed: {config}: console 'bravo': key 'cols': ")
    bravo.pty.write(b"still here\r\n")
    wait_until(lambda: b"still here" in reader.data, timeout=10, message="bravo's client lost")
    assert not reader.closed and vnc_open(alpha.vnc) and vnc_open(bravo.vnc)
    assert "reload: added" not in proc.log
    reader.sock.close()
