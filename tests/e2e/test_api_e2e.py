"""End to end: the HTTP/JSON API (``--api``) of a real ``twistd -n vncmux``, through
``vncmux.client`` and ``vncmux-ctl``.

The device is a pty or a listening UNIX socket the test owns (so it can drop the device and
take it back).  What is shown: the output resumes exactly at an offset across a device
reconnect, and a stream that stays open carries it all; ``wait`` matches text that arrives
in pieces and across a screen redraw; ``/screen`` of a colourful screen, drawn again from
its JSON with our renderer (no terminal emulator involved), is pixel for pixel
``/screen.png``; a view-only token cannot type; the README's recipe logs into a guest.
Every wait is a condition with a deadline.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from wcwidth import wcwidth

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.vncmux_process import REPO, VncmuxProcess
from tests.support.waiting import wait_until
from vncmux.client import ApiError, Client
from vncmux.console.cells import Cell
from vncmux.console.render import Renderer

Start = Callable[..., VncmuxProcess]
TIMEOUT = 20.0


class DeviceSocket:
    """A listening UNIX socket standing in for a QEMU serial socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)

    def accept(self, timeout: float = TIMEOUT) -> socket.socket:
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        return conn

    def close(self) -> None:
        self.listener.close()


class Background(threading.Thread):
    """Runs ``call`` in a thread; ``result()`` joins and returns or raises."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self._value: Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as e:  # noqa: BLE001 -- re-raised in result()
            self._error = e

    def result(self, timeout: float = TIMEOUT) -> Any:
        self.join(timeout)
        assert not self.is_alive(), f"still running after {timeout}s"
        if self._error is not None:
            raise self._error
        return self._value


def start_api(vncmux: Start, tmp: Path, *args: str) -> tuple[VncmuxProcess, Client]:
    sock = tmp / "api.sock"
    proc = vncmux([*args, "--api", f"unix:{sock}"])
    proc.wait_for_log(r"API on unix:")
    wait_until(sock.exists, TIMEOUT, lambda: f"no API socket\n{proc.describe()}")
    return proc, Client(f"unix:{sock}")


def counter(first: int, last: int) -> bytes:
    return b"".join(b"%08d\n" % n for n in range(first, last + 1))


def test_output_resumes_exactly_at_an_offset_across_a_device_reconnect(
    vncmux: Start, short_tmp: Path
) -> None:
    device = DeviceSocket(short_tmp / "dev.sock")
    try:
        proc, client = start_api(
            vncmux, short_tmp, "--vnc", "none", "--device", f"unix:{device.path}"
        )
        conn = device.accept()
        stream = client.follow(from_=0)
        follower = Background(lambda: b"".join(stream))
        before, after = counter(0, 5999), counter(6000, 9999)
        conn.sendall(before)
        wait_until(lambda: client.status()["bytes"]["out"] == len(before), TIMEOUT)
        start, data = client.output(from_=0)
        assert (start, data) == (0, before)
        resume = start + len(data)  # where a tool that read this far carries on

        conn.close()  # the device goes away; vncmux reopens it with backoff
        wait_until(lambda: not client.status()["device"]["up"], TIMEOUT)
        conn = device.accept()
        conn.sendall(after)
        wait_until(lambda: client.status()["bytes"]["out"] == len(before + after), TIMEOUT)

        start, data = client.output(from_=resume)
        assert start == resume and data == after  # no gap, no duplicate
        state = client.status()
        assert state["device"]["up"] and state["device"]["reconnects"] == 1
        assert state["clients"]["api_streams"] == 1

        wait_until(lambda: stream.offset == len(before + after), TIMEOUT)
        proc.stop()  # ends the stream
        assert follower.result() == before + after  # one stream, across the reconnect
        conn.close()
    finally:
        device.close()


def test_wait_matches_text_arriving_in_pieces_and_across_a_redraw(
    vncmux: Start, pty: Pty, short_tmp: Path
) -> None:
    _proc, client = start_api(
        vncmux, short_tmp, "--vnc", "none", "--chardev", "vc,id=con", "--device", pty.path
    )
    wait_until(lambda: client.status()["device"]["up"], TIMEOUT)

    def waiters() -> int:
        return int(client.status()["clients"]["api_waiters"])

    def screen_at(offset: int) -> Callable[[], bool]:
        return lambda: bool(client.screen()["offset"] == offset)

    def output_at(offset: int) -> Callable[[], bool]:
        return lambda: bool(client.status()["bytes"]["out"] == offset)

    screen = Background(lambda: client.wait_screen(r"^READY (\d\d)$", TIMEOUT))
    wait_until(lambda: waiters() == 1, TIMEOUT)
    total = client.status()["bytes"]["out"]
    for piece in (b"REA", b"DY 4", b"\x1b[2J\x1b[H", b"redrawn\r\nREADY 4"):
        pty.write(piece)
        total += len(piece)
        # each piece reaches the screen on its own: no match yet, the wait still pending
        wait_until(screen_at(total), TIMEOUT)
        assert waiters() == 1
    pty.write(b"2")
    found = screen.result()
    assert found["match"] == "READY 42" and found["groups"] == ["42"]
    assert (found["row"], found["col"]) == (1, 0)

    offset = client.status()["bytes"]["out"]
    output = Background(lambda: client.wait_output(r"part-one.*part-two", TIMEOUT, offset))
    wait_until(lambda: waiters() == 1, TIMEOUT)
    total = offset
    for piece in (b"\r\npart-", b"one, then ", b"part-", b"two\r\n"):
        pty.write(piece)
        total += len(piece)
        wait_until(output_at(total), TIMEOUT)
    found = output.result()
    _start, data = client.output(from_=found["offset"])
    assert data.startswith(b"part-one, then part-two")
    assert found["end"] - found["offset"] == len(b"part-one, then part-two")


def test_patterns_hostile_to_backtracking_answer_quickly_and_a_back_reference_is_400(
    vncmux: Start, pty: Pty, short_tmp: Path
) -> None:
    """Patterns that would backtrack for minutes in Python's ``re`` over this output wait
    like any other while the console answers, then match as soon as their text comes (RE2
    runs them in linear time); a back-reference, which RE2 has not, is a 400 in plain
    words, logged with the peer."""
    proc, client = start_api(
        vncmux, short_tmp, "--vnc", "none", "--chardev", "vc,id=con", "--device", pty.path
    )
    wait_until(lambda: client.status()["device"]["up"], TIMEOUT)
    hostile = (b"a" * 30 + b"!\r\n") * 100  # (a+)+$ would try 2**30 ways on each line
    pty.write(hostile)
    wait_until(lambda: client.status()["bytes"]["out"] == len(hostile), TIMEOUT)
    waits = [
        Background(lambda: client.wait_screen(r"(a+)+$", TIMEOUT)),
        Background(lambda: client.wait_output(r"(a|aa)*b", TIMEOUT, 0)),
        Background(lambda: client.wait_output(r"(.*a){20}x", TIMEOUT, 0)),
        Background(lambda: client.wait_screen(r".*x.*y", TIMEOUT)),
    ]
    slowest = 0.0

    def all_waiting() -> bool:
        nonlocal slowest
        began = time.monotonic()
        state = client.status()
        slowest = max(slowest, time.monotonic() - began)
        return bool(state["clients"]["api_waiters"] == len(waits))

    wait_until(all_waiting, TIMEOUT, lambda: "the waits never all showed as pending")
    assert slowest < 3, f"a request took {slowest:.1f} s while hostile patterns waited"
    pty.write(b"a" * 20 + b"xyb\r\naaaa")
    began = time.monotonic()
    found = [wait.result() for wait in waits]
    assert time.monotonic() - began < 5
    assert set(found[0]["match"]) == {"a"} and found[1]["match"] == "b"  # a's at a row's end
    assert found[2]["match"] == "a" * 20 + "x" and found[3]["match"] == "a" * 20 + "xy"
    with pytest.raises(ApiError) as refused:
        client.wait_screen(r"(a)\1", 5)
    assert refused.value.status == 400
    assert "back-references and look-around are not supported" in refused.value.message
    assert "RE2 syntax" in refused.value.message
    proc.wait_for_log(r"API client .*: wait refused: pattern '\(a\)\\\\1' refused: back-ref")
    pty.write(b"\r\nstill here")
    assert client.wait_screen(r"^still here$", TIMEOUT)["row"] > 0


def test_a_slow_output_wait_catching_up_does_not_hold_up_the_console(
    vncmux: Start, pty: Pty, short_tmp: Path
) -> None:
    """A wait from offset 0 searches a 96 KiB backlog in steps, a slice of time per reactor
    turn, with a pattern that would backtrack for long in Python's ``re``: other requests
    are answered all along, and the wait then matches what comes."""
    _proc, client = start_api(vncmux, short_tmp, "--vnc", "none", "--device", pty.path)
    wait_until(lambda: client.status()["device"]["up"], TIMEOUT)
    backlog = b"a " * (48 << 10)
    pty.write(backlog)
    wait_until(lambda: client.status()["bytes"]["out"] == len(backlog), TIMEOUT)
    waiter = Background(lambda: client.wait_output(r"(\w+ )+x", 120, 0))
    slowest, seen_waiting = 0.0, False
    deadline = time.monotonic() + 60
    while not seen_waiting and time.monotonic() < deadline:
        began = time.monotonic()
        state = client.status()
        slowest = max(slowest, time.monotonic() - began)
        seen_waiting = state["clients"]["api_waiters"] == 1
    assert seen_waiting, "the wait never showed as pending"
    for _ in range(5):  # answered while the search goes on
        began = time.monotonic()
        client.status()
        slowest = max(slowest, time.monotonic() - began)
    pty.write(b"x")
    found = waiter.result(120)
    assert found["end"] == len(backlog) + 1
    assert slowest < 3, f"a request took {slowest:.1f} s while the wait searched"


class SpanTerminal:
    """What ``Renderer`` reads of a terminal, built from ``/screen?attrs=1`` alone."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.cols, self.rows = state["cols"], state["rows"]
        cursor = state["cursor"]
        self.cursor = (cursor["col"], cursor["row"])
        self.cursor_visible = cursor["visible"]
        self.reverse_screen = state["modes"]["reverse_video"]
        self._rows = [self._cells(spans) for spans in state["spans"]]

    def _cells(self, spans: list[dict[str, Any]]) -> list[Cell]:
        cells: list[Cell] = []
        for span in spans:
            look = {
                name: span.get(name, False)
                for name in (
                    "bold",
                    "italics",
                    "underscore",
                    "strikethrough",
                    "reverse",
                    "blink",
                    "faint",
                )
            }
            first = len(cells)
            for char in span["text"]:
                width = wcwidth(char)
                if width == 0 and len(cells) > first:
                    cells[-1] = cells[-1]._replace(data=cells[-1].data + char)
                    continue
                cells.append(Cell(char, span["fg"], span["bg"], **look))
                if width == 2:
                    cells.append(Cell("", span["fg"], span["bg"], **look))
            assert len(cells) - first == span["width"], span
        return cells

    def line(self, y: int) -> list[Cell]:
        return self._rows[y]


