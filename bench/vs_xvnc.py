"""Cost of one viewer, side by side: vncmux against TigerVNC's Xvnc running xterm.

The same stream of log lines (``console_feed.gen_plain``) is written at 100 KB/s (a write
every 10 ms) to

(a) vncmux, through a pty the bench owns (``--device /dev/pts/N``, VNC on a UNIX socket);
(b) ``xterm -fa Terminus:pixelsize=16 -b 0 -geometry 80x24`` inside ``Xvnc -geometry
    640x384 -depth 24`` (the same 80x24 cells of 8x16 pixels, the same Terminus font,
    found through a private fontconfig file naming the repository's ``fonts/``), whose
    shell reads the stream from a FIFO (``stty raw; exec cat FIFO``).

One viewer (``common.RFBClient``: ZRLE + CopyRect + Raw, security None, an incremental
request as soon as an update has arrived) is connected to each in turn, over a UNIX socket.
Per run: server CPU in cores (CPU seconds / wall seconds from /proc: the vncmux process;
Xvnc + xterm, not the ``cat`` that stands for the device), bytes/s on the wire (every
byte the viewer received) and updates/s.  Runs alternate (vncmux, [the --compare-root vncmux,] Xvnc, vncmux, ...); the
median of ``--runs`` (3) is printed with vncmux / Xvnc ratios.

Goal (issue 14): vncmux at or below Xvnc + xterm on CPU and on wire bytes.

    .venv/bin/python bench/vs_xvnc.py [--quick] [--seconds S] [--runs N]

Needs the Debian packages ``tigervnc-standalone-server`` and ``xterm``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from common import (
    COPYRECT,
    RAW,
    ROOT,
    ZRLE,
    BenchError,
    PtyDevice,
    RFBClient,
    Update,
    Vncmux,
    cpu_seconds,
    machine_line,
    median,
    rmtree,
    table,
    tempdir,
    unix_accepts,
    wait_until,
)
from console_feed import gen_plain

RATE = 100_000  # bytes per second written to the device
TICK = 0.01  # one write every 10 ms
COLS, ROWS, CELL_W, CELL_H = 80, 24, 8, 16

FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{fonts}</dir>
  <cachedir>{cache}</cachedir>
  <selectfont><acceptfont><pattern><patelt name="scalable"><bool>false</bool></patelt>
  </pattern></acceptfont></selectfont>
</fontconfig>
"""


