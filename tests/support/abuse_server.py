"""One vncmux for a whole module of hostile-client tests, with survivors to check after each
case: a viewer and a byte client connected before the abuse must still work."""

from __future__ import annotations

import os
import random
import re
import socket
from pathlib import Path

from tests.support.net import connect_unix, free_tcp_port, recv_exactly
from tests.support.pty_device import Pty, read_fd_until
from tests.support.rfbkit import ZRLE, Viewer
from tests.support.vncmux_process import VncmuxProcess, start_vncmux

STALL = 2.0  # --stall-timeout: a client not reading is dropped after this many seconds


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc/PID/status."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1))


class Server:
    """A module's vncmux, its device, a survivor viewer and (unless ``byte_client`` is
    False, for tests that open their own) a survivor byte client."""

    byte_client: socket.socket

    def __init__(self, workdir: Path, stall: float = STALL, byte_client: bool = True) -> None:
        self.pty = Pty()
        self.port = free_tcp_port()
        self.sock_path = Path(f"/tmp/vmx-abuse-{os.getpid()}-{self.port}.sock")
        self.proc: VncmuxProcess = start_vncmux(
            [
                "--device",
                self.pty.path,
                "--vnc",
                f"127.0.0.1:{self.port - 5900}",
                "--socket",
                f"unix:{self.sock_path}",
                "--stall-timeout",
                str(stall),
            ],
            workdir,
        )
        try:
            self.proc.wait_for_log(r"VNC server listening", timeout=30)
            self.proc.wait_for_log(r"Device .* opened", timeout=30)
            if byte_client:
                self.byte_client = connect_unix(self.sock_path)
            self.viewer = Viewer(self.port).handshake()
            self.viewer.set_encodings(ZRLE, 0)
            self.viewer.alive()
        except BaseException:
            self.proc.stop()  # a fixture that fails here gets no teardown: stop it now
            self.pty.close()
            raise
        self.rng = random.Random(5)
        self.checks = 0

    def device_write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.pty.master, view) :]

    def check_survivors(self) -> None:
        """The server runs; the old viewer gets a full update; the byte client gets exactly
        what the device wrote and its input reaches the device; a new viewer connects."""
        assert self.proc.returncode is None, self.proc.describe()
        self.checks += 1
        chunk = (
            bytes(self.rng.randrange(32, 127) for _ in range(4096)) + f"#{self.checks}\r\n".encode()
        )
        self.device_write(chunk)
        assert recv_exactly(self.byte_client, len(chunk), 10) == chunk
        marker = f"<in{self.checks}>".encode()
        self.byte_client.sendall(marker)
        read_fd_until(self.pty.master, marker, 10)
        self.viewer.alive()
        fresh = Viewer(self.port).handshake()
        fresh.set_encodings(ZRLE)
        fresh.alive()
        fresh.close()

    def close(self) -> None:
        self.viewer.close()
        if hasattr(self, "byte_client"):
            self.byte_client.close()
        self.proc.stop()
        self.pty.close()
        self.sock_path.unlink(missing_ok=True)
