"""Memory of a full output history and a full scrollback, in a real vncmux.

vncmux runs as a user runs it, its device a pty the bench owns, the console on (VNC on a
UNIX socket, no viewer).  The bench writes enough distinct log lines to fill the history and
the scrollback several times over (plain lines, then lines with colour changes inside them,
which the scrollback cannot keep as plain text), waits until vncmux is idle, and reads its
RSS.  Baseline, same run: the same with ``--history 0 --scrollback 0``.  Prints RSS for each
setting and the difference to the baseline: what a full history and scrollback cost.

    .venv/bin/python bench/memory.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PtyDevice, Vncmux, machine_line, rmtree, table, tempdir, wait_until

MB = 1 << 20


def lines(count: int, colour: bool) -> bytes:
    """``count`` distinct log lines of about 70 bytes."""
    out = []
    for i in range(count):
        if colour:
            out.append(
                b"[%8d.%06d] \x1b[32mok\x1b[0m eth%d: link \x1b[1;33mup\x1b[0m %d Mbps\r\n"
                % (i // 1000, i % 1000000, i % 4, 10 ** (i % 4))
            )
        else:
            out.append(
                b"[%8d.%06d] usb 1-%d: new high-speed USB device number %d\r\n"
                % (i // 1000, i % 1000000, i % 8, i)
            )
    return b"".join(out)


def idle(mux: Vncmux, pty: PtyDevice) -> None:
    """Wait until vncmux's CPU time stops moving (the console has fed everything)."""
    last = [mux.cpu()]

    def settled() -> bool:
        pty.drain()
        time.sleep(0.3)  # a sampling interval, not synchronisation: the CPU must not move
        now = mux.cpu()
        done = now - last[0] < 0.01
        last[0] = now
        return done

    wait_until(settled, 120, "vncmux to go idle", alive=mux.check_alive, step=0)


def measure(args: list[str], data: bytes) -> tuple[int, int]:
    """RSS after start, and after ``data`` went through the console (bytes)."""
    work = tempdir()
    pty = PtyDevice()
    ready = os.path.join(work, "b.sock")
    try:
        with Vncmux(
            [
                "--device",
                pty.path,
                "--vnc",
                f"unix:{work}/v.sock",
                "--socket",
                f"unix:{ready}",
                *args,
            ],
            work,
            ready_socket=ready,
        ) as mux:
            pty.wait_opened(mux)
            idle(mux, pty)
            before = mux.rss()
            for i in range(0, len(data), 1 << 16):
                pty.write_all(data[i : i + (1 << 16)], timeout=60)
            idle(mux, pty)
            return before, mux.rss()
    finally:
        pty.close()
        rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer lines (a smoke run)")
    opts = parser.parse_args()
    count = 30_000 if opts.quick else 120_000
    print(machine_line())
    settings = [
        ("baseline: --history 0 --scrollback 0", ["--history", "0", "--scrollback", "0"]),
        ("default: --history 1M --scrollback 10000", []),
        ("--history 16M --scrollback 100000", ["--history", "16M", "--scrollback", "100000"]),
    ]
    rows = []
    for colour in (False, True):
        data = lines(count, colour)
        base = 0
        for name, args in settings:
            start, full = measure(args, data)
            if not base:
                base = full
            rows.append(
                [
                    "colour" if colour else "plain",
                    name,
                    f"{start / MB:.1f}",
                    f"{full / MB:.1f}",
                    f"{(full - base) / MB:+.1f}",
                ]
            )
    print(f"{count} distinct lines ({len(lines(count, False)) / MB:.1f} MB plain) per run")
    print(table(rows, ["lines", "setting", "RSS at start MB", "RSS full MB", "vs baseline MB"]))


if __name__ == "__main__":
    main()
