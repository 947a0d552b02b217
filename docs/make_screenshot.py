#!/usr/bin/env python3
"""Reproduce ``docs/screenshot.png``: vncmux on a pty, a colourful demo, a real VNC client.

What it does, so the README picture is evidence rather than a mock-up:

1. opens a pty pair and starts ``python -m vncmux --device /dev/pts/N --vnc 127.0.0.1:D``
   (the pty slave stands in for a serial port; the script holds the master, i.e. it *is*
   the board on the other end of the cable);
2. writes a demo screen to the master: the 16 ANSI colours, 256-colour cube and grey ramp,
   truecolour gradients, bold/faint/italic/underline/strikethrough/reverse, box drawing and
   block elements, Greek/Cyrillic/accented Latin, CJK wide characters (from the bundled Unifont if
   the font lacks them) and a shell-like prompt;
3. captures the screen with a third-party client (vncdotool's ``vncdo`` by default, or
   ``gvnccapture`` from gtk-vnc), waiting until two captures agree, and saves it as RGB PNG.

``--keep`` leaves it running and echoes everything typed in a viewer back to the screen, so
``vncviewer 127.0.0.1:D`` can be tried by hand; at exit it prints the bytes the device got
(the viewer's keys as vncmux translated them).  Options after ``--`` go to vncmux.  Run from
the repository root with an interpreter that has vncmux's dependencies and vncdotool (for
instance the ``.venv`` of ``pip install '.[test]'``)::

    .venv/bin/python docs/make_screenshot.py              # writes docs/screenshot.png
    .venv/bin/python docs/make_screenshot.py --client gvnccapture --out /tmp/g.png
    .venv/bin/python docs/make_screenshot.py --keep -- --password-file /tmp/pw
"""

from __future__ import annotations

import argparse
import colorsys
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops

REPO = Path(__file__).resolve().parents[1]


def sgr(*codes: int | str) -> str:
    """An SGR escape sequence (``ESC [ codes m``)."""
    return "\x1b[" + ";".join(str(c) for c in codes) + "m"


RESET = sgr(0)


def at(row: int, col: int = 0) -> str:
    """Move the cursor to a 0-based (row, col)."""
    return f"\x1b[{row + 1};{col + 1}H"


def rgb_bg(r: int, g: int, b: int) -> str:
    """Truecolour background."""
    return sgr(48, 2, r, g, b)


def rgb_fg(r: int, g: int, b: int) -> str:
    """Truecolour foreground."""
    return sgr(38, 2, r, g, b)


def hue(x: float, value: float = 1.0) -> tuple[int, int, int]:
    """A rainbow colour at position ``x`` (0..1) and brightness ``value``."""
    r, g, b = colorsys.hsv_to_rgb(x % 1.0, 0.85, value)
    return round(r * 255), round(g * 255), round(b * 255)


def label(text: str) -> str:
    """A row's caption, padded to the 12-column label gutter."""
    return sgr(1, 37) + f"{text:<12}" + RESET


