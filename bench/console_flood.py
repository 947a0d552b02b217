"""Flood through vncmux with the console (and a viewer) attached, against pyte's own feed.

A real vncmux process whose device is a UNIX socket server the bench owns
(``--device unix:dev.sock``), the virtual console on (``--vnc unix:vnc.sock``) and one byte
client on ``--socket unix:mux.sock`` that reads everything and checks the count and CRC-32.
The bench writes N MB of plain log lines (``console_feed.gen_plain``) into the device as fast
as the socket accepts.  The console is lossless: when its backlog (256 KiB) is full it pauses
the device through the hub, so the byte client cannot run ahead of it, and the time until
the byte client has everything is the console's sustained rate (give or take one backlog).

Runs, every repetition, in this order, all on the same data:

- pyte's own ``Screen(80, 24)`` + ``ByteStream`` fed in-process in 4 KiB chunks (the
  baseline; a prefix of the flood, since pyte would take minutes for all of it);
- ``--vnc none``: the same flood without a console (a second vncmux), for the console's cost;
- the console, no viewer;
- the console with one viewer (minimal RFB client, ZRLE + CopyRect) that keeps an
  incremental update request outstanding the whole time.

Figures: MB/s until the byte client has everything, vncmux CPU (cores = CPU s / wall s) and
the CPU spent until vncmux is idle again (the console finishing its last backlog, the last
frames); for the viewer, its updates and bytes during the flood and how long after the
byte client finished its last update arrived (its update stream must end: no update for
0.3 s within 30 s, or the run fails).  Medians over the repetitions.

Budget: with the console and a viewer attached, ≥ 10× pyte's own feed
in the same run.

``--extra-vncmux-arg`` passes an option to both vncmux processes (repeat it for each word),
e.g. ``--extra-vncmux-arg=--scrollback --extra-vncmux-arg=0`` to measure without the
scrollback.

    .venv/bin/python bench/console_flood.py [--quick] [--mb N] [--reps N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    COPYRECT,
    RAW,
    ZRLE,
    BenchError,
    RFBClient,
    Update,
    Vncmux,
    machine_line,
    median,
    rmtree,
    self_cpu,
    table,
    tempdir,
    unix_accepts,
    wait_until,
)
from console_feed import chunks, feed_pyte, gen_plain
from throughput import Payload, accept, connect_unix, listen_unix, read_all, sync_clients

BLOCK = 1 << 20
BUDGET = 10.0  # console + viewer >= 10x pyte
QUIET = 0.3  # a viewer's update stream has ended after this long without one
IDLE_WINDOW = 0.25  # vncmux is idle when it spends <= IDLE_CPU CPU seconds in a window
IDLE_CPU = 0.02


class LogPayload(Payload):
    """``total`` bytes of plain log lines: one ~1 MB block ending on a line boundary,
    repeated; its CRC-32 known ahead (the interface ``throughput.read_all`` checks)."""

    def __init__(self, total: int) -> None:  # noqa: D107 - the class says it
        text = gen_plain(BLOCK + 4096, random.Random("console_flood"))
        self.block = text[: text.rfind(b"\r\n", 0, BLOCK) + 2]
        self.count = max(1, round(total / len(self.block)))
        self.total = self.count * len(self.block)
        crc = 0
        for _ in range(self.count):
            crc = zlib.crc32(self.block, crc)
        self.crc = crc


@dataclass
class Run:
    """One flood: seconds until the byte client had everything, vncmux CPU seconds by then
    and until idle again, the bench's CPU, and the viewer's figures (0 without one)."""

    seconds: float
    cpu: float
    cpu_idle: float
    bench: float
    waited: float = 0.0  # vncmux runnable but waiting for a CPU during the flood
    updates: int = 0
    viewer_bytes: int = 0
    tail: float = 0.0  # last viewer update finished, seconds after the byte client was done


def runq_wait(pid: int) -> float:
    """Seconds the main thread of ``pid`` has waited for a CPU while runnable (schedstat):
    tells a process that is CPU-starved by other load from one that is idle."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return float("nan")


