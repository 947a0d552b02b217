"""Console feed rate: vncmux's Terminal against pyte's own Screen + ByteStream, same data.

Four kinds of deterministic (seeded) output, fed in 4 KiB chunks to a fresh 80×24 terminal:
plain log lines, colour (SGR-heavy) text, full-screen TUI redraws (cursor positioning + SGR +
text, as htop or vim draw), and random bytes.  Prints MB/s of each and the ratio to pyte
measured in the same run (budget: ≥ 20× on plain text, ≥ 5× on colour/TUI), medians over
several repetitions, and whether the final screens' text agrees with pyte's.

    .venv/bin/python bench/console_feed.py [--quick] [--size MB] [--reps N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, BenchError, machine_line, median, table

sys.path.insert(0, str(ROOT))

CHUNK = 4096
WORDS = [
    "kernel",
    "usb",
    "device",
    "eth0",
    "link",
    "up",
    "down",
    "systemd",
    "started",
    "stopping",
    "service",
    "error",
    "warning",
    "info",
    "debug",
    "mount",
    "filesystem",
    "read-only",
    "write",
    "cache",
    "hit",
    "miss",
    "request",
    "response",
    "GET",
    "POST",
    "200",
    "404",
    "500",
    "timeout",
    "retry",
    "connected",
    "disconnected",
    "user",
    "root",
    "session",
    "opened",
    "closed",
]
COLOURS = [
    "31",
    "32",
    "33",
    "34",
    "35",
    "36",
    "1;31",
    "1;32",
    "1;33",
    "7",
    "4",
    "2",
    "38;5;208",
    "38;5;27",
    "48;5;236",
    "38;2;255;128;0",
    "90",
    "91",
    "96",
    "1",
]


def gen_plain(size: int, rng: random.Random) -> bytes:
    """Log lines: timestamps, a tag, words; some shorter, some wrapping past 80 columns."""
    out: list[str] = []
    n = 0
    i = 0
    while n < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 16)))
        line = f"2026-11-25 14:{i // 60 % 60:02d}:{i % 60:02d} host svc[{rng.randint(1, 9999)}]: {words}\r\n"
        out.append(line)
        n += len(line)
        i += 1
    return "".join(out).encode()[:size]


def gen_colour(size: int, rng: random.Random) -> bytes:
    """Lines where most words carry their own SGR (like ls --color, compiler output, grep)."""
    out: list[str] = []
    n = 0
    while n < size:
        parts = []
        for _ in range(rng.randint(4, 12)):
            parts.append(f"\x1b[{rng.choice(COLOURS)}m{rng.choice(WORDS)}\x1b[0m")
        line = " ".join(parts) + "\r\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def gen_tui(size: int, rng: random.Random) -> bytes:
    """Full-screen redraws: home, per row a CUP, coloured fields, erase to end of line; a
    header and a status bar in reverse video; meters of '|' like htop."""
    out: list[str] = []
    n = 0
    frame = 0
    while n < size:
        rows = ["\x1b[?25l\x1b[H\x1b[7m" + f" top - frame {frame} ".ljust(80) + "\x1b[0m"]
        for r in range(2, 24):
            cpu = rng.randint(0, 40)
            rows.append(
                f"\x1b[{r};1H\x1b[1;34m{rng.randint(1, 99999):>6}\x1b[0m "
                f"\x1b[32m{rng.choice(WORDS)[:8]:<8}\x1b[0m "
                f"\x1b[33m[{'|' * cpu:<40}]\x1b[0m "
                f"\x1b[{rng.choice(COLOURS)}m{rng.choice(WORDS)} {rng.choice(WORDS)}\x1b[0m\x1b[K"
            )
        rows.append(
            "\x1b[24;1H\x1b[30;46m F1Help F2Setup F3Search F9Kill F10Quit".ljust(80) + "\x1b[0m"
        )
        rows.append("\x1b[?25h")
        frame_s = "".join(rows)
        out.append(frame_s)
        n += len(frame_s)
        frame += 1
    return "".join(out).encode()[:size]


def gen_random(size: int, rng: random.Random) -> bytes:
    return rng.randbytes(size)


KINDS: dict[str, Callable[[int, random.Random], bytes]] = {
    "plain": gen_plain,
    "colour": gen_colour,
    "tui": gen_tui,
    "random": gen_random,
}


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def feed_pyte(parts: list[bytes]) -> tuple[float, Any, int]:
    """pyte's own path.  pyte raises on some malformed inputs; a chunk that raises
    loses its rest, as it would in a naive server that catches and goes on."""
    import pyte

    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)
    errors = 0
    t0 = time.perf_counter()
    for p in parts:
        try:
            stream.feed(p)
        except Exception:  # noqa: BLE001 - counted, as a server would log and go on
            errors += 1
    return time.perf_counter() - t0, screen, errors


def make_terminal() -> Any:
    try:
        from vncmux.console.terminal import Terminal
    except Exception as e:
        raise BenchError(
            f"vncmux.console.terminal.Terminal is not usable yet: {type(e).__name__}: {e}"
        ) from e
    return Terminal(80, 24)


class Listener:
    """An events object that keeps what a scrollback would (so the rows that scroll off
    are built and handed over, as in the server)."""

    def __init__(self) -> None:
        self.rows = 0

    def reply(self, data: bytes) -> None:
        pass

    def bell(self) -> None:
        pass

    def title(self, title: str) -> None:
        pass

    def scrolledOff(self, rows: list[Any]) -> None:
        self.rows += len(rows)


def feed_vncmux(parts: list[bytes], **kw: Any) -> tuple[float, Any, int]:
    """Our Terminal (``kw``: ``fast=False`` for the slow path, ``events=`` a listener)."""
    if kw:
        from vncmux.console.terminal import Terminal

        term = Terminal(80, 24, **kw)
    else:
        term = make_terminal()
    errors = 0
    t0 = time.perf_counter()
    for p in parts:
        try:
            term.feed(p)
        except Exception:  # noqa: BLE001 - the Terminal promises never to raise; counted
            errors += 1
    term.take_damage()  # the Terminal may defer work until the screen is read: count it
    return time.perf_counter() - t0, term, errors


def screen_text(obj: Any) -> list[str] | None:
    """The 24 rows of a pyte Screen or of our Terminal as text, cell by cell (wide
    characters' right halves are '' in both)."""
    if hasattr(obj, "line"):
        return ["".join(c.data for c in obj.line(y)) for y in range(24)]
    if hasattr(obj, "buffer"):
        return ["".join(obj.buffer[y][x].data for x in range(80)) for y in range(24)]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument(
        "--size", type=float, default=None, help="MB of each kind (default 0.5, quick 0.05)"
    )
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS)
    )
    args = ap.parse_args()
    size = int((args.size if args.size is not None else (0.05 if args.quick else 0.5)) * 1e6)
    reps = args.reps or (1 if args.quick else 3)

    print(f"console_feed: {machine_line()}")
    print(f"{size / 1e6:.2f} MB per kind, {CHUNK} B chunks, 80x24, median of {reps}\n")
    try:
        make_terminal()
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2

    rows = []
    budgets = {"plain": 20.0, "colour": 5.0, "tui": 5.0, "random": None}
    for kind in args.kinds.split(","):
        data = KINDS[kind](size, random.Random(f"vncmux-{kind}"))
        parts = chunks(data)
        t_ours, t_pyte = [], []
        same = "?"
        errs = (0, 0)
        for _ in range(reps):
            t, term, e1 = feed_vncmux(parts)
            t_ours.append(t)
            t2, screen, e2 = feed_pyte(parts)
            t_pyte.append(t2)
            errs = (e1, e2)
            a, b = screen_text(term), screen_text(screen)
            same = "n/a" if a is None else ("yes" if a == b else "NO")
        mb_ours = len(data) / median(t_ours) / 1e6
        mb_pyte = len(data) / median(t_pyte) / 1e6
        ratio = mb_ours / mb_pyte
        budget = budgets.get(kind)
        verdict = "-" if budget is None else ("ok" if ratio >= budget else "MISS")
        if verdict == "MISS":
            pass
        rows.append(
            [
                kind,
                f"{mb_ours:.2f}",
                f"{mb_pyte:.2f}",
                f"{ratio:.1f}x",
                f">={budget:.0f}x" if budget else "-",
                verdict,
                same,
                f"{errs[0]}/{errs[1]}",
            ]
        )
    print(
        table(
            rows,
            [
                "kind",
                "vncmux MB/s",
                "pyte MB/s",
                "ratio",
                "budget",
                "verdict",
                "same text",
                "raised ours/pyte",
            ],
        )
    )
    print(
        "\n'same text': final screen text equal to pyte's (random bytes may differ where pyte raised)."
    )
    print()
    print(paths(size, reps))
    return 0  # a missed budget is reported, not an error: this is a measurement


