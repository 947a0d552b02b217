"""Device → socket throughput of the pure byte multiplexer (``--vnc none``) against socat.

The bench owns the device: a UNIX socket server that vncmux connects to
(``--device unix:dev.sock``).  1, 4 and 16 clients connect to ``--socket unix:mux.sock``,
every client reads everything and checks the byte count and CRC-32.  MB/s = payload bytes /
time until the LAST client has everything.  vncmux's CPU seconds come from /proc.

Baseline, same data, same run: ``socat -u UNIX-CONNECT:dev.sock UNIX-LISTEN:cli.sock``, a
relay doing the one-client job (connect to the device, accept the client, copy).  socat
serves one client per process, so the 16-client comparison is against 16× socat's
one-client time, as the budget reads: 1 client ≥ 0.5× socat; 16 clients cost ≤ 3× one.

    .venv/bin/python bench/throughput.py [--quick] [--mb N] [--reps N] [--clients 1,4,16]
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BenchError,
    Vncmux,
    cpu_seconds,
    cpu_split,
    ensure_socat,
    machine_line,
    median,
    rmtree,
    self_cpu,
    table,
    tempdir,
    wait_until,
)

BLOCK = 1 << 20


def listen_unix(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    return s


def accept(
    server: socket.socket, timeout: float, alive: Callable[[], None] | None = None
) -> socket.socket:
    server.settimeout(0.05)
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn, _ = server.accept()
            conn.setblocking(True)
            return conn
        except TimeoutError:
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise BenchError("the relay never connected to the device") from None


def connect_unix(path: str, timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise BenchError(f"cannot connect to {path}") from None
            time.sleep(0.01)


class Payload:
    """``total`` bytes made of one pseudo-random block repeated; its CRC-32 known ahead."""

    def __init__(self, total: int) -> None:
        import random

        self.block = random.Random(7).randbytes(BLOCK)
        self.count = max(1, total // BLOCK)
        self.total = self.count * BLOCK
        crc = 0
        for _ in range(self.count):
            crc = zlib.crc32(self.block, crc)
        self.crc = crc

    def send(self, dev: socket.socket, errors: list[BaseException]) -> None:
        try:
            for _ in range(self.count):
                dev.sendall(self.block)
        except BaseException as e:  # noqa: BLE001 - reported by the reader side
            errors.append(e)


def read_all(
    clients: list[socket.socket],
    payload: Payload,
    timeout: float,
    alive: Callable[[], None] | None = None,
) -> float:  # type: ignore[no-untyped-def]
    """Read every client until each has ``payload.total`` bytes; returns the time the last
    one completed (perf_counter).  Checks count and CRC."""
    sel = selectors.DefaultSelector()
    counts = [0] * len(clients)
    crcs = [0] * len(clients)
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    for i, c in enumerate(clients):
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, i)
    remaining = len(clients)
    deadline = time.monotonic() + timeout
    last = 0.0
    while remaining:
        events = sel.select(0.2)
        if not events:
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise BenchError(f"clients stalled at {counts} of {payload.total} bytes")
        for key, _ in events:
            i = key.data
            try:
                n = clients[i].recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                raise BenchError(f"client {i} was disconnected at {counts[i]} bytes")
            counts[i] += n
            crcs[i] = zlib.crc32(view[:n], crcs[i])
            if counts[i] >= payload.total:
                sel.unregister(clients[i])
                remaining -= 1
                last = time.perf_counter()
                if counts[i] > payload.total:
                    raise BenchError(f"client {i} got {counts[i] - payload.total} extra bytes")
                if crcs[i] != payload.crc:
                    raise BenchError(f"client {i}: CRC mismatch (bytes reordered or corrupted)")
    sel.close()
    return last


def sync_clients(dev: socket.socket, clients: list[socket.socket], mux: Vncmux) -> None:
    """Make sure every client is attached to the hub before timing: write a marker through
    the device until every client's stream so far ends with the newest marker."""
    bufs = [b""] * len(clients)
    for c in clients:
        c.settimeout(0.0)
    for k in range(200):
        marker = b"\x00sync-%d\x00" % k
        dev.sendall(marker)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            for i, c in enumerate(clients):
                try:
                    bufs[i] += c.recv(65536)
                except (TimeoutError, BlockingIOError):
                    pass
            if all(b.endswith(marker) for b in bufs):
                for c in clients:
                    c.settimeout(None)
                return
            mux.check_alive()
            time.sleep(0.002)
    raise BenchError("clients never all received the sync marker: not attached?")


def run_vncmux(
    mux: Vncmux, dev: socket.socket, mux_sock: str, n: int, payload: Payload, timeout: float
) -> tuple[float, float, float, float]:
    clients = [connect_unix(mux_sock, 10) for _ in range(n)]
    try:
        sync_clients(dev, clients, mux)
        cpu0, bench0 = mux.cpu(), self_cpu()
        sys0 = cpu_split(mux.pid)[1]
        errors: list[BaseException] = []
        t0 = time.perf_counter()
        writer = threading.Thread(target=payload.send, args=(dev, errors), daemon=True)
        writer.start()
        t1 = read_all(clients, payload, timeout, alive=mux.check_alive)
        writer.join(timeout)
        if errors:
            raise BenchError(f"device writer failed: {errors[0]!r}")
        return t1 - t0, mux.cpu() - cpu0, self_cpu() - bench0, cpu_split(mux.pid)[1] - sys0
    finally:
        for c in clients:
            c.close()