class Viewer:
    """One RFB viewer that asks for the next incremental update as soon as one arrives."""

    def __init__(self, client: RFBClient) -> None:
        self.client = client
        self.arrivals: list[Update] = []

    def on_update(self, u: Update) -> None:
        self.arrivals.append(u)
        self.client.request(incremental=True)

    @classmethod
    async def attach(cls, vnc: str) -> Viewer:
        c = await RFBClient.connect(vnc)
        c.set_encodings([ZRLE, COPYRECT, RAW])
        v = cls(c)
        c.start_pump(v.on_update)
        c.request(incremental=False)
        await v.quiet(30.0, first=True)
        return v

    async def quiet(self, timeout: float, first: bool = False) -> None:
        """Wait until no update has arrived for QUIET seconds (and, with ``first``, at least
        one arrived): its update stream has ended, the screen it holds is current."""
        deadline = time.monotonic() + timeout
        while True:
            self.client.pending()  # raises if the connection ended; drops the queued copies
            last = self.arrivals[-1].finished if self.arrivals else None
            if last is not None and time.perf_counter() - last >= QUIET:
                return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the viewer's updates did not stop within {timeout:.0f} s "
                    f"({len(self.arrivals)} updates)"
                    if last is not None
                    else "the viewer never got its first frame"
                )
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.client.close()


async def wait_idle(mux: Vncmux, timeout: float = 30.0) -> float:
    """Poll vncmux's CPU time until a window passes with (almost) none spent; returns it."""
    deadline = time.monotonic() + timeout
    last = mux.cpu()
    while True:
        await asyncio.sleep(IDLE_WINDOW)
        mux.check_alive()
        now = mux.cpu()
        if now - last <= IDLE_CPU:
            return now
        if time.monotonic() > deadline:
            raise BenchError(f"vncmux never went idle ({now - last:.2f} CPU s in the last window)")
        last = now


async def flood(
    mux: Vncmux,
    dev: socket.socket,
    mux_sock: str,
    payload: Payload,
    vnc: str | None,
    timeout: float,
) -> Run:
    """One flood through ``mux`` with a fresh byte client and, if ``vnc``, a fresh viewer."""
    client = connect_unix(mux_sock, 10)
    viewer: Viewer | None = None
    try:
        if vnc:
            viewer = await Viewer.attach(vnc)
        await asyncio.to_thread(sync_clients, dev, [client], mux)
        if viewer is not None:
            await viewer.quiet(30.0)
        cpu0 = await wait_idle(mux)
        bench0, wait0 = self_cpu(), runq_wait(mux.pid)
        n0 = len(viewer.arrivals) if viewer else 0
        errors: list[BaseException] = []
        t0 = time.perf_counter()
        writer = threading.Thread(target=payload.send, args=(dev, errors), daemon=True)
        writer.start()
        t1 = await asyncio.to_thread(read_all, [client], payload, timeout, mux.check_alive)
        cpu1, bench1, wait1 = mux.cpu(), self_cpu(), runq_wait(mux.pid)
        writer.join(timeout)
        if errors:
            raise BenchError(f"device writer failed: {errors[0]!r}")
        run = Run(t1 - t0, cpu1 - cpu0, 0.0, bench1 - bench0, wait1 - wait0)
        if viewer is not None:
            await viewer.quiet(30.0)
            during = [u for u in viewer.arrivals[n0:] if u.started <= t1]
            run.updates = len(during)
            run.viewer_bytes = sum(u.nbytes for u in during)
            run.tail = max(0.0, viewer.arrivals[-1].finished - t1)
        run.cpu_idle = await wait_idle(mux) - cpu0
        return run
    finally:
        client.close()
        if viewer is not None:
            viewer.close()


