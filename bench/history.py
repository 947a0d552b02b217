"""Output history cost: ``OutputHistory.append`` against a plain ``bytearray`` extend.

Every device byte goes through the history before any other backend, so its cost is paid
on the hub's fast path.  The same seeded chunks (64 B: a slow UART's reads; 4 KiB: a tty's
usual read; 64 KiB: a socket device's) are appended to a 1 MiB history that wraps many
times, and, as the baseline, to a ``bytearray`` (``+=``, cleared each time it holds 1 MiB:
the bare copy).  Prints µs per MB for each, their ratio, the cost with one subscriber (what
an API follower adds), a 64 KiB ``tail`` (one replay), and the memory a full history holds.
Medians over several repetitions; in-process, no vncmux.  Budgets: with 4 KiB and 64 KiB
chunks the history costs at most 4× the bare copy; a full 1 MiB history holds at most
1.02 MiB.

    .venv/bin/python bench/history.py [--quick] [--size MB] [--reps N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine_line, median, table

sys.path.insert(0, str(ROOT))

from vncmux.history import OutputHistory  # noqa: E402

HISTORY = 1 << 20
MB = 1 << 20
BUDGET = {4096: 4.0, 65536: 4.0}  # chunk size → the most history/bytearray time
MEMORY_BUDGET = 1.02  # held / size


def chunks_of(size: int, total: int, rng: random.Random) -> list[bytes]:
    """``total`` bytes as chunks of ``size`` (a few distinct ones, reused: the copy is what
    is measured, not the generator)."""
    distinct = [rng.randbytes(size) for _ in range(16)]
    return [distinct[i % 16] for i in range(total // size)]


def plain(chunks: list[bytes]) -> None:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) >= HISTORY:
            buf.clear()


def history(chunks: list[bytes], subscriber: Callable[[int, bytes], None] | None = None) -> None:
    h = OutputHistory(HISTORY, time.monotonic)
    if subscriber is not None:
        h.subscribe(subscriber)
    for chunk in chunks:
        h.append(chunk)


def timed(fn: Callable[[], None], reps: int) -> float:
    """Median seconds of ``reps`` runs."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def tail_cost(reps: int) -> float:
    """Median µs of one ``tail(64K)`` on a full, wrapped history of text lines."""
    h = OutputHistory(HISTORY, time.monotonic)
    line = b"".join(b"%08d some console output of a booting machine\n" % n for n in range(100))
    for _ in range(3 * HISTORY // len(line)):
        h.append(line)
    times = []
    for _ in range(max(reps * 20, 50)):
        t0 = time.perf_counter()
        h.tail(64 * 1024)
        times.append(time.perf_counter() - t0)
    return median(times) * 1e6


def held_memory() -> int:
    """Bytes a 1 MiB history holds after 10 MiB went through it."""
    chunk = random.Random(3).randbytes(4099)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        h = OutputHistory(HISTORY, time.monotonic)
        for _ in range(10 * MB // len(chunk)):
            h.append(chunk)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 MB, 3 repetitions")
    parser.add_argument("--size", type=int, default=64, help="MB appended per run (64)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (median, 5)")
    args = parser.parse_args()
    size, reps = (8, 3) if args.quick else (args.size, args.reps)
    print(machine_line())
    print(f"{size} MB per run through a {HISTORY >> 10} KiB history, median of {reps}\n")
    rng = random.Random(42)
    rows = []
    for chunkSize in (64, 4096, 65536):
        chunks = chunks_of(chunkSize, size * MB, rng)
        base = timed(lambda c=chunks: plain(c), reps) / size * 1e6
        mine = timed(lambda c=chunks: history(c), reps) / size * 1e6
        followed = timed(lambda c=chunks: history(c, lambda o, d: None), reps) / size * 1e6
        budget = BUDGET.get(chunkSize)
        verdict = "—" if budget is None else ("ok" if mine / base <= budget else "MISS")
        rows.append(
            [
                f"{chunkSize} B chunks",
                f"{base:.0f}",
                f"{mine:.0f}",
                f"{mine / base:.2f}×",
                f"≤ {budget:g}× {verdict}" if budget else "—",
                f"{followed:.0f}",
                f"{followed / base:.2f}×",
            ]
        )
    print(
        table(
            rows,
            [
                "append",
                "bytearray µs/MB",
                "history µs/MB",
                "ratio",
                "budget",
                "+1 subscriber µs/MB",
                "ratio",
            ],
        )
    )
    print(f"\ntail(64K) on a full history: {tail_cost(reps):.0f} µs (one replay)")
    held = held_memory()
    verdict = "ok" if held / HISTORY <= MEMORY_BUDGET else "MISS"
    print(
        f"memory after 10 MiB through a 1 MiB history: {held} bytes "
        f"({held / HISTORY:.3f}×; budget ≤ {MEMORY_BUDGET}× {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
