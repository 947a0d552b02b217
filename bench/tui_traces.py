"""TUI traces: real programs' output replayed into vncmux's Terminal and into pyte.

The traces in ``bench/traces/`` (gzip) were recorded by ``bench/record_traces.sh`` with
``script -q`` at 80x24, TERM=xterm-256color: vim scrolling a long file, ``less`` paging,
htop for 10 s, tmux with two panes printing, ``dialog`` menus.  Each is fed in 4 KiB
chunks to one 80x24 terminal, over and over as a console that has been up a while sees it
(the damage is taken after each replay, so deferred work is counted), and the rate (CPU
time of this process, so a busy machine skews less) is compared with pyte's own
``ByteStream`` feed of the same bytes into one screen (budget: >= 10x pyte) and with
vncmux's slow path (``fast=False``).

``--profile`` counts, per trace, what the fast path handed to the slow path: the token at
which each run stopped (a CSI sequence by its final byte and private marker, an escape
sequence, a control character, "text" for characters the fast path does not draw, or a
sequence cut by the chunk's end, which the parser rejoins to the next chunk) or the screen
state that kept it off ("state: ...").  ``--cprofile`` runs the fast path under
cProfile and prints, per trace, the functions that cost most (own time): where to cut next.

``--chunk N`` feeds N bytes at a time instead of 4 KiB: a serial line's reads are small
(tens of bytes), so most escape sequences of a frame are cut by a read's end somewhere.

``--instructions`` counts instead of timing: each side's replays run under valgrind's
callgrind (Debian's ``valgrind``), counted from the first replay to the last only, with a
fixed hash seed, so the figures are the same from run to run on any machine state.  A
machine with slow spells moves a timed comparison by 10% and more; a count moves by a few
parts in 1,000, which is what a change of a few percent needs.  Instructions are not time
(the two sides' instructions per cycle differ: here the timed ratio has been from 15%
below to 10% above the counted one), so the budget is judged on the timed figures.

    .venv/bin/python bench/tui_traces.py [--quick] [--reps N] [--profile] [--cprofile]
        [--instructions] [--chunk N] [--traces vim,less]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, BenchError, machine_line, median, table

sys.path.insert(0, str(ROOT))

TRACES = Path(__file__).resolve().parent / "traces"
CHUNK = 4096
BUDGET = 10.0  # each trace at least this many times pyte's rate
_CUT = re.compile("\x1b(?:\\[[0-?]*)?[ -/]*\\Z")  # a sequence the chunk's end cut short
_SEQ = re.compile("\x1b(?:\\[([<=>?]?)[0-9;:]*([ -/]*[@-~])|([ -/]*[0-~]))")


def load(name: str) -> bytes:
    return gzip.decompress((TRACES / f"{name}.gz").read_bytes())


def names() -> list[str]:
    return sorted(p.name[:-3] for p in TRACES.glob("*.gz"))


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def feed_pyte(parts: list[bytes], times: int) -> float:
    import pyte

    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)
    t0 = time.process_time()
    for _ in range(times):
        for p in parts:
            try:
                stream.feed(p)
            except Exception:  # noqa: BLE001 -- as a naive server would: go on
                pass
    return time.process_time() - t0


def _compiled() -> bool:
    from vncmux.console.compiled import LOOP

    return LOOP is not None


COMPILED = _compiled()
LOOP_LINE = (
    "token loop: compiled (_fastloop_c/); 'py loop' / 'python loop': the same run on the Python loop"
    if COMPILED
    else "token loop: Python (the compiled one is not built, or VNCMUX_PURE_PYTHON is set)"
)


def feed_vncmux(parts: list[bytes], times: int, fast: bool = True, compiled: bool = True) -> float:
    """CPU seconds for ``times`` replays; ``compiled=False``: the fast path's Python loop
    even where the compiled one is built (the reference it is measured against)."""
    from vncmux.console.terminal import Terminal

    term = Terminal(80, 24, fast=fast)
    if not compiled and term._parser.fast is not None:
        term._parser.fast.compiled = None
    t0 = time.process_time()
    for _ in range(times):
        for p in parts:
            term.feed(p)
        term.take_damage()  # (as a viewer would, once per replay: deferred work counts)
    return time.process_time() - t0


def token_at(data: str, i: int) -> str:
    """A short name for the token the slow path gets at ``data[i]``."""
    c = data[i]
    if _CUT.match(data, i):
        return "cut by the chunk's end (rejoined to the next)"
    if c == "\x1b":
        m = _SEQ.match(data, i)
        if m is None:
            return "ESC (split or odd)"
        if m.group(2) is not None:
            return f"CSI {m.group(1)}{m.group(2)}"
        return f"ESC {m.group(3)}"
    if c < " " or c == "\x7f":
        return f"C0 {ord(c):#04x}"
    if "\x80" <= c <= "\x9f":
        return f"C1 {ord(c):#04x}"
    return "text"


def profile(parts: list[bytes]) -> Counter[str]:
    """What the fast path left to the slow path, by token or by screen state."""
    from vncmux.console import fastpath
    from vncmux.console.terminal import Terminal

    counts: Counter[str] = Counter()
    original = fastpath.FastPath.run

    def run(self: Any, data: str, start: int) -> int:
        end = original(self, data, start)
        if end < len(data):  # (the parser hands what is at ``end`` to the slow path)
            s = self.screen
            if not self.usable():
                why = [
                    name
                    for name, on in (
                        ("lr margins", s.lr_margins is not None),
                        ("reverse wrap", s.reverse_wrap),
                        ("insert mode", fastpath.mo.IRM in s.mode),
                        ("origin mode", fastpath.mo.DECOM in s.mode),
                    )
                    if on
                ]
                counts["state: " + ",".join(why or ["other"])] += 1
            else:
                counts[token_at(data, end)] += 1
        return end

    fastpath.FastPath.run = run  # type: ignore[method-assign]
    try:
        term = Terminal(80, 24)
        for p in parts:
            term.feed(p)
    finally:
        fastpath.FastPath.run = original  # type: ignore[method-assign]
    return counts


def cprofile(parts: list[bytes], times: int, top: int = 14) -> str:
    """The fast path's costliest functions (own time) over ``times`` replays."""
    import cProfile
    import io
    import pstats

    feed_vncmux(parts, 1)  # (imports and caches warmed first: not what is measured)
    prof = cProfile.Profile()
    prof.enable()
    feed_vncmux(parts, times)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def count_worker(kind: str, name: str, times: int, size: int) -> None:
    """Under callgrind: ``times`` replays of trace ``name`` on one side, counted alone."""
    parts = chunks(load(name), size)

    def feed(n: int) -> float:
        if kind == "pyte":
            return feed_pyte(parts, n)
        return feed_vncmux(parts, n, compiled=kind == "vncmux")

    feed(1)  # (imports done and module caches warm: not what is counted)
    me = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", me], check=True, capture_output=True)
    feed(times)
    subprocess.run(["callgrind_control", "-i", "off", me], check=True, capture_output=True)


