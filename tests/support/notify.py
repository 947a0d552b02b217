"""A stand-in for systemd's notify socket: a datagram socket the test reads."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def notify_listener(path: str, timeout: float) -> Iterator[socket.socket]:
    """A datagram socket bound at ``path`` (what ``NOTIFY_SOCKET`` names), closed after."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(timeout)
    try:
        yield sock
    finally:
        sock.close()


def receive_state(sock: socket.socket) -> dict[str, str]:
    """One notification as its ``KEY=value`` lines."""
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if line)
