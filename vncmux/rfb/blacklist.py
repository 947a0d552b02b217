"""Per-host blocking after repeated authentication failures, as TigerVNC does it.

Five failures from one host block it for 10 s; every further failure doubles the block;
while blocked, even the right password is refused (the server checks before it checks the
password).  A success forgets the host.  Pure: time comes from an ``IReactorTime``.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

THRESHOLD = 5
INITIAL = 10.0

log = Logger()


class Blacklist:
    """Failure counts and block deadlines per host (UNIX peers count as one host)."""

    def __init__(self, clock: Any, threshold: int = THRESHOLD, initial: float = INITIAL) -> None:
        self.clock = clock
        self.threshold = threshold
        self.initial = initial
        self._hosts: dict[str, tuple[int, float, float]] = {}  # host → (count, until, wait)

    @staticmethod
    def host(address: Any) -> str:
        return str(getattr(address, "host", "local"))

    def blockedFor(self, address: Any) -> float:
        """Seconds ``address``'s host must still wait before trying again (0 = may try)."""
        entry = self._hosts.get(self.host(address))
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self.clock.seconds())

    def failed(self, address: Any) -> None:
        host = self.host(address)
        count, _until, wait = self._hosts.get(host, (0, 0.0, 0.0))
        count += 1
        until = 0.0
        if count >= self.threshold:
            wait = self.initial if wait == 0 else wait * 2
            until = self.clock.seconds() + wait
            log.warn(
                "VNC: {count} authentication failures from {host}; blocked for {wait:g} s",
                count=count,
                host=host,
                wait=wait,
            )
        self._hosts[host] = (count, until, wait)

    def succeeded(self, address: Any) -> None:
        self._hosts.pop(self.host(address), None)