def instructions(kind: str, name: str, times: int, size: int) -> int:
    """Instructions one side executes for ``times`` replays of trace ``name``."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise BenchError("--instructions needs valgrind (Debian: apt-get install valgrind)")
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    cmd += ["--callgrind-out-file=/dev/null", sys.executable, __file__]
    cmd += ["--count-worker", kind, "--traces", name, "--reps", str(times)]
    cmd += ["--chunk", str(size)]
    env = dict(os.environ, PYTHONHASHSEED="0")  # (the same dict layouts every run)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    got = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or got is None:
        raise BenchError(f"callgrind run failed ({kind}, {name}): {out.stderr[-400:]}")
    return int(got.group(1))


def count_all(chosen: list[str], size: int) -> list[list[str]]:
    """The ``--instructions`` table: per trace, millions of instructions per replay on each
    side and their ratio (the two sides run at once, one per core)."""
    from concurrent.futures import ThreadPoolExecutor

    # (--quick's replays: the terminal's caches warm as in the timed runs, which take 5x as
    # many; counts do not vary, and pyte under callgrind is slow)
    times = {name: max(1, int(0.2e6 / len(load(name)))) for name in chosen}
    kinds = ("vncmux", "pyte") + (("vncmux-python",) if COMPILED else ())
    jobs = [(kind, name, times[name], size) for name in chosen for kind in kinds]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: instructions(*job), jobs)))
    rows = []
    for name in chosen:
        ours, theirs, python = (
            counts.get((kind, name, times[name], size), 0) / times[name]
            for kind in ("vncmux", "pyte", "vncmux-python")
        )
        row = [name, f"{ours / 1e6:.2f}", f"{theirs / 1e6:.2f}", f"{theirs / ours:.1f}x"]
        if COMPILED:
            row += [f"{python / 1e6:.2f}", f"{theirs / python:.1f}x"]
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="one short repetition")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    ap.add_argument("--traces", default="", help="comma-separated subset")
    ap.add_argument("--profile", action="store_true", help="count slow-path fallbacks")
    ap.add_argument("--cprofile", action="store_true", help="cProfile the fast path")
    ap.add_argument("--no-slow", action="store_true", help="skip the slow path's figure")
    ap.add_argument(
        "--chunk",
        type=int,
        default=CHUNK,
        help=f"bytes per feed (default {CHUNK}; a serial line's reads: 64 or less)",
    )
    ap.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind), not time"
    )
    ap.add_argument(
        "--count-worker", choices=["vncmux", "vncmux-python", "pyte"], help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    chosen = args.traces.split(",") if args.traces else names()
    reps = args.reps or (1 if args.quick else 5)
    if args.count_worker:
        count_worker(args.count_worker, chosen[0], reps, args.chunk)
        return 0
    if args.instructions:
        print(f"tui_traces --instructions: {machine_line()}")
        print(LOOP_LINE)
        print(
            f"{args.chunk} B chunks; callgrind, replays counted alone, PYTHONHASHSEED=0;"
            " M = million per replay\n"
        )
        try:
            rows = count_all(chosen, args.chunk)
        except BenchError as e:
            print(f"tui_traces: {e}", file=sys.stderr)
            return 1
        head = ["trace", "vncmux M", "pyte M", "ratio"]
        print(table(rows, head + (["python loop M", "its ratio"] if COMPILED else [])))
        return 0
    print(f"tui_traces: {machine_line()}")
    print(LOOP_LINE)
    print(f"{args.chunk} B chunks, 80x24, median of {reps} (ratio: median of back-to-back pairs)\n")
    rows = []
    for name in chosen:
        data = load(name)
        parts = chunks(data, args.chunk)
        if args.profile:
            counts = profile(parts)
            print(f"{name}: {sum(counts.values())} fallbacks")
            for token, n in counts.most_common(12):
                print(f"    {n:6d}  {token!r}")
            continue
        times = max(1, int((0.2 if args.quick else 1.0) * 1e6 / len(data)))
        if args.cprofile:
            print(f"== {name}\n{cprofile(parts, times)}")
            continue
        size = len(data) * times
        # (interleaved, so that a slow spell of this shared machine hits both alike)
        fast: list[float] = []
        py: list[float] = []
        slow: list[float] = []
        loop: list[float] = []
        for _ in range(reps):
            fast.append(feed_vncmux(parts, times))
            py.append(feed_pyte(parts, times))
            if COMPILED:
                loop.append(feed_vncmux(parts, times, compiled=False))
            if not args.no_slow:
                slow.append(feed_vncmux(parts, times, fast=False))
        mb = size / median(fast) / 1e6
        mb_pyte = size / median(py) / 1e6
        mb_slow = size / median(slow) / 1e6 if slow else float("nan")
        mb_loop = size / median(loop) / 1e6 if loop else float("nan")
        # The ratio of each pair run back to back, then the median: a noisy spell moves
        # both figures of a pair, not their ratio.
        ratio = median([p / f for p, f in zip(py, fast)])
        rows.append(
            [
                name,
                f"{len(data) / 1e3:.0f} kB",
                f"{mb_slow:.2f}",
                f"{mb_loop:.2f}",
                f"{mb:.2f}",
                f"{mb_pyte:.2f}",
                f"{ratio:.1f}x",
                "ok" if ratio >= BUDGET else "MISS",
            ]
        )
    if rows:
        print(
            table(
                rows,
                [
                    "trace",
                    "size",
                    "slow MB/s",
                    "py loop MB/s",
                    "fast MB/s",
                    "pyte MB/s",
                    "ratio",
                    f">={BUDGET:.0f}x",
                ],
            )
        )
    return 0  # a measurement: a missed budget is reported, not an error


if __name__ == "__main__":
    sys.exit(main())