def demo_screen(cols: int = 80, rows: int = 24) -> str:
    """The demo as terminal output: every line placed with CUP so nothing scrolls."""
    if cols < 80 or rows < 24:
        raise ValueError("the demo needs at least 80x24")
    out: list[str] = ["\x1b[?25l", RESET, "\x1b[2J", "\x1b[H"]
    line = 0

    def put(text: str, col: int = 0) -> None:
        nonlocal line
        out.append(at(line, col) + text + RESET)
        line += 1

    title = " vncmux · one console, many viewers "
    rule = "━" * (cols - len(title) - 4)
    put(sgr(1, 36) + "━━━" + sgr(1, 97, 44) + title + RESET + sgr(1, 36) + rule + "━")

    # 16 colours: backgrounds with their numbers, then foreground names.
    swatches = []
    for n in range(16):
        bg = 40 + n if n < 8 else 100 + n - 8
        fg = 97 if n in (0, 4, 8) else 30
        swatches.append(sgr(fg, bg) + f" {n:>2} " + RESET)
    put(label("16 colours") + "".join(swatches))
    names = ["blk", "red", "grn", "yel", "blu", "mag", "cyn", "wht"]
    fgs = [sgr(30 + i) + f"{names[i]:<4}" for i in range(8)]
    fgs += [sgr(90 + i) + f"{names[i]:<4}" for i in range(8)]
    fgs[0] = sgr(30, 47) + "blk" + RESET + " "
    put(label("foreground") + "".join(fgs))
    line += 1

    # 256 colours: grey ramp, then the 6x6x6 cube on three rows of half blocks
    # (top half = red level 2k, bottom half = red level 2k+1).
    greys = "".join(sgr(48, 5, 232 + i) + "  " for i in range(24))
    put(label("256 colours") + greys + RESET + " " + sgr(2) + "232–255" + RESET)
    for k in range(3):
        cells = []
        for g in range(6):
            for b in range(6):
                top = 16 + 36 * (2 * k) + 6 * g + b
                bottom = 16 + 36 * (2 * k + 1) + 6 * g + b
                cells.append(sgr(38, 5, top, 48, 5, bottom) + "▀▀")
        put(" " * 4 + "".join(cells) + RESET)

    # Truecolour: a rainbow and a two-colour blend, half blocks for vertical smoothness.
    width = 64
    rainbow = "".join(
        rgb_fg(*hue(i / width)) + rgb_bg(*hue(i / width + 0.5 / width, 0.7)) + "▀"
        for i in range(width)
    )
    put(label("truecolour") + rainbow)
    blend = []
    caption = f"{'24-bit RGB, 16.7 million colours':^{width}}"
    for i in range(width):
        t = i / (width - 1)
        a = (round(40 + 215 * t), round(20 + 120 * t), round(120 - 100 * t))
        blend.append(rgb_bg(*a) + rgb_fg(255, 255, 255) + caption[i])
    put(label("") + "".join(blend))
    line += 1

    # Attributes.
    attrs = [
        (sgr(1), "bold"),
        (sgr(2), "faint"),
        (sgr(3), "italic"),
        (sgr(4), "underline"),
        (sgr(9), "strike"),
        (sgr(7), "reverse"),
        (sgr(1, 3, 4, 33), "all+yellow"),
    ]
    put(label("attributes") + " ".join(a + t + RESET for a, t in attrs))
    put(
        label("")
        + sgr(31)
        + "red "
        + sgr(1)
        + "bold red"
        + RESET
        + " "
        + sgr(3, 32)
        + "italic green"
        + RESET
        + " "
        + sgr(7, 35)
        + " reverse magenta "
        + RESET
        + " "
        + sgr(4, 36)
        + "underlined cyan"
        + RESET
        + " "
        + sgr(9, 2)
        + "old"
        + RESET
    )
    line += 1

    # Box drawing and blocks: a little diagram of what vncmux does, plus meters.
    cyan, yellow, green = sgr(36), sgr(33), sgr(32)
    box = [
        cyan
        + "┌─────────┐"
        + RESET
        + "      "
        + yellow
        + "╔════════╗"
        + RESET
        + "   "
        + green
        + "╭── vnc ──────╮",
        cyan
        + "│ ttyUSB0 │"
        + RESET
        + "━━━━━▶"
        + yellow
        + "║  hub   ║"
        + RESET
        + "━━▶"
        + green
        + "│ viewer × 12 │",
        cyan
        + "└─────────┘"
        + RESET
        + "◀━━━━━"
        + yellow
        + "╚═══╤════╝"
        + RESET
        + "   "
        + green
        + "╰─────────────╯",
        " " * 21 + yellow + "└──▶ " + RESET + "unix:/run/board.sock · board.log",
    ]
    meters = [
        "░░▒▒▓▓██▓▓▒▒░░",
        green + "▁▂▃▄▅▆▇█▇▆▅▄▃▂▁" + RESET,
        sgr(31) + "▕" + "█" * 9 + "▋" + " " * 4 + "▏" + RESET + " 71%",
        sgr(34) + "▘▝▖▗▚▞▙▛▜▟" + RESET,
    ]
    for left, right in zip(box, meters):
        out.append(at(line, 0) + left + RESET)
        out.append(at(line, 60) + right + RESET)
        line += 1
    line += 1

    # Scripts: Greek, Cyrillic, accented Latin, CJK (two cells per character).
    put(
        label("Unicode")
        + sgr(94)
        + "Καλημέρα κόσμε"
        + RESET
        + "  "
        + sgr(91)
        + "Здравствуй, мир"
        + RESET
        + "  "
        + sgr(92)
        + "café naïve Ångström ŝŭ"
        + RESET
    )
    put(
        label("wide (CJK)")
        + sgr(93)
        + "日本語 こんにちは"
        + RESET
        + "  "
        + sgr(95)
        + "中文 你好"
        + RESET
        + "  "
        + sgr(96)
        + "한국어 안녕"
        + RESET
        + "  ← two cells each"
    )

    # A serial console's last words, then the prompt on the last line, cursor after it.
    prompt = sgr(1, 32) + "user@board" + RESET + ":" + sgr(1, 34) + "~" + RESET + "$ "
    out.append(at(rows - 3, 0) + prompt + "dmesg | tail -1")
    out.append(
        at(rows - 2, 0)
        + sgr(32)
        + "[   12.345678]"
        + RESET
        + " usb 1-1: new high-speed USB device number 2 using ehci-platform"
    )
    out.append(
        at(rows - 1, 0)
        + sgr(1, 32)
        + "user@board"
        + RESET
        + ":"
        + sgr(1, 34)
        + "~"
        + RESET
        + "$ "
        + "\x1b[?25h"
    )
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Running vncmux and capturing.


