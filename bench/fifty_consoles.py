"""Fifty consoles in one process: vncmux CPU and RSS with a config file of 50 consoles, each
with a pty device the bench writes log lines to at 1 KB/s and one viewer asking for updates.

One ``twistd -n vncmux --config FILE`` process; each console's VNC on its own UNIX socket;
each device a pty the bench owns (100 bytes every 100 ms: a booting board's chatter); each
viewer (the minimal RFB client of ``common.py``, ZRLE + CopyRect, all in one asyncio loop)
asks for the next incremental update as soon as one has arrived.  After a warm-up, vncmux's
CPU (cores = CPU seconds / wall seconds, from /proc) and RSS are read over the measuring
window.  The baseline is the same load on a config of 1 console, so the figures come as a
ratio per console: what the 50th console costs compared with the first.

Budget (2 shared cores): 50 consoles under 1 core, under 10 MB of RSS per console.

    .venv/bin/python bench/fifty_consoles.py [--quick] [--consoles 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
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
    rmtree,
    self_cpu,
    table,
    tempdir,
)

RATE = 1000  # bytes per second per console
TICK = 0.1  # seconds between writes
WARMUP = 2.0  # seconds of load before measuring


def log_lines(size: int, rng: random.Random) -> bytes:
    """Plausible console chatter: timestamped kernel-log-like lines."""
    words = [
        "usb",
        "eth0",
        "link",
        "up",
        "mmc0",
        "new",
        "device",
        "found",
        "irq",
        "ok",
        "systemd",
        "Started",
        "Reached",
        "target",
        "network",
        "udev",
        "mounted",
    ]
    out = bytearray()
    t = 0.0
    while len(out) < size:
        t += rng.random()
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
        out += f"[{t:12.6f}] {text}\r\n".encode()
    return bytes(out[:size])


def write_config(path: str, ptys: list[PtyDevice], work: str, top: list[str]) -> list[str]:
    """The TOML file (one ``[[console]]`` table per pty, ``top`` lines first); the VNC
    socket paths, in order."""
    sockets = []
    lines = ['history = "64K"', *top, "", ""]
    for index, pty in enumerate(ptys):
        vnc = os.path.join(work, f"c{index}.vnc")
        sockets.append(vnc)
        lines += [
            "[[console]]",
            f'name = "c{index}"',
            f'device = "{pty.path}"',
            f'vnc = "unix:{vnc}"',
            "",
        ]
    Path(path).write_text("\n".join(lines))
    return sockets


class Viewer:
    def __init__(self, client: RFBClient) -> None:
        self.client = client
        self.updates = 0

    def on_update(self, _update: Update) -> None:
        self.updates += 1
        self.client.request(incremental=True)


async def connect(vnc: str) -> Viewer:
    client = await RFBClient.connect(f"unix:{vnc}")
    client.set_encodings([ZRLE, COPYRECT, RAW])
    viewer = Viewer(client)
    client.start_pump(viewer.on_update)
    client.request(incremental=False)
    return viewer


async def feed(ptys: list[PtyDevice], seconds: float, data: bytes) -> int:
    """RATE bytes/s to every pty, in ticks; never blocks the loop.  Bytes written."""
    per_tick = int(RATE * TICK)
    written = 0
    start = time.perf_counter()
    positions = [random.Random(i).randrange(len(data) - per_tick) for i in range(len(ptys))]
    for k in range(int(seconds / TICK)):
        delay = start + k * TICK - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for i, pty in enumerate(ptys):
            pos = positions[i]
            try:
                written += os.write(pty.master, data[pos : pos + per_tick])
            except BlockingIOError:
                pass
            positions[i] = (pos + per_tick) % (len(data) - per_tick)
            try:  # the terminal's replies to the device: discard
                os.read(pty.master, 65536)
            except OSError:
                pass
    return written


async def one_run(count: int, seconds: float, data: bytes, top: list[str]) -> dict[str, float]:
    work = tempdir()
    ptys = [PtyDevice() for _ in range(count)]
    config = os.path.join(work, "consoles.toml")
    sockets = write_config(config, ptys, work, top)
    mux = Vncmux(["--config", config], work, ready_socket=sockets[-1], timeout=60)
    viewers: list[Viewer] = []
    try:
        mux.start()
        for pty in ptys:
            pty.wait_opened(mux, timeout=60)
        rss_idle = mux.rss()
        for vnc in sockets:
            viewers.append(await connect(vnc))
        deadline = time.monotonic() + 30
        while any(v.updates == 0 for v in viewers):
            if time.monotonic() > deadline:
                raise BenchError("some viewers never got their first frame")
            await asyncio.sleep(0.01)
        await feed(ptys, WARMUP, data)
        mux.check_alive()
        counts0 = [v.updates for v in viewers]
        cpu0, bench0, t0 = mux.cpu(), self_cpu(), time.perf_counter()
        written = await feed(ptys, seconds, data)
        wall = time.perf_counter() - t0
        cpu, bench = mux.cpu() - cpu0, self_cpu() - bench0
        ups = sum(v.updates - c for v, c in zip(viewers, counts0)) / wall / count
        rss, hwm = mux.rss(), mux.rss("VmHWM")
        mux.check_alive()
        return {
            "consoles": count,
            "cpu": cpu / wall,
            "bench": bench / wall,
            "rss": rss,
            "hwm": hwm,
            "idle": rss_idle,
            "rate": written / wall / count,
            "ups": ups,
        }
    finally:
        for v in viewers:
            v.client.close()
        mux.stop()
        for pty in ptys:
            pty.close()
        rmtree(work)


async def run(args: argparse.Namespace) -> list[dict[str, float]]:
    data = log_lines(1_000_000, random.Random("fifty"))
    out = []
    for count in (1, args.consoles):
        out.append(await one_run(count, args.seconds, data, args.top))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run, 5 consoles")
    ap.add_argument("--consoles", type=int, default=None, help="consoles (default 50)")
    ap.add_argument("--seconds", type=float, default=None, help="measuring window (default 20)")
    ap.add_argument(
        "--top",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more top-level line for the config file (repeatable), e.g. "
        "--top 'scrollback = 0'",
    )
    args = ap.parse_args()
    args.consoles = args.consoles or (5 if args.quick else 50)
    args.seconds = args.seconds or (2.0 if args.quick else 20.0)
    print(f"fifty_consoles: {machine_line()}")
    print(
        f"{RATE / 1000:.0f} KB/s of log lines to each console's pty, one viewer each "
        f"(ZRLE + CopyRect, UNIX socket); {WARMUP:.0f} s warm-up, {args.seconds:.0f} s "
        "measured; baseline: 1 console"
    )
    print(f"config file extra lines: {'; '.join(args.top) or '(none)'}\n")
    try:
        rows = asyncio.run(run(args))
    except BenchError as e:
        print(f"fifty_consoles: {e}", file=sys.stderr)
        return 1
    mb = 1 << 20
    print(
        table(
            [
                [
                    int(r["consoles"]),
                    f"{r['cpu']:.3f}",
                    f"{r['cpu'] / r['consoles'] * 1000:.1f}",
                    f"{r['rss'] / mb:.1f}",
                    f"{r['hwm'] / mb:.1f}",
                    f"{r['idle'] / mb:.1f}",
                    f"{r['rate']:.0f}",
                    f"{r['ups']:.1f}",
                    f"{r['bench']:.2f}",
                ]
                for r in rows
            ],
            [
                "consoles",
                "vncmux cores",
                "mcores/console",
                "RSS MB",
                "peak MB",
                "RSS idle MB",
                "B/s/console",
                "updates/viewer/s",
                "bench cores",
            ],
        )
    )
    base, many = rows[0], rows[-1]
    n = many["consoles"]
    print(
        f"\n{int(n)} consoles vs 1: CPU x{many['cpu'] / base['cpu']:.1f} "
        f"({many['cpu'] / n / base['cpu']:.2f} of the first console's CPU per console); "
        f"RSS x{many['rss'] / base['rss']:.1f} "
        f"(+{(many['rss'] - base['rss']) / (n - 1) / mb:.2f} MB per added console)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