COLOURFUL = (
    "\x1b[2J\x1b[H\x1b]2;colours\x07"
    "\x1b[1;31mbold red\x1b[0m \x1b[42;30mblack on green\x1b[0m \x1b[4;34munder\x1b[0m\r\n"
    "\x1b[7mreverse\x1b[27m \x1b[2mfaint\x1b[22m \x1b[9mstruck\x1b[29m \x1b[3mital\x1b[0m\r\n"
    "\x1b[38;5;208m256-orange\x1b[0m \x1b[38;2;10;200;250;48;2;60;0;60mtruecolour\x1b[0m\r\n"
    "┌──────┐ 界面 wide, q\u0307 combined\r\n"
    "│ \x1b[95mbox\x1b[0m  │ \x1b[103;30m yellow bg \x1b[0m\r\n"
    "└──────┘ ▀▄█░▒▓\r\n"
    + "".join(f"\x1b[{40 + i}m {i}" for i in range(8))
    + "\x1b[0m\r\n"
    + "".join(f"\x1b[{100 + i};{30 + (7 - i)}m{i}" for i in range(8))
    + "\x1b[0m END\x1b[9;5H"
)


def test_screen_json_drawn_again_is_the_framebuffer_pixel_for_pixel(
    vncmux: Start, pty: Pty, short_tmp: Path, tmp_path: Path
) -> None:
    _proc, client = start_api(
        vncmux,
        short_tmp,
        "--vnc",
        "none",
        "--chardev",
        "vc,id=con,cols=40,rows=10",
        "--device",
        pty.path,
    )
    wait_until(lambda: client.status()["device"]["up"], TIMEOUT)
    pty.write(COLOURFUL.encode())
    client.wait_screen(r"END$", TIMEOUT)
    wait_until(lambda: client.screen()["cursor"]["row"] == 8, TIMEOUT)
    state = client.screen(attrs=True)
    png = Image.open(BytesIO(client.screenshot())).convert("RGB")

    assert state["title"] == "colours"
    assert state["lines"][3] == "┌──────┐ 界面 wide, q\u0307 combined"
    assert state["lines"][7].endswith("END")
    spans = {span["text"].strip(): span for row in state["spans"] for span in row}
    assert spans["bold red"]["fg"] == "red" and spans["bold red"]["bold"] is True
    assert spans["truecolour"]["fg"] == "0ac8fa" and spans["truecolour"]["bg"] == "3c003c"

    renderer = Renderer(state["cols"], state["rows"])
    renderer.render_all(SpanTerminal(state))
    drawn = renderer.image.convert("RGB")
    assert drawn.size == png.size
    diff = ImageChops.difference(drawn, png).getbbox()
    if diff is not None:
        drawn.save(tmp_path / "from-json.png")
        png.save(tmp_path / "screen.png")
    assert diff is None, f"the JSON drawn again differs from /screen.png in {diff} ({tmp_path})"