def paths(size: int, reps: int) -> str:
    """Our own paths against each other, the figures the unit tests no longer time:

    - the fast path against the slow path (``fast=False``) on plain lines (budget ≥ 5×);
    - the fast path with a listener for the rows scrolled off (a scrollback's cost);
    - a run of BEL against plain text of the same size: a bell flood must cost about
      what text costs (budget: BEL MB/s ≥ half of plain's).
    """
    plain = chunks(gen_plain(size, random.Random("vncmux-plain")))
    bells = chunks(b"\x07" * size)
    figures: dict[str, float] = {}
    for name, parts, kw in (
        ("plain, fast path", plain, {}),
        ("plain, slow path", plain, {"fast": False}),
        ("plain, fast path + scrolledOff listener", plain, {"events": Listener()}),
        ("BEL run, fast path", bells, {}),
    ):
        figures[name] = size / median([feed_vncmux(parts, **kw)[0] for _ in range(reps)]) / 1e6
    base = figures["plain, fast path"]
    budgets = {
        "plain, slow path": (1 / 5, "fast >= 5x slow"),
        "BEL run, fast path": (0.5, ">= 0.5x plain"),
    }
    rows = []
    for name, mb in figures.items():
        budget = budgets.get(name)
        ratio = mb / base
        verdict = (
            "-"
            if budget is None
            else (
                "ok" if (ratio <= budget[0] if "slow" in name else ratio >= budget[0]) else "MISS"
            )
        )
        rows.append([name, f"{mb:.2f}", f"{ratio:.2f}x", budget[1] if budget else "-", verdict])
    return table(rows, ["vncmux path", "MB/s", "vs plain fast", "budget", "verdict"])


if __name__ == "__main__":
    sys.exit(main())
