"""Shared pieces of the benchmark scripts: a vncmux process, a pty device, /proc readings,
statistics, and a minimal asyncio RFB client that counts the bytes of every update.

Benchmarks are scripts, not tests: each one measures vncmux and a baseline in the same run
and prints ratios, because absolute figures on a 2-core shared machine mean little.  The
client here parses exactly as much RFB as is needed to find where each server message ends
(rectangle headers, Hextile tiles, ZRLE lengths); it never decodes pixels.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# RFB encoding numbers (signed, as on the wire)
RAW, COPYRECT, RRE, HEXTILE, ZLIB, TIGHT, ZRLE = 0, 1, 2, 5, 6, 7, 16
LASTRECT, DESKTOPSIZE, CURSOR = -224, -223, -239
DESKTOPNAME, EXTDESKTOPSIZE = -307, -308
ENCODING_NAMES = {RAW: "Raw", COPYRECT: "CopyRect", HEXTILE: "Hextile", ZRLE: "ZRLE"}


class BenchError(RuntimeError):
    """A benchmark could not run (a missing piece, a process that died): message says why."""


# --------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain aligned text table (what every script prints)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_line() -> str:
    """One line naming the date, CPU and core count, printed at the top of every report."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        load = 0.0
    busy = (
        "  WARNING: the machine is busy (load > cores): figures are unreliable"
        if load > (os.cpu_count() or 1)
        else ""
    )
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
        f"{model}; Python {sys.version.split()[0]}; load {load:.1f}{busy}"
    )


# --------------------------------------------------------------------------- /proc


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of a live process in seconds, from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw.rsplit(")", 1)[1].split()
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (psutil is not installed)."""
    return sum(cpu_split(pid))


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """Resident set size (or VmHWM, the peak) from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------- waiting


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], None] | None = None,
    step: float = 0.005,
) -> None:
    """Poll ``predicate`` until true; BenchError naming ``what`` after ``timeout`` seconds.
    ``alive`` is called each round and may raise (e.g. the process under test died)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def unix_accepts(path: str) -> bool:
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def tempdir() -> str:
    """A short private directory for sockets (UNIX socket paths are limited to ~107 bytes)."""
    return tempfile.mkdtemp(prefix="vmb-", dir="/tmp")


def rmtree(path: str) -> None:
    """Remove a bench's work directory, unless VNCMUX_BENCH_KEEP is set (then its path,
    with vncmux.log inside, is printed for a look)."""
    import shutil

    if os.environ.get("VNCMUX_BENCH_KEEP"):
        print(f"(kept {path})", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- processes


def require(module: str, what: str) -> None:
    """Fail with a clear message when a piece of vncmux the bench needs is not there yet."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        __import__(module)
    except Exception as e:
        raise BenchError(f"{what}: cannot import {module} ({type(e).__name__}: {e})") from e