def run_socat(
    socat: str, work: str, payload: Payload, timeout: float, rep: int
) -> tuple[float, float, float]:
    dev_path = os.path.join(work, f"sdev{rep}.sock")
    cli_path = os.path.join(work, f"scli{rep}.sock")
    server = listen_unix(dev_path)
    proc = subprocess.Popen(
        [socat, "-u", f"UNIX-CONNECT:{dev_path}", f"UNIX-LISTEN:{cli_path}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def alive() -> None:
        if proc.poll() is not None:
            raise BenchError(
                f"socat exited: {proc.stderr.read().decode(errors='replace') if proc.stderr else ''}"
            )

    dev = client = None
    try:
        dev = accept(server, 10, alive)
        wait_until(lambda: os.path.exists(cli_path), 10, "socat to listen", alive=alive)
        client = connect_unix(cli_path, 10)
        cpu0, bench0 = cpu_seconds(proc.pid), self_cpu()
        errors: list[BaseException] = []
        t0 = time.perf_counter()
        writer = threading.Thread(target=payload.send, args=(dev, errors), daemon=True)
        writer.start()
        t1 = read_all([client], payload, timeout, alive=alive)
        cpu = cpu_seconds(proc.pid) - cpu0
        writer.join(timeout)
        return t1 - t0, cpu, self_cpu() - bench0
    finally:
        for s in (client, dev, server):
            if s is not None:
                s.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    ap.add_argument(
        "--mb", type=int, default=None, help="payload MB per run (default 200, quick 8)"
    )
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--clients", default="1,4,16")
    args = ap.parse_args()
    mb = args.mb or (8 if args.quick else 200)
    reps = args.reps or (1 if args.quick else 3)
    counts = [int(c) for c in args.clients.split(",")]
    payload = Payload(mb * 1_000_000)
    timeout = 60.0
    socat = ensure_socat()

    print(f"throughput: {machine_line()}")
    print(
        f"{payload.total / 1e6:.0f} MB per run, median of {reps}; vncmux --vnc none, UNIX sockets\n"
    )
    work = tempdir()
    dev_path = os.path.join(work, "dev.sock")
    mux_sock = os.path.join(work, "mux.sock")
    server = listen_unix(dev_path)
    mux = Vncmux(
        ["--device", f"unix:{dev_path}", "--vnc", "none", "--socket", f"unix:{mux_sock}"],
        work,
        ready_socket=mux_sock,
    )
    results: dict[str, list[tuple[float, ...]]] = {}
    try:
        mux.start()
        dev = accept(server, 20, mux.check_alive)
        for rep in range(reps):
            results.setdefault("socat", []).append(run_socat(socat, work, payload, timeout, rep))
            for n in counts:
                results.setdefault(str(n), []).append(
                    run_vncmux(mux, dev, mux_sock, n, payload, timeout)
                )
        dev.close()
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    finally:
        mux.stop()
        server.close()
        rmtree(work)

    def med(key: str) -> tuple[float, float, float]:
        rs = results[key]
        return (median([r[0] for r in rs]), median([r[1] for r in rs]), median([r[2] for r in rs]))

    s_time, s_cpu, s_bench = med("socat")
    s_rate = payload.total / s_time / 1e6
    rows = [
        [
            "socat relay",
            1,
            f"{s_rate:.0f}",
            "1.00",
            f"{s_cpu:.2f}",
            "-",
            "-",
            "-",
            "-",
            f"{s_bench:.2f}",
        ]
    ]
    t_one, cpu_one, _ = med(str(counts[0]))
    for n in counts:
        t, cpu, bench = med(str(n))
        rate = payload.total / t / 1e6
        kernel = median([r[3] / r[1] for r in results[str(n)] if r[1] > 0])
        rows.append(
            [
                "vncmux",
                n,
                f"{rate:.0f}",
                f"{s_time * n / t:.2f}",
                f"{cpu:.2f}",
                f"{t / t_one:.2f}",
                f"{cpu / cpu_one:.2f}",
                f"{cpu / payload.total * 1e9 / n:.2f}",
                f"{100 * kernel:.0f}%",
                f"{bench:.2f}",
            ]
        )
    print(
        table(
            rows,
            [
                "relay",
                "clients",
                "MB/s (last client done)",
                "vs n x socat time",
                "relay CPU s",
                "time vs 1",
                "CPU vs 1",
                "relay CPU ns/B/client",
                "in kernel",
                "bench CPU s",
            ],
        )
    )
    print(
        "\n'vs n x socat time': n socat relays, each doing the one-client job, one after another,"
        "\nagainst vncmux serving n clients at once.  'bench CPU s': the bench's own writer and"
        "\nreaders (CRC-32 of every byte), which share the 2 cores with the relay.  'in kernel':"
        "\nthe share of vncmux's CPU spent in system calls (stime), i.e. copying each byte into"
        "\nevery client's socket: n clients cost n copies, whatever the relay is written in."
    )
    if "1" in results and "16" in results:
        t1, c1, _ = med("1")
        t16, c16, _ = med("16")
        print(
            f"\nbudget: 1 client >= 0.5x socat: {payload.total / t1 / 1e6:.0f} vs {s_rate:.0f} MB/s "
            f"= {s_time / t1:.2f}x [{'ok' if s_time / t1 >= 0.5 else 'MISS'}]; "
            f"16 clients cost <= 3x one: wall time {t16 / t1:.2f}x "
            f"[{'ok' if t16 / t1 <= 3 else 'MISS'}], vncmux CPU {c16 / c1:.2f}x "
            f"[{'ok' if c16 / c1 <= 3 else 'MISS'}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
