"""Many viewers on one console: vncmux CPU, RSS, and how current every viewer stays.

A real vncmux process on a pty the bench owns, VNC on a UNIX socket (``connections=`` raised
so 100 viewers fit).  The bench writes log lines to the device at a steady 100 KB/s (a
write every 10 ms) for a while, with 0 (the baseline: the console alone), 1, 10 and 100
viewers connected.  Every viewer (minimal RFB clients in one asyncio loop, ZRLE + CopyRect)
asks for the next incremental update as soon as one has arrived.

Figures per run: vncmux CPU (cores = CPU seconds / wall seconds, from /proc), RSS and peak
RSS, updates per viewer per second, and *lag*: for sample writes (one each 100 ms), per
viewer, the time from the write until the first update that began arriving after it has
fully arrived; reported as median / p99 / max over all viewers and samples.  The bench's
own CPU is printed too: with 100 viewers it shares the 2 cores with vncmux.

Budget: 100 viewers at 100 KB/s: ≤ 1 core, every viewer current within 100 ms, RSS ≤ 300 MB.

``--extra-vncmux-arg`` passes an option to vncmux (repeat it for each word), e.g.
``--extra-vncmux-arg=--scrollback --extra-vncmux-arg=0`` to measure without the scrollback.

    .venv/bin/python bench/viewers.py [--quick] [--seconds S] [--viewers 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    COPYRECT,
    RAW,
    ZRLE,
    BenchError,
    PtyDevice,
    RFBClient,
    Update,
    Vncmux,
    machine_line,
    median,
    percentile,
    rmtree,
    self_cpu,
    table,
    tempdir,
)
from console_feed import gen_plain

RATE = 100_000  # bytes per second written to the device
TICK = 0.01  # one write every 10 ms
SAMPLE_EVERY = 10  # ticks between lag samples


class Viewer:
    """One viewer that always has an incremental request outstanding."""

    def __init__(self, client: RFBClient) -> None:
        self.client = client
        self.arrivals: list[tuple[float, float]] = []  # (started, finished) per update

    def on_update(self, u: Update) -> None:
        self.arrivals.append((u.started, u.finished))
        self.client.request(incremental=True)

    def lag_after(self, t: float) -> float | None:
        i = bisect.bisect_left(self.arrivals, (t, 0.0))
        if i >= len(self.arrivals):
            return None
        return self.arrivals[i][1] - t


async def connect_viewers(vnc: str, n: int) -> list[Viewer]:
    viewers = []
    for _ in range(n):
        c = await RFBClient.connect(vnc)
        c.set_encodings([ZRLE, COPYRECT, RAW])
        v = Viewer(c)
        c.start_pump(v.on_update)
        c.request(incremental=False)
        viewers.append(v)
    # every viewer got its first full frame
    deadline = time.monotonic() + 30
    while any(not v.arrivals for v in viewers):
        if time.monotonic() > deadline:
            raise BenchError("some viewers never got their first frame")
        await asyncio.sleep(0.01)
    return viewers


async def feed(pty: PtyDevice, seconds: float, data: bytes) -> tuple[list[float], int, float]:
    """Write RATE bytes/s in ticks; never block the loop (a full pty counts as a shortfall).
    Returns the sample write times, bytes written and the last write time."""
    per_tick = int(RATE * TICK)
    samples: list[float] = []
    written = 0
    pos = 0
    start = time.perf_counter()
    ticks = int(seconds / TICK)
    last = start
    for k in range(ticks):
        target = start + k * TICK
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = data[pos : pos + per_tick]
        pos = (pos + per_tick) % (len(data) - per_tick)
        try:
            n = os.write(pty.master, chunk)
        except BlockingIOError:
            n = 0
        written += n
        last = time.perf_counter()
        if k % SAMPLE_EVERY == 0 and n:
            samples.append(last)
        try:  # vncmux's own writes to the device (terminal replies): discard
            os.read(pty.master, 65536)
        except OSError:
            pass
    return samples, written, last


async def one_run(
    vnc: str, mux: Vncmux, pty: PtyDevice, n: int, seconds: float, data: bytes
) -> dict[str, float]:
    viewers = await connect_viewers(vnc, n)
    try:
        await asyncio.sleep(0)  # let first-frame requests go out
        mux.check_alive()
        cpu0, bench0, t0 = mux.cpu(), self_cpu(), time.perf_counter()
        samples, written, last = await feed(pty, seconds, data)
        wall = time.perf_counter() - t0
        cpu, bench = mux.cpu() - cpu0, self_cpu() - bench0
        # the final write: wait (bounded) until every viewer has an update that began after it
        deadline = time.monotonic() + 5
        while viewers and any(not v.arrivals or v.arrivals[-1][0] < last for v in viewers):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        lags = []
        missing = 0
        for v in viewers:
            for t in samples + [last]:
                lag = v.lag_after(t)
                if lag is None:
                    missing += 1
                else:
                    lags.append(lag)
        rss, hwm = mux.rss(), mux.rss("VmHWM")
        ups = sum(sum(1 for a in v.arrivals if t0 <= a[0] <= t0 + wall) for v in viewers)
        mux.check_alive()
        return {
            "viewers": n,
            "cpu": cpu / wall,
            "bench": bench / wall,
            "rss": rss,
            "hwm": hwm,
            "rate": written / wall,
            "ups": ups / wall / n if n else 0.0,
            "lag50": median(lags) if lags else float("nan"),
            "lag99": percentile(lags, 99) if lags else float("nan"),
            "lagmax": max(lags) if lags else float("nan"),
            "missing": missing,
        }
    finally:
        for v in viewers:
            v.client.close()


async def run(args: argparse.Namespace) -> list[dict[str, float]]:
    work = tempdir()
    pty = PtyDevice()
    vnc_path = os.path.join(work, "vnc.sock")
    mux = Vncmux(
        ["--device", pty.path, "--vnc", f"unix:{vnc_path},connections=250", *args.extra_vncmux_arg],
        work,
        ready_socket=vnc_path,
    )
    data = gen_plain(2_000_000, random.Random("viewers"))
    out = []
    try:
        mux.start()
        pty.wait_opened(mux)
        for n in [0] + args.viewers:
            out.append(await one_run(f"unix:{vnc_path}", mux, pty, n, args.seconds, data))
            await asyncio.sleep(0.2)  # let closed viewers go away before the next run
    finally:
        mux.stop()
        pty.close()
        rmtree(work)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument(
        "--seconds", type=float, default=None, help="seconds per run (default 10, quick 1)"
    )
    ap.add_argument("--viewers", default=None, help="viewer counts (default 1,10,100; quick 1,10)")
    ap.add_argument(
        "--extra-vncmux-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more word for vncmux's command line (repeatable), e.g. "
        "--extra-vncmux-arg=--scrollback --extra-vncmux-arg=0",
    )
    args = ap.parse_args()
    args.seconds = args.seconds or (1.0 if args.quick else 10.0)
    args.viewers = [
        int(v) for v in (args.viewers or ("1,10" if args.quick else "1,10,100")).split(",")
    ]
    print(f"viewers: {machine_line()}")
    print(
        f"{RATE / 1000:.0f} KB/s of log lines to the device for {args.seconds:.0f} s per run; "
        f"viewers use ZRLE + CopyRect over a UNIX socket"
    )
    print(f"vncmux extra arguments: {' '.join(args.extra_vncmux_arg) or '(none)'}\n")
    try:
        res = asyncio.run(run(args))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    ms = 1000.0
    base = res[0]["cpu"]
    rows = []
    for r in res:
        rows.append(
            [
                int(r["viewers"]) if r["viewers"] else "0 (baseline)",
                f"{r['rate'] / 1000:.0f}",
                f"{r['cpu']:.2f}",
                f"{r['cpu'] / base:.1f}x" if base > 0 else "-",
                f"{r['rss'] / 2**20:.0f}/{r['hwm'] / 2**20:.0f}",
                f"{r['ups']:.0f}" if r["viewers"] else "-",
                f"{r['lag50'] * ms:.1f}" if r["viewers"] else "-",
                f"{r['lag99'] * ms:.1f}" if r["viewers"] else "-",
                f"{r['lagmax'] * ms:.1f}" if r["viewers"] else "-",
                int(r["missing"]) if r["viewers"] else "-",
                f"{r['bench']:.2f}",
            ]
        )
    print(
        table(
            rows,
            [
                "viewers",
                "written KB/s",
                "vncmux cores",
                "vs baseline",
                "RSS/peak MB",
                "updates/s/viewer",
                "lag p50 ms",
                "lag p99 ms",
                "lag max ms",
                "no update",
                "bench cores",
            ],
        )
    )
    big = res[-1]
    print(
        f"\nbudget ({int(big['viewers'])} viewers): output kept at {RATE / 1000:.0f} KB/s: "
        f"{big['rate'] / 1000:.0f} [{'ok' if big['rate'] >= 0.95 * RATE else 'MISS'}]; "
        f"<= 1 core: {big['cpu']:.2f} "
        f"[{'ok' if big['cpu'] <= 1 else 'MISS'}]; current within 100 ms (max lag): "
        f"{big['lagmax'] * ms:.0f} ms [{'ok' if big['lagmax'] <= 0.1 else 'MISS'}]; RSS <= 300 MB: "
        f"{big['hwm'] / 2**20:.0f} MB [{'ok' if big['hwm'] <= 300 * 2**20 else 'MISS'}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