class Vncmux:
    """vncmux run the way a user runs it (``twistd -n vncmux ...``) as a child process.

    ``ready_socket``: a UNIX socket path that accepts once vncmux is up (polled, never slept
    on).  Use as a context manager; ``stop()`` terminates this process by its pid only."""

    def __init__(
        self,
        args: Sequence[str],
        workdir: str,
        ready_socket: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.args = list(args)
        self.workdir = workdir
        self.ready_socket = ready_socket
        self.timeout = timeout
        self.log_path = os.path.join(workdir, "vncmux.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Vncmux:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            # a terminated bench still runs its finally blocks, which stop this child
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        cmd = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "vncmux",
            *self.args,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=str(ROOT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.ready_socket:
            path = self.ready_socket
            try:
                wait_until(
                    lambda: unix_accepts(path),
                    self.timeout,
                    f"vncmux to listen on {path}",
                    alive=self.check_alive,
                    step=0.02,
                )
            except BaseException:
                self.stop()
                raise
        return self

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"vncmux exited with status {self.proc.returncode}; log tail:\n" + self.log_tail()
            )

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self, field_name: str = "VmRSS") -> int:
        return rss_bytes(self.pid, field_name)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _named_by_others(path: str) -> bool:
    """True when some other process has ``path`` as one of its command-line arguments."""
    me = os.getpid()
    target = path.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if target in args:
            return True
    return False


class PtyDevice:
    """A pty the bench owns: vncmux opens the slave as its tty device, the bench reads and
    writes the master.  The slave is put in raw mode and kept open so that vncmux closing and
    reopening it never hangs the pty up."""

    def __init__(self) -> None:
        import tty

        # pty numbers are reused at once: a program still retrying a vanished /dev/pts/N
        # (another vncmux whose test closed its pty) would grab ours.  Skip numbers that
        # appear on another process's command line; hold them open until we close.
        self._placeholders: list[int] = []
        for _ in range(16):
            self.master, self.slave = os.openpty()
            self.path = os.ttyname(self.slave)
            if not _named_by_others(self.path):
                break
            self._placeholders += [self.master, self.slave]
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)

    def wait_opened(self, mux: Vncmux, timeout: float = 15.0) -> None:
        """Poll /proc until vncmux holds the slave open (it opens the device after it starts
        listening).  A pty number can be reused: another vncmux still retrying a vanished
        /dev/pts/N can grab ours first, and then this fails with a clear message."""

        def opened() -> bool:
            fd_dir = f"/proc/{mux.pid}/fd"
            try:
                return any(
                    os.readlink(os.path.join(fd_dir, fd)) == self.path for fd in os.listdir(fd_dir)
                )
            except OSError:
                return False

        try:
            wait_until(
                opened, timeout, f"vncmux to open {self.path}", alive=mux.check_alive, step=0.02
            )
        except BenchError as e:
            raise BenchError(
                f"{e}; is another process holding it? log tail:\n" + mux.log_tail(5)
            ) from None

    def write_all(self, data: bytes, timeout: float = 10.0) -> None:
        """Write everything to the master (vncmux reads it from the slave), waiting for room."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError("vncmux stopped reading the pty device") from None
                select.select([], [self.master], [], 0.05)

    def drain(self) -> bytes:
        """Whatever vncmux wrote to the device (input from viewers and clients)."""
        out = b""
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return out
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        for fd in (self.master, self.slave, *self._placeholders):
            try:
                os.close(fd)
            except OSError:
                pass


def ensure_socat() -> str:
    """Path of socat, installed with apt-get when missing (the throughput baseline)."""
    import shutil

    path = shutil.which("socat")
    if path:
        return path
    print("socat not found: apt-get install -y socat", flush=True)
    for cmd in (
        ["apt-get", "install", "-y", "socat"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "socat"],
    ):
        subprocess.run(
            cmd,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        path = shutil.which("socat")
        if path:
            return path
    if not path:
        raise BenchError("socat is needed for the baseline and could not be installed")
    return path


# --------------------------------------------------------------------------- RFB client


@dataclass
class Update:
    """One FramebufferUpdate as received: when it started and finished arriving, its size."""

    started: float
    finished: float
    nbytes: int
    rects: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # x, y, w, h, enc


class RFBClient:
    """A minimal RFB 3.8 viewer over asyncio: security None, the server's pixel format,
    chosen encodings, update requests, key events.  After ``start_pump`` a background task
    reads every server message, so a timeout never cuts a message in half; updates come
    back as ``Update`` with their exact byte count."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.width = self.height = 0
        self.bpp = 32
        self.name = b""
        self.updates = 0
        self.update_bytes = 0
        self.bytes_in = 0
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.on_update: Callable[[Update], None] | None = None
        self.pump_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, address: str, shared: bool = True, timeout: float = 10.0) -> RFBClient:
        """``address`` is 'unix:PATH' or 'HOST:PORT'."""
        if address.startswith("unix:"):
            reader, writer = await asyncio.open_unix_connection(address[5:], limit=1 << 20)
        else:
            host, port = address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer)
        try:
            await asyncio.wait_for(client._handshake(shared), timeout)
        except asyncio.TimeoutError:
            writer.close()
            raise BenchError(
                f"RFB handshake with {address} did not finish in {timeout:.0f} s"
            ) from None
        except asyncio.IncompleteReadError:
            writer.close()
            raise BenchError(f"{address} closed the connection during the RFB handshake") from None
        return client

    async def _read(self, n: int) -> bytes:
        data = await self.reader.readexactly(n)
        self.bytes_in += n
        return data

    async def _handshake(self, shared: bool) -> None:
        version = await self._read(12)
        if not version.startswith(b"RFB "):
            raise BenchError(f"not an RFB server: {version!r}")
        self.writer.write(b"RFB 003.008\n")
        (n,) = struct.unpack("!B", await self._read(1))
        if n == 0:
            (ln,) = struct.unpack("!I", await self._read(4))
            raise BenchError(f"server refused: {(await self._read(ln))!r}")
        types = await self._read(n)
        if 1 not in types:
            raise BenchError(
                f"security None not offered (types {list(types)}): run without a password"
            )
        self.writer.write(b"\x01")
        (result,) = struct.unpack("!I", await self._read(4))
        if result != 0:
            raise BenchError("security handshake failed")
        self.writer.write(b"\x01" if shared else b"\x00")
        init = await self._read(24)
        self.width, self.height = struct.unpack("!HH", init[:4])
        self.bpp = init[4]
        (ln,) = struct.unpack("!I", init[20:24])
        self.name = await self._read(ln)
        await self.writer.drain()

    def set_encodings(self, encodings: Sequence[int]) -> None:
        self.writer.write(
            struct.pack("!BxH", 2, len(encodings))
            + b"".join(struct.pack("!i", e) for e in encodings)
        )

    def request(
        self, incremental: bool = True, box: tuple[int, int, int, int] | None = None
    ) -> None:
        x, y, w, h = box if box else (0, 0, self.width, self.height)
        self.writer.write(struct.pack("!BBHHHH", 3, 1 if incremental else 0, x, y, w, h))

    def key(self, keysym: int, down: bool) -> None:
        self.writer.write(struct.pack("!BBxxI", 4, 1 if down else 0, keysym))

    def tap(self, keysym: int) -> None:
        self.key(keysym, True)
        self.key(keysym, False)

    async def read_message(self) -> object:
        """Next server message: an ``Update``, or a (type, payload) tuple for the others."""
        (mtype,) = struct.unpack("!B", await self._read(1))
        if mtype == 0:
            return await self._read_update()
        if mtype == 1:
            head = await self._read(5)
            (n,) = struct.unpack("!H", head[3:5])
            return (1, await self._read(6 * n))
        if mtype == 2:
            return (2, b"")
        if mtype == 3:
            head = await self._read(7)
            (n,) = struct.unpack("!I", head[3:7])
            return (3, await self._read(n))
        if mtype == 150:
            return (150, b"")
        if mtype == 248:
            head = await self._read(8)
            return (248, await self._read(head[7]))
        raise BenchError(f"unknown server message type {mtype}")

    async def _read_update(self) -> Update:
        started = time.perf_counter()
        before = self.bytes_in - 1
        head = await self._read(3)
        (count,) = struct.unpack("!H", head[1:3])
        rects: list[tuple[int, int, int, int, int]] = []
        i = 0
        while count == 0xFFFF or i < count:
            x, y, w, h, enc = struct.unpack("!HHHHi", await self._read(12))
            i += 1
            if enc == LASTRECT:
                break
            rects.append((x, y, w, h, enc))
            await self._skip_rect(w, h, enc)
        update = Update(started, time.perf_counter(), self.bytes_in - before, rects)
        self.updates += 1
        self.update_bytes += update.nbytes
        return update

    async def _skip_rect(self, w: int, h: int, enc: int) -> None:
        bypp = self.bpp // 8
        if enc == RAW:
            await self._read(w * h * bypp)
        elif enc == COPYRECT:
            await self._read(4)
        elif enc == ZRLE or enc == ZLIB:
            (n,) = struct.unpack("!I", await self._read(4))
            await self._read(n)
        elif enc == HEXTILE:
            await self._skip_hextile(w, h, bypp)
        elif enc == DESKTOPSIZE:
            self.width, self.height = w, h
        elif enc == DESKTOPNAME:
            (n,) = struct.unpack("!I", await self._read(4))
            self.name = await self._read(n)
        elif enc == EXTDESKTOPSIZE:
            head = await self._read(4)
            await self._read(16 * head[0])
            self.width, self.height = w, h
        elif enc == CURSOR:
            await self._read(w * h * bypp + ((w + 7) // 8) * h)
        else:
            raise BenchError(f"cannot skip rectangle encoding {enc}")

    async def _skip_hextile(self, w: int, h: int, bypp: int) -> None:
        for ty in range(0, h, 16):
            th = min(16, h - ty)
            for tx in range(0, w, 16):
                tw = min(16, w - tx)
                (mask,) = await self._read(1)
                if mask & 1:
                    await self._read(tw * th * bypp)
                    continue
                n = (bypp if mask & 2 else 0) + (bypp if mask & 4 else 0)
                if n:
                    await self._read(n)
                if mask & 8:
                    (subrects,) = await self._read(1)
                    await self._read(subrects * ((bypp + 2) if mask & 16 else 2))

    def start_pump(self, on_update: Callable[[Update], None] | None = None) -> None:
        """Read server messages in a background task from now on; updates are queued (and
        passed to ``on_update`` first, with their arrival times)."""
        self.on_update = on_update

        async def pump() -> None:
            try:
                while True:
                    msg = await self.read_message()
                    if isinstance(msg, Update):
                        if self.on_update is not None:
                            self.on_update(msg)
                        self.queue.put_nowait(msg)
            except (asyncio.IncompleteReadError, ConnectionError, BenchError) as e:
                self.queue.put_nowait(e)

        self.pump_task = asyncio.get_running_loop().create_task(pump())

    async def next_update(self, timeout: float) -> Update:
        """The next FramebufferUpdate; asyncio.TimeoutError if none within ``timeout``."""
        msg = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(msg, Exception):
            raise BenchError(f"RFB connection ended: {msg!r}")
        assert isinstance(msg, Update)
        return msg

    def pending(self) -> list[Update]:
        """Updates already received and not yet taken."""
        out = []
        while not self.queue.empty():
            msg = self.queue.get_nowait()
            if isinstance(msg, Exception):
                raise BenchError(f"RFB connection ended: {msg!r}")
            assert isinstance(msg, Update)
            out.append(msg)
        return out

    async def drain_updates(self, quiet: float) -> list[Update]:
        """Keep asking for incremental updates until none arrives for ``quiet`` seconds:
        the screen this viewer holds is then current.  One request stays outstanding."""
        got: list[Update] = []
        self.request(incremental=True)
        while True:
            try:
                got.append(await self.next_update(quiet))
            except TimeoutError:
                return got
            self.request(incremental=True)

    async def settle(self, first: float = 2.0, quiet: float = 0.05) -> list[Update]:
        """After something changed on the console: wait up to ``first`` seconds for an
        update, then keep requesting until none comes for ``quiet`` seconds."""
        self.request(incremental=True)
        try:
            got = [await self.next_update(first)]
        except TimeoutError:
            return []
        return got + await self.drain_updates(quiet)

    def close(self) -> None:
        if self.pump_task is not None:
            self.pump_task.cancel()
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001, S110 - closing a dead connection is fine
            pass
