"""Soak: N VNC viewers and M byte clients for minutes while the device floods and clients
churn.  Not run in CI.

What it checks and prints:
- vncmux's RSS over time (a leak shows as a steady climb after the first minute);
- every byte a byte client receives is verified: the device writes numbered lines whose
  content follows from the number, so each client checks that lines arrive complete, in
  order and without gaps from its first full line on; the M/2 long-lived clients also
  compare a sha256 of the whole stream with the writer's;
- byte clients type markers that must reach the device;
- viewers keep requesting incremental updates and count them; every few seconds a viewer
  and a byte client are dropped and replaced (churn);
- errors: any verification failure, disconnect not caused by us, or exception.

    .venv/bin/python bench/soak.py                       # 3 minutes, 8 viewers, 8 clients
    .venv/bin/python bench/soak.py --seconds 600 --viewers 20 --clients 20
    .venv/bin/python bench/soak.py --quick               # 15 s smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ZRLE,
    BenchError,
    PtyDevice,
    RFBClient,
    Update,
    Vncmux,
    machine_line,
    rmtree,
    tempdir,
)

COLOURS = [b"\x1b[31m", b"\x1b[32m", b"\x1b[1;33m", b"\x1b[0m", b"\x1b[7m", b"\x1b[0m"]


def line(seq: int) -> bytes:
    """Device output line ``seq``: its content follows from ``seq`` (so it can be checked)
    and a CRC32 of the body ends it."""
    rng = random.Random(seq)
    body = (
        (b"%08d " % seq)
        + COLOURS[seq % len(COLOURS)]
        + bytes(rng.randrange(32, 127) for _ in range(rng.randrange(10, 150)))
        + b"\x1b[0m"
    )
    return body + b" %08x\r\n" % zlib.crc32(body)


class Stats:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.written = 0
        self.lines = 0
        self.verified = 0
        self.updates = 0
        self.update_bytes = 0
        self.markers_sent = 0
        self.markers_seen = 0
        self.viewer_churn = 0
        self.client_churn = 0

    def error(self, text: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(text)
        print(f"ERROR: {text}", flush=True)


class ByteClient:
    """Reads the byte stream and verifies each line; optionally hashes everything."""

    def __init__(self, path: str, stats: Stats, name: str, whole: bool) -> None:
        self.path, self.stats, self.name, self.whole = path, stats, name, whole
        self.hash = hashlib.sha256() if whole else None
        self.received = 0
        self.expected: int | None = None
        self.stopping = False

    async def run(self, device_markers: set[bytes]) -> None:
        reader, writer = await asyncio.open_unix_connection(self.path, limit=1 << 22)
        self.writer = writer
        tail = b""
        first = True
        try:
            while True:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    if not self.stopping:
                        self.stats.error(f"{self.name}: closed by vncmux")
                    return
                self.received += len(chunk)
                if self.hash is not None:
                    self.hash.update(chunk)
                data = tail + chunk
                lines = data.split(b"\r\n")
                tail = lines.pop()
                if first and not self.whole:
                    lines = lines[1:]  # joined mid-line
                first = False
                for text in lines:
                    self.check(text + b"\r\n")
                if random.random() < 0.01:
                    marker = b"<%s-%d>" % (self.name.encode(), self.received)
                    device_markers.add(marker)
                    self.stats.markers_sent += 1
                    writer.write(marker)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            if not self.stopping:
                self.stats.error(f"{self.name}: {e!r}")

    def check(self, text: bytes) -> None:
        try:
            seq = int(text[:8])
        except ValueError:
            self.stats.error(f"{self.name}: garbled line {text[:40]!r}")
            return
        if self.expected is not None and seq != self.expected:
            self.stats.error(f"{self.name}: line {seq} where {self.expected} was due")
        if text != line(seq):
            self.stats.error(f"{self.name}: line {seq} altered")
        self.expected = seq + 1
        self.stats.verified += len(text)

    def stop(self) -> None:
        self.stopping = True
        self.writer.close()


async def viewer_loop(address: str, stats: Stats, stop: asyncio.Event) -> None:
    client = await RFBClient.connect(address)
    client.set_encodings([ZRLE, 1, 0])

    def counted(update: Update) -> None:
        stats.updates += 1
        stats.update_bytes += update.nbytes
        client.request(True)

    client.start_pump(counted)
    client.request(False)
    await stop.wait()
    if client.pump_task is not None:
        client.pump_task.cancel()
    client.writer.close()


async def soak(args: argparse.Namespace) -> int:
    work = tempdir()
    vnc_path = os.path.join(work, "vnc.sock")
    byte_path = os.path.join(work, "bytes.sock")
    device = PtyDevice()
    mux = Vncmux(
        [
            "--device",
            device.path,
            "--vnc",
            f"unix:{vnc_path}",
            "--socket",
            f"unix:{byte_path}",
            "--stall-timeout",
            "30",
        ],
        work,
        ready_socket=byte_path,
    )
    stats = Stats()
    loop = asyncio.get_running_loop()
    try:
        mux.start()
        device.wait_opened(mux)
        print(machine_line())
        print(
            f"soak: {args.viewers} viewers, {args.clients} byte clients, {args.seconds} s, "
            f"churn every {args.churn} s; vncmux pid {mux.pid}",
            flush=True,
        )
        markers: set[bytes] = set()
        writer_hash = hashlib.sha256()
        whole_clients = [
            ByteClient(byte_path, stats, f"whole{i}", True)
            for i in range(max(1, args.clients // 2))
        ]
        tasks = [asyncio.create_task(c.run(markers)) for c in whole_clients]
        await asyncio.sleep(0.5)  # let them connect before the first byte (not a sync point)
        churners: list[tuple[ByteClient, asyncio.Task[None]]] = []
        for i in range(args.clients - len(whole_clients)):
            c = ByteClient(byte_path, stats, f"churn{i}", False)
            churners.append((c, asyncio.create_task(c.run(markers))))
        viewer_stops: list[asyncio.Event] = []
        viewer_tasks: list[asyncio.Task[None]] = []
        for _ in range(args.viewers):
            ev = asyncio.Event()
            viewer_stops.append(ev)
            viewer_tasks.append(asyncio.create_task(viewer_loop(f"unix:{vnc_path}", stats, ev)))

        # device: write numbered lines as fast as vncmux takes them; read what clients typed
        pending = bytearray()
        seq = 0
        seen_input = bytearray()

        def on_writable() -> None:
            nonlocal seq
            while len(pending) < 1 << 16:
                data = line(seq)
                seq += 1
                pending.extend(data)
                writer_hash.update(data)
                stats.lines += 1
            try:
                n = os.write(device.master, pending[: 1 << 16])
            except BlockingIOError:
                return
            del pending[:n]
            stats.written += n

        def on_readable() -> None:
            try:
                seen_input.extend(os.read(device.master, 1 << 16))
            except OSError:
                return
            for marker in [m for m in markers if m in seen_input]:
                markers.discard(marker)
                stats.markers_seen += 1
            if len(seen_input) > 1 << 16:
                del seen_input[:-256]

        loop.add_writer(device.master, on_writable)
        loop.add_reader(device.master, on_readable)
        start = time.monotonic()
        next_report = start
        next_churn = start + args.churn
        rss_samples: list[tuple[float, int]] = []
        while time.monotonic() - start < args.seconds:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            mux.check_alive()
            if now >= next_churn:
                next_churn = now + args.churn
                if viewer_stops:
                    i = random.randrange(len(viewer_stops))
                    viewer_stops[i].set()
                    viewer_stops[i] = asyncio.Event()
                    viewer_tasks.append(
                        asyncio.create_task(viewer_loop(f"unix:{vnc_path}", stats, viewer_stops[i]))
                    )
                    stats.viewer_churn += 1
                if churners:
                    i = random.randrange(len(churners))
                    churners[i][0].stop()
                    c = ByteClient(byte_path, stats, f"churn{stats.client_churn + 100}", False)
                    churners[i] = (c, asyncio.create_task(c.run(markers)))
                    stats.client_churn += 1
            if now >= next_report:
                next_report = now + args.report
                rss = mux.rss()
                rss_samples.append((now - start, rss))
                print(
                    f"t={now - start:6.1f}s rss={rss / 1048576:6.1f} MiB "
                    f"device={stats.written / 1048576:8.1f} MiB verified={stats.verified / 1048576:9.1f} MiB "
                    f"updates={stats.updates} ({stats.update_bytes / 1048576:.1f} MiB) "
                    f"markers={stats.markers_seen}/{stats.markers_sent} errors={len(stats.errors)}",
                    flush=True,
                )
        loop.remove_writer(device.master)
        # drain: the long-lived clients must end with exactly what was written
        written_total = stats.written
        deadline = time.monotonic() + 30
        while (
            any(c.received < written_total for c in whole_clients) and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)
        # the writer hashed whole lines, some maybe not yet written: hash what was sent
        sent = writer_hash.copy()
        mismatched = [c.name for c in whole_clients if c.received != written_total]
        if not mismatched:
            # every long-lived client got exactly the written prefix; check its hash against
            # the writer's hash minus the unsent tail (recomputed from the line numbers)
            check = hashlib.sha256()
            for n in range(seq):
                check.update(line(n))
            assert check.hexdigest() == sent.hexdigest()
            prefix = hashlib.sha256()
            remaining = written_total
            for n in range(seq):
                data = line(n)
                prefix.update(data[:remaining])
                remaining -= min(remaining, len(data))
                if remaining == 0:
                    break
            bad = [
                c.name
                for c in whole_clients
                if c.hash is not None and c.hash.hexdigest() != prefix.hexdigest()
            ]
            if bad:
                stats.error(f"long-lived clients' sha256 differs from the device's: {bad}")
            else:
                print(
                    f"sha256 of the {written_total} device bytes matches on all "
                    f"{len(whole_clients)} long-lived clients",
                    flush=True,
                )
        if mismatched:
            stats.error(f"long-lived clients short of {written_total} bytes: {mismatched}")
        loop.remove_reader(device.master)
        for ev in viewer_stops:
            ev.set()
        for c in whole_clients:
            c.stop()
        for c, _t in churners:
            c.stop()
        await asyncio.gather(
            *tasks, *viewer_tasks, *(t for _c, t in churners), return_exceptions=True
        )
        first = next(
            (r for t, r in rss_samples if t >= min(60.0, args.seconds / 3)), rss_samples[0][1]
        )
        last = rss_samples[-1][1]
        print(
            f"summary: {args.seconds} s; device wrote {stats.written / 1048576:.1f} MiB "
            f"({stats.lines} lines); byte clients verified {stats.verified / 1048576:.1f} MiB; "
            f"{stats.updates} viewer updates ({stats.update_bytes / 1048576:.1f} MiB); "
            f"churn {stats.viewer_churn} viewers / {stats.client_churn} byte clients; "
            f"markers {stats.markers_seen}/{stats.markers_sent}; RSS after warm-up "
            f"{first / 1048576:.1f} MiB -> end {last / 1048576:.1f} MiB; "
            f"errors {len(stats.errors)}",
            flush=True,
        )
        return 1 if stats.errors else 0
    finally:
        mux.stop()
        device.close()
        if not os.environ.get("VNCMUX_BENCH_KEEP"):
            rmtree(work)
        else:
            print(f"kept {work}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--viewers", type=int, default=8)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--churn", type=float, default=2.0, help="seconds between churns")
    parser.add_argument("--report", type=float, default=10.0, help="seconds between lines")
    parser.add_argument("--quick", action="store_true", help="15 s smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.report = 15, 5
    try:
        return asyncio.run(soak(args))
    except BenchError as e:
        print(f"FAILED: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