class Side:
    """One server under test: started once, measured in several runs, stopped at the end."""

    name = ""
    address = ""

    def start(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> int:
        """Write to the device without blocking; bytes accepted."""
        raise NotImplementedError

    def cpu(self) -> float:
        raise NotImplementedError

    def check_alive(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class VncmuxSide(Side):
    """vncmux from this tree, or from ``root`` (another checkout: a "before" figure)."""

    def __init__(self, work: str, extra: list[str], root: Path | None = None) -> None:
        self.root = root
        self.name = "vncmux" if root is None else f"vncmux at {root}"
        self.pty = PtyDevice()
        path = os.path.join(work, f"vnc{id(self)}.sock")
        self.address = f"unix:{path}"
        self.mux = Vncmux(
            ["--device", self.pty.path, "--vnc", f"unix:{path}", *extra], work, ready_socket=path
        )

    def start(self) -> None:
        if self.root is None:
            self.mux.start()
        else:  # Vncmux runs from common.ROOT (its cwd and PYTHONPATH): point it elsewhere
            saved, common.ROOT = common.ROOT, self.root
            try:
                self.mux.start()
            finally:
                common.ROOT = saved
        self.pty.wait_opened(self.mux)

    def write(self, data: bytes) -> int:
        try:
            n = os.write(self.pty.master, data)
        except BlockingIOError:
            n = 0
        try:  # vncmux's own writes to the device (terminal replies): discard
            os.read(self.pty.master, 65536)
        except OSError:
            pass
        return n

    def cpu(self) -> float:
        return self.mux.cpu()

    def check_alive(self) -> None:
        self.mux.check_alive()

    def stop(self) -> None:
        self.mux.stop()
        self.pty.close()


def _free_display() -> int:
    for n in range(57, 200):
        if not os.path.exists(f"/tmp/.X{n}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            return n
    raise BenchError("no free X display number between :57 and :199")


class XvncSide(Side):
    name = "Xvnc + xterm"

    def __init__(self, work: str) -> None:
        for tool in ("Xvnc", "xterm"):
            if shutil.which(tool) is None:
                raise BenchError(
                    f"{tool} not found: apt-get install tigervnc-standalone-server xterm"
                )
        self.work = work
        self.sock = os.path.join(work, "xvnc.sock")
        self.address = f"unix:{self.sock}"
        self.fifo = os.path.join(work, "stream")
        self.fd = -1
        self.xvnc: subprocess.Popen[bytes] | None = None
        self.xterm: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        display = _free_display()
        conf = os.path.join(self.work, "fonts.conf")
        Path(conf).write_text(
            FONTS_CONF.format(fonts=ROOT / "fonts", cache=os.path.join(self.work, "fc-cache"))
        )
        os.mkfifo(self.fifo)
        with open(os.path.join(self.work, "xvnc.log"), "wb") as log:
            self.xvnc = subprocess.Popen(
                [
                    "Xvnc",
                    f":{display}",
                    "-SecurityTypes",
                    "None",
                    "-geometry",
                    f"{COLS * CELL_W}x{ROWS * CELL_H}",
                    "-depth",
                    "24",
                    "-rfbunixpath",
                    self.sock,
                    "-rfbport",
                    "-1",
                    "-nolisten",
                    "tcp",
                    "-AlwaysShared",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            lambda: unix_accepts(self.sock), 20, "Xvnc to listen", alive=self.check_alive, step=0.02
        )
        env = dict(os.environ, DISPLAY=f":{display}", FONTCONFIG_FILE=conf)
        with open(os.path.join(self.work, "xterm.log"), "wb") as log:
            self.xterm = subprocess.Popen(
                [
                    "xterm",
                    "-fa",
                    f"Terminus:pixelsize={CELL_H}",
                    "-b",
                    "0",
                    "-geometry",
                    f"{COLS}x{ROWS}+0+0",
                    "-e",
                    "sh",
                    "-c",
                    f"stty raw -echo; exec cat {self.fifo}",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def reader_there() -> bool:
            try:
                self.fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: cat has not opened the FIFO yet
                return False
            return True

        wait_until(
            reader_there, 20, "xterm's cat to open the FIFO", alive=self.check_alive, step=0.02
        )

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    def cpu(self) -> float:
        assert self.xvnc is not None and self.xterm is not None
        return cpu_seconds(self.xvnc.pid) + cpu_seconds(self.xterm.pid)

    def check_alive(self) -> None:
        for proc, what in ((self.xvnc, "Xvnc"), (self.xterm, "xterm")):
            if proc is not None and proc.poll() is not None:
                log = Path(self.work, what.lower() + ".log").read_text(errors="replace")
                raise BenchError(f"{what} exited with status {proc.returncode}:\n{log[-800:]}")

    def stop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for proc in (self.xterm, self.xvnc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


async def feed(write: Callable[[bytes], int], seconds: float, data: bytes) -> int:
    """Write RATE bytes/s in ticks without blocking; bytes written."""
    per_tick = int(RATE * TICK)
    written = 0
    pos = 0
    start = time.perf_counter()
    for k in range(int(seconds / TICK)):
        delay = start + k * TICK - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        written += write(data[pos : pos + per_tick])
        pos = (pos + per_tick) % (len(data) - per_tick)
    return written


async def one_run(side: Side, seconds: float, data: bytes) -> dict[str, float]:
    client = await RFBClient.connect(side.address)
    arrivals: list[Update] = []

    def on_update(u: Update) -> None:
        arrivals.append(u)
        client.request(incremental=True)

    try:
        client.set_encodings([ZRLE, COPYRECT, RAW])
        client.start_pump(on_update)
        client.request(incremental=False)
        deadline = time.monotonic() + 20
        while not arrivals:
            side.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{side.name}: no first frame")
            await asyncio.sleep(0.01)
        await feed(side.write, 0.5, data)  # warm up: the screen is full of lines
        side.check_alive()
        first = len(arrivals)
        bytes0, cpu0, t0 = client.bytes_in, side.cpu(), time.perf_counter()
        written = await feed(side.write, seconds, data)
        wall = time.perf_counter() - t0
        cpu, wire = side.cpu() - cpu0, client.bytes_in - bytes0
        ups = len(arrivals) - first
        side.check_alive()
        return {"cpu": cpu / wall, "wire": wire / wall, "ups": ups / wall, "rate": written / wall}
    finally:
        client.close()


async def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    data = gen_plain(2_000_000, random.Random("vs_xvnc"))
    work = tempdir()
    sides: list[Side] = [VncmuxSide(work, args.extra_vncmux_arg), XvncSide(work)]
    if args.compare_root:
        sides.insert(1, VncmuxSide(work, args.extra_vncmux_arg, Path(args.compare_root)))
    results: dict[str, list[dict[str, float]]] = {s.name: [] for s in sides}
    try:
        for side in sides:
            side.start()
        for _ in range(args.runs):
            for side in sides:
                results[side.name].append(await one_run(side, args.seconds, data))
                await asyncio.sleep(0.3)  # the closed viewer goes away
    finally:
        for side in sides:
            side.stop()
        rmtree(work)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="one short run each (smoke test)")
    ap.add_argument(
        "--seconds", type=float, default=None, help="seconds per run (default 10, quick 2)"
    )
    ap.add_argument("--runs", type=int, default=None, help="runs per side (default 3, quick 1)")
    ap.add_argument(
        "--extra-vncmux-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more word for vncmux's command line (repeatable)",
    )
    ap.add_argument(
        "--compare-root",
        metavar="DIR",
        default=None,
        help="also measure the vncmux of another tree, e.g. the last commit "
        "unpacked by 'git archive HEAD | tar -x -C DIR' (a before figure)",
    )
    args = ap.parse_args()
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.runs = args.runs or (1 if args.quick else 3)
    print(f"vs_xvnc: {machine_line()}")
    print(
        f"{RATE / 1000:.0f} KB/s of log lines for {args.seconds:.0f} s per run, "
        f"{args.runs} runs each, one viewer (ZRLE + CopyRect) over a UNIX socket; "
        f"{COLS}x{ROWS} cells of {CELL_W}x{CELL_H} px, Terminus on both\n"
    )
    try:
        res = asyncio.run(run(args))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    med = {name: {k: median([r[k] for r in runs]) for k in runs[0]} for name, runs in res.items()}
    rows = []
    for name, m in med.items():
        rows.append(
            [
                name if len(name) < 30 else name[:12] + "..." + name[-14:],
                f"{m['rate'] / 1000:.0f}",
                f"{m['cpu']:.3f}",
                f"{m['wire'] / 1000:.1f}",
                f"{m['ups']:.1f}",
                " ".join(f"{r['cpu']:.2f}" for r in res[name]),
            ]
        )
    print(
        table(rows, ["server", "written KB/s", "cores", "wire KB/s", "updates/s", "cores per run"])
    )
    v, x = med["vncmux"], med["Xvnc + xterm"]
    cpu_ok, wire_ok = v["cpu"] <= x["cpu"], v["wire"] <= x["wire"]
    print(
        f"\nvncmux / Xvnc+xterm: CPU {v['cpu'] / x['cpu']:.2f}x "
        f"[{'ok' if cpu_ok else 'MISS'}], wire {v['wire'] / x['wire']:.2f}x "
        f"[{'ok' if wire_ok else 'MISS'}], updates {v['ups'] / x['ups']:.2f}x"
    )
    for name, b in med.items():
        if name.startswith("vncmux at "):
            print(
                f"{name} / Xvnc+xterm: CPU {b['cpu'] / x['cpu']:.2f}x, "
                f"wire {b['wire'] / x['wire']:.2f}x, updates {b['ups'] / x['ups']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