def test_a_view_only_token_cannot_type(vncmux: Start, pty: Pty, tmp_path: Path) -> None:
    full, view = tmp_path / "full.token", tmp_path / "view.token"
    full.write_text("full-secret\n")
    view.write_text("view-secret\n")
    for path in (full, view):
        path.chmod(0o600)
    port = free_tcp_port()
    proc = vncmux(
        [
            "--vnc",
            "none",
            "--chardev",
            "vc,id=con",
            "--device",
            pty.path,
            "--api",
            f"tcp:{port}:interface=127.0.0.1",
            "--api-token-file",
            str(full),
            "--api-view-token-file",
            str(view),
        ]
    )
    proc.wait_for_log(r"API on tcp:")
    address = f"tcp:127.0.0.1:{port}"
    viewer = Client(address, token="view-secret")
    wait_until(lambda: viewer.status()["device"]["up"], TIMEOUT)
    pty.write(b"visible text")
    assert viewer.wait_screen("visible text", TIMEOUT)["match"] == "visible text"
    for attempt in (lambda: viewer.send("rm -rf /\r"), lambda: viewer.keys("Ctrl+C")):
        with pytest.raises(ApiError) as refused:
            attempt()
        assert refused.value.status == 403
    with pytest.raises(ApiError) as anonymous:
        Client(address).screen()
    assert anonymous.value.status == 401
    proc.wait_for_log(r"API client 127\.0\.0\.1:\d+: authentication failed")
    proc.wait_for_log(r"view-only token refused /api/v1/input")

    Client(address, token="full-secret").send("typed\r")
    wait_until(lambda: b"typed" in pty.read_available(), TIMEOUT)
    assert b"rm -rf" not in pty.read_available()