def free_display(first: int = 60) -> int:
    """A display number D whose TCP port 5900+D is free on 127.0.0.1."""
    for display in range(first, first + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5900 + display))
            except OSError:
                continue
            return display
    raise RuntimeError("no free VNC display")


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout}s: {what}")
        time.sleep(0.05)


class Vncmux:
    """``python -m vncmux`` on a pty we hold the master of."""

    def __init__(self, display: int, cols: int, rows: int, extra: list[str]) -> None:
        self.master, self.slave = os.openpty()
        self.slave_path = os.ttyname(self.slave)
        self.workdir = Path(tempfile.mkdtemp(prefix="vncmux-shot-"))
        self.log_path = self.workdir / "vncmux.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [
            sys.executable,
            "-m",
            "vncmux",
            "--device",
            self.slave_path,
            "--vnc",
            f"127.0.0.1:{display}",
            "--cols",
            str(cols),
            "--rows",
            str(rows),
            *extra,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.echo = False
        self.typed = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vncmux exited:\n{self.log()}")
            text = self.log()
            return bool(re.search(r"Device .* opened", text) and "listening" in text)

        wait_until(ready, 20, "vncmux did not open the device and listen")

    def _drain(self) -> None:
        """Read what vncmux sends to the device (viewer keys); echo it back if asked."""
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.typed += data
            if self.echo:
                os.write(self.master, data.replace(b"\r", b"\r\n"))

    def write(self, text: str) -> None:
        os.write(self.master, text.encode("utf-8"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        os.close(self.slave)
        os.close(self.master)


def capture(client: str, display: int, path: Path) -> Image.Image:
    """One screenshot by a third-party client, as an RGB image."""
    if client == "vncdo":
        sibling = Path(sys.executable).with_name("vncdo")  # the venv's own vncdotool first
        exe = str(sibling) if sibling.exists() else shutil.which("vncdo") or "vncdo"
        cmd = [exe, "-s", f"127.0.0.1::{5900 + display}", "capture", str(path)]
    elif client == "gvnccapture":
        cmd = ["gvnccapture", f"127.0.0.1:{display}", str(path)]
    else:
        raise ValueError(client)
    subprocess.run(
        cmd, check=True, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with Image.open(path) as im:
        # gvnccapture leaves alpha 0 on some tiles: the colour is right, the alpha is not.
        return im.convert("RGB")


def settled_capture(client: str, display: int, workdir: Path, timeout: float = 20) -> Image.Image:
    """Capture until two consecutive captures agree (the screen has settled)."""
    deadline = time.monotonic() + timeout
    previous = capture(client, display, workdir / "a.png")
    while True:
        current = capture(client, display, workdir / "b.png")
        if ImageChops.difference(previous, current).getbbox() is None:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError("the screen never settled")
        previous = current


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    parser.add_argument("--client", choices=["vncdo", "gvnccapture"], default="vncdo")
    parser.add_argument("--cols", type=int, default=80)
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--display", type=int, help="VNC display (port 5900+D); default: free")
    parser.add_argument(
        "--keep", action="store_true", help="keep serving (and echo typed keys) until Ctrl-C"
    )
    parser.add_argument(
        "--print-demo",
        action="store_true",
        help="write the demo to stdout (for a local terminal) and exit",
    )
    parser.add_argument("vncmux_args", nargs="*", help="extra vncmux options, after --")
    args = parser.parse_args()

    if args.print_demo:
        sys.stdout.write(demo_screen(args.cols, args.rows) + RESET + "\n")
        return 0

    display = args.display if args.display is not None else free_display()
    mux = Vncmux(display, args.cols, args.rows, args.vncmux_args)
    try:
        mux.wait_ready()
        mux.write(demo_screen(args.cols, args.rows))
        if args.keep:
            # Stop on SIGTERM as on Ctrl-C, so vncmux (in its own session) is stopped too.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            mux.echo = True
            print(
                f"vncmux on 127.0.0.1:{display} (port {5900 + display}), device "
                f"{mux.slave_path}, log {mux.log_path}; Ctrl-C to stop",
                flush=True,
            )
            try:
                while mux.proc.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            print(f"the device received: {bytes(mux.typed)!r}", flush=True)
            return 0
        image = settled_capture(args.client, display, mux.workdir)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        image.save(args.out, optimize=True)
        print(f"{args.out}: {image.size[0]}x{image.size[1]} via {args.client}")
        return 0
    finally:
        mux.stop()


if __name__ == "__main__":
    sys.exit(main())
