"""Who counts as one host, and per-host blocking after repeated authentication failures.

``host_key`` turns a peer address into the key every per-host limit uses (this blacklist
and the factory's pending-handshake eviction): an IPv4 address is itself, an IPv6 address
counts by its /64 (one subscriber's network: its owner picks any of 2^64 addresses at will),
an IPv4-mapped IPv6 address as the IPv4 one, all of loopback (127.0.0.0/8 and ::1) as one
host, and UNIX peers as one host.  Without that, one machine could try its guesses from
127.0.0.2, 127.0.0.3, ... or from every address of its /64, each with a fresh count.

The blacklist works as TigerVNC's: five failures from one host block it for 10 s; every
further failure doubles the block; while blocked, even the right password is refused (the
server checks before it checks the password).  A success forgets the host.  At most
``MAX_HOSTS`` hosts are remembered, so a flood of failures from many addresses costs bounded
memory.  Pure: time comes from an ``IReactorTime``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.logger import Logger

THRESHOLD = 5
INITIAL = 10.0
# Hosts remembered at once; past it the least recently failed host that is not blocked now
# is forgotten first (then the least recently failed of all).
MAX_HOSTS = 4096
# Every IPv6 address within one of these counts as the same host.
IPV6_PREFIX = 64

LOOPBACK = "loopback"
LOOPBACK6 = "loopback6"  # ::1: a second key for the same machine (see host_key)
UNIX = "unix"

log = Logger()


def host_key(address: Any) -> str:
    """The host ``address`` (an ``IAddress``) counts as, for every per-host limit.

    ``'loopback'`` for 127.0.0.0/8 and its IPv4-mapped form, ``'loopback6'`` for ::1 (kept
    apart so that a local user on one stack is not locked out by a local flood on the
    other; a local attacker gains one extra count, not one per address); ``'unix'`` for a UNIX
    peer (or anything without a host); ``'2001:db8:1:2::/64'`` for an IPv6 address; the
    address itself for IPv4 (and for a host that is not an IP address)."""
    host = getattr(address, "host", None)
    if host is None:
        return UNIX
    text = str(host).split("%", 1)[0]  # a link-local address's zone is not part of it
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return str(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK if isinstance(ip, ipaddress.IPv4Address) else LOOPBACK6
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))


def peer_host(address: Any) -> str:
    """The address's host as it is, for log lines ('local' for a UNIX peer)."""
    return str(getattr(address, "host", "local"))


class Blacklist:
    """Failure counts and block deadlines per host (see ``host_key``)."""

    def __init__(
        self,
        clock: Any,
        threshold: int = THRESHOLD,
        initial: float = INITIAL,
        max_hosts: int = MAX_HOSTS,
        what: str = "VNC",
    ) -> None:
        self.clock = clock
        self.what = what  # the log lines' subject: "VNC", "API"
        self.threshold = threshold
        self.initial = initial
        self.max_hosts = max_hosts
        # key → (count, until, wait), least recently failed first
        self._hosts: dict[str, tuple[int, float, float]] = {}

    def __len__(self) -> int:
        return len(self._hosts)

    def blockedFor(self, address: Any) -> float:
        """Seconds ``address``'s host must still wait before trying again (0 = may try)."""
        entry = self._hosts.get(host_key(address))
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self.clock.seconds())

    def failed(self, address: Any) -> None:
        key = host_key(address)
        count, _until, wait = self._hosts.pop(key, (0, 0.0, 0.0))
        count += 1
        until = 0.0
        if count >= self.threshold:
            wait = self.initial if wait == 0 else wait * 2
            until = self.clock.seconds() + wait
            where = peer_host(address)
            log.warn(
                "{what}: {count} authentication failures from {host}; blocked for {wait:g} s{scope}",
                what=self.what,
                count=count,
                host=where,
                wait=wait,
                scope="" if key == where else f" (with every address of {key})",
            )
        if len(self._hosts) >= self.max_hosts:
            self._forgetOne()
        self._hosts[key] = (count, until, wait)  # (re-)inserted: now the most recent

    def succeeded(self, address: Any) -> None:
        self._hosts.pop(host_key(address), None)

    def _forgetOne(self) -> None:
        """Make room: drop the least recently failed host that is not blocked now (else the
        least recently failed of all)."""
        now = self.clock.seconds()
        victim = next((k for k, e in self._hosts.items() if e[1] <= now), None)
        if victim is None:
            victim = next(iter(self._hosts))
        del self._hosts[victim]
