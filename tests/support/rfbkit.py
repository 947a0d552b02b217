"""A small blocking RFB viewer for tests against a real vncmux.

Deliberately independent of vncmux's own code where it speaks the protocol (the client
side is written from the spec), so a bug in the server cannot be mirrored here.  The
exception is ``vnc_auth_response`` (DES with bit-reversed keys; vncdotool's client does
the same).  TLS material for VeNCrypt is in ``tests.support.tls_files``.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

from tests.support.net import recv_exactly
from tests.support.waiting import WaitTimeout
from vncmux.rfb.auth import vnc_auth_response

ZRLE = 16
RAW = 0


class RFBError(AssertionError):
    """The server answered something other than what the test expected."""


class Viewer:
    """One blocking RFB connection: handshake helpers and whole-update reads."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", timeout: float = 10.0, source: str = ""
    ) -> None:
        # ``source``: the local address to connect from (any of 127.0.0.0/8 is local on Linux)
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        # Without this, a message the server does not answer (SetEncodings) followed by one
        # it does waits for a delayed ACK (Nagle): 40 ms per cycle.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.width = self.height = 0
        self.name = b""

    # -- raw io --

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        return recv_exactly(self.sock, n, self.timeout)  # type: ignore[arg-type]

    def u8(self) -> int:
        return self.recv(1)[0]

    def u32(self) -> int:
        return int(struct.unpack("!I", self.recv(4))[0])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- handshake --

    def version(self, line: bytes = b"RFB 003.008\n") -> bytes:
        server = self.recv(12)
        if not server.startswith(b"RFB "):
            raise RFBError(f"not an RFB server: {server!r}")
        self.send(line)
        return server

    def security_types(self) -> list[int]:
        count = self.u8()
        if count == 0:
            raise RFBError(f"refused: {self.recv(self.u32())!r}")
        return list(self.recv(count))

    def security_result(self) -> None:
        result = self.u32()
        if result != 0:
            raise RFBError(f"security result {result}: {self.recv(self.u32())!r}")

    def vnc_auth(self, password: bytes) -> None:
        challenge = self.recv(16)
        self.send(vnc_auth_response(challenge, password))

    def client_init(self, shared: int = 1) -> None:
        self.send(bytes([shared]))
        self.width, self.height = struct.unpack("!HH", self.recv(4))
        self.recv(16)  # pixel format
        self.name = self.recv(self.u32())

    def handshake(self, password: bytes | None = None) -> Viewer:
        """3.8 handshake with None or VNC auth, through ServerInit."""
        self.version()
        types = self.security_types()
        want = 2 if password is not None else 1
        if want not in types:
            raise RFBError(f"security type {want} not offered: {types}")
        self.send(bytes([want]))
        if password is not None:
            self.vnc_auth(password)
        self.security_result()
        self.client_init()
        return self

    def vencrypt(self, subtype: int, context: ssl.SSLContext) -> list[int]:
        """VeNCrypt after the type list: version, subtype, then TLS on this socket.
        Returns the subtypes the server offered."""
        self.send(bytes([19]))
        major, minor = self.recv(2)
        if (major, minor) != (0, 2):
            raise RFBError(f"VeNCrypt version {major}.{minor}")
        self.send(b"\x00\x02")
        if self.u8() != 0:
            raise RFBError("VeNCrypt version refused")
        count = self.u8()
        offered = [int(struct.unpack("!I", self.recv(4))[0]) for _ in range(count)]
        self.send(struct.pack("!I", subtype))
        ack = self.u8()
        if ack != 1:
            raise RFBError(f"VeNCrypt subtype {subtype} refused (ack {ack}); offered {offered}")
        assert isinstance(self.sock, socket.socket)
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        return offered

    # -- normal protocol --

    def set_encodings(self, *numbers: int) -> None:
        self.send(struct.pack(f"!BxH{len(numbers)}i", 2, len(numbers), *numbers))

    def request(self, incremental: int = 0, x: int = 0, y: int = 0, w: int = 0, h: int = 0) -> None:
        w = w or self.width
        h = h or self.height
        self.send(struct.pack("!BBHHHH", 3, incremental, x, y, w, h))

    def key(self, keysym: int) -> None:
        self.send(struct.pack("!BBxxI", 4, 1, keysym) + struct.pack("!BBxxI", 4, 0, keysym))

    def read_update(self) -> list[tuple[int, int, int, int, int]]:
        """Skip server messages until one FramebufferUpdate; its rectangles (x, y, w, h, enc).
        Understands Raw (32 bpp), ZRLE, CopyRect and the size pseudo-encodings."""
        while True:
            mtype = self.u8()
            if mtype == 0:
                break
            if mtype == 2:  # bell
                continue
            if mtype == 3:  # cut text / extended clipboard
                self.recv(3)
                length = self.u32()
                self.recv(length if length < 0x80000000 else (1 << 32) - length)
                continue
            if mtype == 248:  # fence
                self.recv(7)
                self.recv(self.u8())
                continue
            if mtype == 1:  # colour map
                self.recv(3)
                self.recv(6 * int(struct.unpack("!H", self.recv(2))[0]))
                continue
            raise RFBError(f"unexpected server message {mtype}")
        self.recv(1)
        (count,) = struct.unpack("!H", self.recv(2))
        rects = []
        for _ in range(count):
            x, y, w, h, enc = struct.unpack("!HHHHi", self.recv(12))
            if enc == RAW:
                self.recv(w * h * 4)
            elif enc == ZRLE:
                self.recv(self.u32())
            elif enc == 1:
                self.recv(4)
            elif enc == -308:  # ExtendedDesktopSize
                screens = self.u8()
                self.recv(3 + 16 * screens)
            elif enc == -307:
                pass
            else:
                raise RFBError(f"unexpected encoding {enc}")
            rects.append((x, y, w, h, enc))
        return rects

    def alive(self) -> None:
        """A full non-incremental update arrives: the session works."""
        self.request(0)
        rects = self.read_update()
        if not rects:
            raise RFBError("empty answer to a non-incremental request")


def wait_closed(sock: socket.socket | ssl.SSLSocket, timeout: float) -> None:
    """Wait until the server closed ``sock`` (reading and discarding whatever it sent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 20):
                return
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return
    raise WaitTimeout(f"server did not close the connection within {timeout}s")
