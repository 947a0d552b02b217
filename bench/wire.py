"""Bytes on the wire per scrolled line and per full 80×24 screen, per RFB encoding.

A real vncmux process on a pty the bench owns (``--device /dev/pts/N``, VNC on a UNIX
socket), watched by the minimal RFB client of bench/common.py.  For each of Raw, Hextile and
ZRLE, with CopyRect off and on, a fresh viewer:

- full screen: 24 rows of dense log text are drawn (the first viewer's incremental updates
  for that are the "drawn" column); then a new viewer connects and asks for the whole
  screen: the size of that first frame is the figure (a fresh connection, so ZRLE's zlib
  stream has not seen the text before);
- scrolled line, one at a time: the cursor sits on the last row; each of N lines is written
  as ``\\r\\n`` + text and the viewer waits until its updates stop (poll with a quiet window)
  before the next: total update bytes / N;
- scrolled lines, streamed: N lines written at once, then wait until updates stop: bytes / N
  (what a viewer pays when output is faster than its round trip).

Baseline, same run: Raw without CopyRect (every ratio is against it).  Budgets: ZRLE +
CopyRect ≤ 2 KB per scrolled line; a full screen in ZRLE ≤ 20 KB.

    .venv/bin/python bench/wire.py [--quick] [--lines N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    COPYRECT,
    ENCODING_NAMES,
    HEXTILE,
    RAW,
    ZRLE,
    BenchError,
    PtyDevice,
    RFBClient,
    Update,
    Vncmux,
    machine_line,
    rmtree,
    table,
    tempdir,
)
from console_feed import gen_plain

CONFIGS = [
    (RAW, False),
    (RAW, True),
    (HEXTILE, False),
    (HEXTILE, True),
    (ZRLE, False),
    (ZRLE, True),
]


def text_lines(n: int, seed: str, width: int) -> list[bytes]:
    lines = gen_plain(200 * n + 2000, random.Random(seed)).split(b"\r\n")
    return [ln[:width].ljust(width) for ln in lines[:n]]


async def measure(
    vnc: str, pty: PtyDevice, enc: int, copyrect: bool, n_lines: int, quiet: float
) -> dict[str, float]:
    client = await RFBClient.connect(vnc)
    client_updates: list[Update] = []
    try:
        client.set_encodings([enc, COPYRECT] if copyrect else [enc])
        client.start_pump(client_updates.append)
        pty.write_all(b"\x1bc\x1b[H\x1b[2J")  # reset: a blank screen
        client.request(incremental=False)
        await client.next_update(5.0)
        await client.settle(first=0.3, quiet=quiet)

        # a full screen of text, drawn with cursor addressing (no scrolling)
        rows = text_lines(24, "wire-full", 80)
        pty.write_all(b"".join(b"\x1b[%d;1H" % (i + 1) + r for i, r in enumerate(rows)))
        drawn = await client.settle(first=2.0, quiet=quiet)
        if not drawn:
            raise BenchError("no update after drawing a full screen")
        # what a viewer joining now pays for the whole screen (a fresh zlib stream: the one
        # above has just seen this text and would compress it to almost nothing)
        fresh = await RFBClient.connect(vnc)
        try:
            fresh.set_encodings([enc, COPYRECT] if copyrect else [enc])
            fresh.start_pump()
            fresh.request(incremental=False)
            full = await fresh.next_update(5.0)
        finally:
            fresh.close()

        # one line at a time, each scrolling the screen by one row
        pty.write_all(b"\x1b[24;1H")
        await client.settle(first=0.3, quiet=quiet)
        lines = text_lines(n_lines, "wire-scroll", 79)
        one_bytes = 0
        for ln in lines:
            pty.write_all(b"\r\n" + ln)
            got = await client.settle(first=2.0, quiet=quiet)
            if not got:
                raise BenchError("no update after a scrolled line")
            one_bytes += sum(u.nbytes for u in got)

        # the same number of lines at once
        lines = text_lines(n_lines, "wire-stream", 79)
        pty.write_all(b"".join(b"\r\n" + ln for ln in lines))
        got = await client.settle(first=2.0, quiet=max(quiet, 0.1))
        stream_bytes = sum(u.nbytes for u in got)
        seen = {e for u in client_updates for (*_r, e) in u.rects}
        if not copyrect and COPYRECT in seen:
            raise BenchError(
                f"{ENCODING_NAMES[enc]}: the server sent CopyRect to a viewer "
                "that did not announce it"
            )
        return {
            "full": full.nbytes,
            "drawn": sum(u.nbytes for u in drawn),
            "line": one_bytes / n_lines,
            "stream": stream_bytes / n_lines,
            "stream_updates": len(got),
        }
    finally:
        client.close()


async def run(args: argparse.Namespace) -> list[list[object]]:
    work = tempdir()
    pty = PtyDevice()
    vnc_path = os.path.join(work, "vnc.sock")
    mux = Vncmux(["--device", pty.path, "--vnc", f"unix:{vnc_path}"], work, ready_socket=vnc_path)
    results = []
    try:
        mux.start()
        pty.wait_opened(mux)
        for enc, cr in CONFIGS:
            r = await measure(f"unix:{vnc_path}", pty, enc, cr, args.lines, args.quiet)
            mux.check_alive()
            pty.drain()
            results.append((enc, cr, r))
    finally:
        mux.stop()
        pty.close()
        rmtree(work)
    base = results[0][2]
    rows: list[list[object]] = []
    for enc, cr, r in results:
        rows.append(
            [
                ENCODING_NAMES[enc] + (" + CopyRect" if cr else ""),
                f"{r['full'] / 1024:.1f}",
                f"{base['full'] / r['full']:.1f}x",
                f"{r['drawn'] / 1024:.1f}",
                f"{r['line'] / 1024:.2f}",
                f"{base['line'] / r['line']:.0f}x",
                f"{r['stream'] / 1024:.2f}",
                int(r["stream_updates"]),
            ]
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument(
        "--lines", type=int, default=None, help="scrolled lines per encoding (default 40, quick 4)"
    )
    ap.add_argument(
        "--quiet",
        type=float,
        default=0.05,
        help="seconds without an update that mean 'the viewer is current' (default 0.05)",
    )
    args = ap.parse_args()
    args.lines = args.lines or (4 if args.quick else 40)
    print(f"wire: {machine_line()}")
    print(
        f"80x24 console, {args.lines} scrolled lines per encoding; sizes are whole "
        f"FramebufferUpdate messages\n"
    )
    try:
        rows = asyncio.run(run(args))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    print(
        table(
            rows,
            [
                "encoding",
                "full screen KB",
                "vs Raw",
                "drawn KB",
                "KB / scrolled line",
                "vs Raw",
                "KB / line streamed",
                "updates streamed",
            ],
        )
    )
    zr = next(r for r in rows if r[0] == "ZRLE + CopyRect")
    z = next(r for r in rows if r[0] == "ZRLE")
    print(
        f"\nbudget: ZRLE+CopyRect per scrolled line <= 2 KB: {zr[4]} KB "
        f"[{'ok' if float(str(zr[4])) <= 2 else 'MISS'}]; full screen ZRLE <= 20 KB: {z[1]} KB "
        f"[{'ok' if float(str(z[1])) <= 20 else 'MISS'}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