GUEST = r"""
printf 'guest login: '
read -r user
printf 'Password: '
stty -echo; read -r password; stty echo; echo
if [ "$user" != root ] || [ "$password" != "s3cret" ]; then echo 'Login incorrect'; exit 1; fi
PS1='root@guest:~# ' exec sh -i
"""


def readme_recipe() -> str:
    readme = (REPO / "README.rst").read_text(encoding="utf-8")
    block = readme.split(".. api-recipe", 1)[1]
    lines = block.split("::", 1)[1].splitlines()[1:]
    body = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        body.append(line[4:])
    return "\n".join(body).strip() + "\n"


def test_the_readme_recipe_logs_into_a_guest_and_runs_a_command(
    vncmux: Start, short_tmp: Path, tmp_path: Path
) -> None:
    guest = tmp_path / "guest.sh"
    guest.write_text(GUEST)
    api = short_tmp / "api.sock"
    proc = vncmux(
        [
            "--vnc",
            "none",
            "--chardev",
            "vc,id=con",
            "--device",
            f"exec:/bin/sh {guest}",
            "--api",
            f"unix:{api}",
        ]
    )
    proc.wait_for_log(r"API on unix:")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ctl = bin_dir / "vncmux-ctl"
    ctl.write_text(f'#!/bin/sh\nexec {sys.executable} -m vncmux.ctl "$@"\n')
    ctl.chmod(0o755)
    script = tmp_path / "recipe.sh"
    script.write_text(readme_recipe())
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(REPO),
        VNCMUX_API=f"unix:{api}",
        GUEST_PASSWORD="s3cret",
    )
    done = subprocess.run(
        ["/bin/sh", str(script)], env=env, capture_output=True, timeout=60, check=False
    )
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 0, f"{out}\n{done.stderr.decode(errors='replace')}"
    assert re.search(r"^Linux .*$", out, re.MULTILINE), out  # uname -a ran in the guest
    assert re.search(r"^done: 0", out, re.MULTILINE), out