def pyte_rate(parts: list[bytes]) -> float:
    """pyte's own Screen(80, 24) + ByteStream on ``parts``: MB/s."""
    t, _screen, _errors = feed_pyte(parts)
    return sum(len(p) for p in parts) / t / 1e6


class Setup:
    """The two vncmux processes (console, and ``--vnc none``) and their device sockets."""

    def __init__(self, work: str, extra: list[str]) -> None:
        self.work = work
        self.extra = extra
        self.vnc_path = os.path.join(work, "vnc.sock")
        self.servers: list[socket.socket] = []
        self.devs: list[socket.socket] = []
        self.muxes: list[Vncmux] = []

    def start(self, name: str, vnc: str) -> tuple[Vncmux, socket.socket, str]:
        dev_path = os.path.join(self.work, f"{name}-dev.sock")
        mux_sock = os.path.join(self.work, f"{name}-mux.sock")
        server = listen_unix(dev_path)
        self.servers.append(server)
        mux = Vncmux(
            [
                "--device",
                f"unix:{dev_path}",
                "--vnc",
                vnc,
                "--socket",
                f"unix:{mux_sock}",
                *self.extra,
            ],
            self.work,
            ready_socket=mux_sock,
        )
        mux.log_path = os.path.join(self.work, f"{name}-vncmux.log")
        self.muxes.append(mux)
        mux.start()
        dev = accept(server, 20, mux.check_alive)
        self.devs.append(dev)
        return mux, dev, mux_sock

    def close(self) -> None:
        for mux in self.muxes:
            mux.stop()
        for s in self.devs + self.servers:
            s.close()


