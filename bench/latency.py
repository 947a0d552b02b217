"""Key press → updated pixels at a viewer, median and p99, against a raw socket echo.

The device is a pty the bench owns and turns into an echoing device: whatever vncmux writes
to it (a key's bytes) the bench reads from the master and writes straight back, as a shell
echoes what you type.  vncmux runs with ``--vnc unix:...`` and ``--socket unix:...``.

- viewer: the RFB client of bench/common.py (ZRLE + CopyRect) keeps an incremental request
  outstanding, sends KeyEvent 'a'..'z' (down + up) and times until a FramebufferUpdate that
  covers the cursor row has fully arrived.  The screen is cleared every 60 keys so the
  cursor stays on row 1.
- baseline, same run, same device and process: a raw socket client sends one byte and times
  until the echo comes back through vncmux (device → hub → socket backend).

Budget: median ≤ 5 ms, p99 ≤ 20 ms (loopback, echoing device).

    .venv/bin/python bench/latency.py [--quick] [--n N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    Vncmux,
    machine_line,
    median,
    percentile,
    rmtree,
    table,
    tempdir,
)


class Echo:
    """Echo what vncmux writes to the pty back into it, from the event loop."""

    def __init__(self, pty: PtyDevice) -> None:
        self.pty = pty
        self.bytes = 0
        asyncio.get_running_loop().add_reader(pty.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.pty.master, 65536)
        except OSError:
            return
        if data:
            self.bytes += len(data)
            self.pty.write_all(data)

    def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.pty.master)


async def socket_rtts(path: str, n: int, warm: int) -> list[float]:
    reader, writer = await asyncio.open_unix_connection(path)
    out = []
    try:
        # attached? poll: send a byte until its echo comes back
        for _ in range(200):
            writer.write(b".")
            try:
                await asyncio.wait_for(reader.readexactly(1), 0.25)
                break
            except TimeoutError:
                continue
        else:
            raise BenchError("no echo through the raw socket")
        while True:  # late echoes of the probe
            try:
                await asyncio.wait_for(reader.read(100), 0.1)
            except TimeoutError:
                break
        for i in range(n + warm):
            ch = bytes([97 + i % 26])
            t0 = time.perf_counter()
            writer.write(ch)
            got = await asyncio.wait_for(reader.readexactly(1), 5)
            t1 = time.perf_counter()
            if got != ch:
                # a late echo of the attach probe: resynchronise on the next one
                continue
            if i >= warm:
                out.append(t1 - t0)
    finally:
        writer.close()
    return out


async def key_latencies(vnc: str, pty: PtyDevice, n: int, warm: int) -> list[float]:
    client = await RFBClient.connect(vnc)
    client.set_encodings([ZRLE, COPYRECT, RAW])
    client.start_pump()
    client.request(incremental=False)
    await client.next_update(5)
    row_h = client.height // 24
    out = []
    try:
        for i in range(n + warm):
            if i % 60 == 0:
                pty.write_all(b"\x1b[H\x1b[2J")
                await client.settle(first=1.0, quiet=0.05)
            else:
                await client.settle(first=0.005, quiet=0.005)  # nothing left over
            client.request(incremental=True)
            keysym = 0x61 + i % 26
            client.key(keysym, True)
            t0 = time.perf_counter()
            deadline = t0 + 5
            while True:
                u = await client.next_update(max(0.01, deadline - time.perf_counter()))
                if any(y < row_h and y + h > 0 for (_x, y, _w, h, _e) in u.rects):
                    break
                client.request(incremental=True)
            t1 = u.finished
            client.key(keysym, False)
            if i >= warm:
                out.append(t1 - t0)
    except TimeoutError:
        raise BenchError("no update after a key press within 5 s") from None
    finally:
        client.close()
    return out


async def run(args: argparse.Namespace) -> tuple[list[float], list[float]]:
    work = tempdir()
    pty = PtyDevice()
    vnc_path = os.path.join(work, "vnc.sock")
    raw_path = os.path.join(work, "raw.sock")
    mux = Vncmux(
        ["--device", pty.path, "--vnc", f"unix:{vnc_path}", "--socket", f"unix:{raw_path}"],
        work,
        ready_socket=vnc_path,
    )
    echo = None
    try:
        mux.start()
        pty.wait_opened(mux)
        echo = Echo(pty)
        sock = await socket_rtts(raw_path, args.n, 10)
        mux.check_alive()
        before = echo.bytes
        keys = await key_latencies(f"unix:{vnc_path}", pty, args.n, 10)
        mux.check_alive()
        if echo.bytes - before < args.n:
            raise BenchError(
                f"only {echo.bytes - before} key bytes reached the device for "
                f"{args.n + 10} key presses"
            )
        return keys, sock
    finally:
        if echo:
            echo.stop()
        mux.stop()
        pty.close()
        rmtree(work)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument("--n", type=int, default=None, help="key presses (default 200, quick 20)")
    args = ap.parse_args()
    args.n = args.n or (20 if args.quick else 200)
    print(f"latency: {machine_line()}")
    print(f"{args.n} samples each (after 10 warm-up), VNC and raw socket over UNIX sockets\n")
    try:
        keys, sock = asyncio.run(run(args))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    ms = 1000.0
    rows = [
        [
            "raw socket echo (baseline)",
            f"{median(sock) * ms:.2f}",
            f"{percentile(sock, 99) * ms:.2f}",
            f"{max(sock) * ms:.2f}",
            "1.0x",
        ],
        [
            "key -> updated pixels (VNC)",
            f"{median(keys) * ms:.2f}",
            f"{percentile(keys, 99) * ms:.2f}",
            f"{max(keys) * ms:.2f}",
            f"{median(keys) / median(sock):.1f}x",
        ],
    ]
    print(table(rows, ["path", "median ms", "p99 ms", "max ms", "median vs baseline"]))
    m, p = median(keys) * ms, percentile(keys, 99) * ms
    print(
        f"\nbudget: median <= 5 ms: {m:.2f} [{'ok' if m <= 5 else 'MISS'}]; "
        f"p99 <= 20 ms: {p:.2f} [{'ok' if p <= 20 else 'MISS'}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
