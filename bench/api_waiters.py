"""What idle API waiters cost: console flood throughput with and without 64 of them (the
most one console takes, ``vncmux.api.resource.MAX_WAITS``).

A real vncmux with the console on (``--vnc unix:``), a byte client on ``--socket`` and the
HTTP/JSON API on ``--api unix:``; the device is a UNIX socket server the bench owns.  The
flood is ``console_flood``'s (plain log lines, time until the byte client has everything,
CRC checked; the console is lossless, so that is the console's sustained rate).  Runs, on
the same data, every repetition:

- no waiter;
- 64 idle ``GET /wait?screen=REGEX`` (a pattern that never matches, each its own
  connection): each ``changed`` of the console reads the screen text once for all and
  runs the 64 regexes over it;
- 64 idle ``GET /wait?output=REGEX``: each chunk of output is searched by each waiter
  from 4 KiB before it.

Also the CPU vncmux spends over 2 s of quiet with the 64 waiters attached (it should be
nothing: waits are event-driven, nothing polls).

    .venv/bin/python bench/api_waiters.py [--quick] [--mb N] [--reps N] [--waiters N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BenchError,
    Vncmux,
    machine_line,
    median,
    rmtree,
    table,
    tempdir,
    unix_accepts,
    wait_until,
)
from console_flood import LogPayload, Run, flood, wait_idle
from throughput import accept, listen_unix

NEVER = "no-such-text-[0-9]{12}"


def api_get(api: str, path: str) -> dict:  # type: ignore[type-arg]
    """One GET on the API socket; the JSON answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(api)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _sep, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise BenchError(f"GET {path}: {head[:80]!r} {body[:200]!r}")
    return json.loads(body)


def waiters_now(api: str) -> int:
    """Pending waits, or -1 while the listen backlog is still full of new connections."""
    try:
        return int(api_get(api, "/api/v1/status")["clients"]["api_waiters"])
    except BlockingIOError:
        return -1


def open_waiters(api: str, kind: str, n: int) -> list[socket.socket]:
    """``n`` pending waits (``kind`` screen or output), each on its own connection."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(api)
        s.sendall(
            f"GET /api/v1/wait?{kind}={NEVER}&timeout=3600 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        socks.append(s)
    wait_until(lambda: waiters_now(api) == n, 20, f"{n} {kind} waiters to register")
    return socks


def close_waiters(api: str, socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()
    wait_until(lambda: waiters_now(api) == 0, 20, "the waiters to be forgotten")


async def run(args: argparse.Namespace, payload: LogPayload) -> dict[str, list[object]]:
    work = tempdir()
    dev_path = os.path.join(work, "dev.sock")
    mux_sock = os.path.join(work, "mux.sock")
    api = os.path.join(work, "api.sock")
    vnc = os.path.join(work, "vnc.sock")
    server = listen_unix(dev_path)
    mux = Vncmux(
        [
            "--device",
            f"unix:{dev_path}",
            "--vnc",
            f"unix:{vnc}",
            "--socket",
            f"unix:{mux_sock}",
            "--api",
            f"unix:{api}",
        ],
        work,
        ready_socket=mux_sock,
    )
    timeout = max(120.0, payload.total / 1e6 * 5)
    out: dict[str, list[object]] = {}
    dev: socket.socket | None = None
    try:
        mux.start()
        dev = accept(server, 20, mux.check_alive)
        wait_until(lambda: unix_accepts(api), 20, "the API socket", alive=mux.check_alive)
        for rep in range(args.reps):
            print(f"  rep {rep + 1}/{args.reps}: no waiter", end="", flush=True)
            out.setdefault("none", []).append(
                await flood(mux, dev, mux_sock, payload, None, timeout)
            )
            for kind in ("screen", "output"):
                print(f", {args.waiters} {kind} waiters", end="", flush=True)
                socks = open_waiters(api, kind, args.waiters)
                try:
                    if kind == "screen" and rep == 0:
                        cpu0 = await wait_idle(mux)
                        await asyncio.sleep(2.0)
                        out["idle_cpu"] = [mux.cpu() - cpu0]
                    out.setdefault(kind, []).append(
                        await flood(mux, dev, mux_sock, payload, None, timeout)
                    )
                    if waiters_now(api) != args.waiters:
                        raise BenchError("a waiter was answered or lost during the flood")
                finally:
                    close_waiters(api, socks)
            print(flush=True)
    finally:
        mux.stop()
        if dev is not None:
            dev.close()
        server.close()
        rmtree(work)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument("--mb", type=float, default=None, help="MB per flood (default 20, quick 3)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--waiters", type=int, default=64, help="idle waiters (default 64, the cap)")
    args = ap.parse_args()
    mb = args.mb if args.mb is not None else (3.0 if args.quick else 20.0)
    args.reps = args.reps or (1 if args.quick else 3)
    payload = LogPayload(int(mb * 1e6))
    print(f"api_waiters: {machine_line()}")
    print(f"{payload.total / 1e6:.1f} MB of plain log lines per flood, median of {args.reps}")
    try:
        res = asyncio.run(run(args, payload))
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2

    def runs(key: str) -> list[Run]:
        return [r for r in res[key] if isinstance(r, Run)]

    def rate(key: str) -> float:
        return payload.total / median([r.seconds for r in runs(key)]) / 1e6

    base = rate("none")
    names = {
        "none": "console, no waiter",
        "screen": f"console + {args.waiters} idle screen waiters",
        "output": f"console + {args.waiters} idle output waiters",
    }
    rows = [
        [
            name,
            f"{rate(key):.2f}",
            f"{rate(key) / base:.2f}x",
            f"{median([r.cpu for r in runs(key)]):.2f}",
        ]
        for key, name in names.items()
    ]
    print()
    print(table(rows, ["flood", "MB/s", "vs no waiter", "vncmux CPU s"]))
    idle = res["idle_cpu"][0]
    assert isinstance(idle, float)
    print(f"\nvncmux CPU over 2 s of quiet with {args.waiters} screen waiters: {idle:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