async def run(args: argparse.Namespace, payload: LogPayload) -> dict[str, list[float | Run]]:
    work = tempdir()
    setup = Setup(work, args.extra_vncmux_arg)
    sample = payload.block[: payload.block.rfind(b"\r\n", 0, int(args.pyte_mb * 1e6)) + 2]
    parts = chunks(sample)
    timeout = max(120.0, payload.total / 1e6 * 5)
    out: dict[str, list[float | Run]] = {}
    try:
        cmux, cdev, csock = setup.start("console", f"unix:{setup.vnc_path}")
        wait_until(
            lambda: unix_accepts(setup.vnc_path),
            20,
            "the VNC socket",
            alive=cmux.check_alive,
            step=0.02,
        )
        nmux, ndev, nsock = setup.start("none", "none")
        vnc = f"unix:{setup.vnc_path}"
        for rep in range(args.reps):
            print(f"  rep {rep + 1}/{args.reps}: pyte", end="", flush=True)
            out.setdefault("pyte", []).append(pyte_rate(parts))
            print(", --vnc none", end="", flush=True)
            out.setdefault("none", []).append(
                await flood(nmux, ndev, nsock, payload, None, timeout)
            )
            print(", console", end="", flush=True)
            out.setdefault("console", []).append(
                await flood(cmux, cdev, csock, payload, None, timeout)
            )
            print(", console + viewer", flush=True)
            out.setdefault("viewer", []).append(
                await flood(cmux, cdev, csock, payload, vnc, timeout)
            )
        out["rss"] = [float(cmux.rss()), float(cmux.rss("VmHWM"))]
    finally:
        setup.close()
        rmtree(work)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument(
        "--mb", type=float, default=None, help="MB flooded per run (default 40, quick 3)"
    )
    ap.add_argument(
        "--pyte-mb",
        type=float,
        default=None,
        help="MB of the same lines fed to pyte (default 0.5, quick 0.1)",
    )
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument(
        "--extra-vncmux-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more word for both vncmux command lines (repeatable), e.g. "
        "--extra-vncmux-arg=--scrollback --extra-vncmux-arg=0",
    )
    args = ap.parse_args()
    mb = args.mb if args.mb is not None else (3.0 if args.quick else 40.0)
    args.pyte_mb = args.pyte_mb if args.pyte_mb is not None else (0.1 if args.quick else 0.5)
    args.reps = args.reps or (1 if args.quick else 3)
    payload = LogPayload(int(mb * 1e6))

    print(f"console_flood: {machine_line()}")
    print(
        f"{payload.total / 1e6:.1f} MB of plain log lines per flood, median of {args.reps}; "
        f"pyte baseline on {args.pyte_mb:.2f} MB of the same lines, 4 KiB chunks"
    )
    print(f"vncmux extra arguments: {' '.join(args.extra_vncmux_arg) or '(none)'}")
    t_start = time.monotonic()
    try:
        res = asyncio.run(run(args, payload))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    wall = time.monotonic() - t_start

    pyte = median([float(x) for x in res["pyte"] if isinstance(x, float)])

    def runs(key: str) -> list[Run]:
        return [r for r in res[key] if isinstance(r, Run)]

    def rate(key: str) -> float:
        return payload.total / median([r.seconds for r in runs(key)]) / 1e6

    rows: list[list[object]] = [
        [
            "pyte Screen+ByteStream (in-process)",
            f"{pyte:.2f}",
            "1.0x",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]
    ]
    names = {
        "none": "vncmux --vnc none (no console)",
        "console": "vncmux + console, no viewer",
        "viewer": "vncmux + console + 1 viewer",
    }
    for key, name in names.items():
        rs = runs(key)
        secs = median([r.seconds for r in rs])
        view = (
            (
                f"{median([r.updates for r in rs]):.0f} / {median([r.viewer_bytes for r in rs]) / 1e6:.1f} MB"
                f" / {median([r.tail for r in rs]) * 1000:.0f} ms"
            )
            if key == "viewer"
            else "-"
        )
        rows.append(
            [
                name,
                f"{rate(key):.2f}",
                f"{rate(key) / pyte:.1f}x",
                f"{median([r.cpu for r in rs]) / secs:.2f}",
                f"{median([r.cpu for r in rs]):.2f}",
                f"{median([r.waited for r in rs]) / secs:.2f}",
                f"{median([r.cpu_idle for r in rs]):.2f}",
                f"{payload.total / 1e6 / median([r.cpu_idle for r in rs]):.1f}"
                if median([r.cpu_idle for r in rs]) > 0
                else "-",
                view,
                f"{median([r.bench for r in rs]):.2f}",
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "feed",
                "MB/s",
                "vs pyte",
                "vncmux cores",
                "vncmux CPU s",
                "CPU-starved",
                "CPU s until idle",
                "MB per CPU s",
                "viewer updates / bytes / last after",
                "bench CPU s",
            ],
        )
    )
    rss, hwm = res["rss"]
    assert isinstance(rss, float) and isinstance(hwm, float)
    print(
        "\nMB/s: payload / time until the byte client had it all (CRC checked).  'vncmux cores':"
        "\nCPU s / wall s; 'CPU-starved': the share of the wall time vncmux was runnable but"
        "\nwaiting for a CPU (other load; /proc/PID/schedstat).  'CPU s until idle': vncmux CPU"
        "\nuntil it is idle again (the console's last backlog, <= 256 KiB, and last frames);"
        "\n'MB per CPU s' divides by it and depends little on other load.  Viewer: updates and"
        "\nbytes during the flood, and when its last update arrived after the byte client was done."
    )
    print(
        f"Console vncmux RSS {rss / 2**20:.0f} MB (peak {hwm / 2**20:.0f} MB).  Wall {wall:.0f} s."
    )
    with_viewer = rate("viewer") / pyte
    print(
        f"\nconsole cost: no viewer {rate('console'):.2f} MB/s = {rate('console') / rate('none'):.3f}x "
        f"of --vnc none ({rate('none'):.0f} MB/s)"
    )
    print(
        f"budget: console + viewer >= {BUDGET:.0f}x pyte: {rate('viewer'):.2f} vs {pyte:.2f} MB/s = "
        f"{with_viewer:.1f}x [{'ok' if with_viewer >= BUDGET else 'MISS'}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
