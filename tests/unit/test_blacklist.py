"""Who counts as one host (``host_key``), and the authentication blacklist built on it."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import Clock
from twisted.logger import capturedLogs, formatEvent

from vncmux.rfb.blacklist import INITIAL, THRESHOLD, Blacklist, host_key


def addr(host: str, port: int = 40000) -> Any:
    if ":" in host:
        return IPv6Address("TCP", host, port)
    return IPv4Address("TCP", host, port)


@pytest.mark.parametrize(
    "host, key",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("10.1.2.3", "10.1.2.3"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback6"),
        ("::ffff:127.0.0.9", "loopback"),  # IPv4-mapped: as the IPv4 address
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),  # the zone is not part of the address
    ],
)
def test_host_key(host: str, key: str) -> None:
    assert host_key(addr(host)) == key


def test_unix_peers_are_one_host() -> None:
    assert host_key(UNIXAddress(b"/tmp/a")) == host_key(UNIXAddress(None)) == "unix"


def fail(blacklist: Blacklist, host: str, times: int = THRESHOLD) -> None:
    for i in range(times):
        blacklist.failed(addr(host, 40000 + i))


@pytest.mark.parametrize(
    "failing, other",
    [
        ("127.0.0.1", "127.0.0.2"),  # the guesses of 127.0.0.2-41 went through before
        ("127.0.0.1", "127.200.0.1"),
        ("127.0.0.1", "::ffff:127.0.0.9"),
        ("2001:db8::1", "2001:db8::2"),
        ("2001:db8::1", "2001:db8::ffff:1"),
        ("192.0.2.7", "::ffff:192.0.2.7"),
    ],
)
def test_a_blocked_host_is_blocked_from_every_address_it_has(failing: str, other: str) -> None:
    blacklist = Blacklist(Clock())
    fail(blacklist, failing)
    assert blacklist.blockedFor(addr(other)) == INITIAL


@pytest.mark.parametrize(
    "failing, other",
    [
        ("192.0.2.7", "192.0.2.8"),
        ("2001:db8:0:1::1", "2001:db8:0:2::1"),
        ("127.0.0.1", "10.0.0.1"),
        ("127.0.0.1", "::1"),  # IPv6 loopback counts apart: see host_key
    ],
)
def test_other_hosts_are_not_blocked(failing: str, other: str) -> None:
    blacklist = Blacklist(Clock())
    fail(blacklist, failing)
    assert blacklist.blockedFor(addr(other)) == 0


def test_failures_from_several_addresses_of_one_host_add_up() -> None:
    blacklist = Blacklist(Clock())
    for i in range(THRESHOLD - 1):
        blacklist.failed(addr(f"127.0.0.{i + 2}"))
        assert blacklist.blockedFor(addr("127.0.0.1")) == 0
    blacklist.failed(addr("127.0.0.40"))
    assert blacklist.blockedFor(addr("127.0.0.1")) == INITIAL


def test_block_doubles_expires_and_success_forgets() -> None:
    clock = Clock()
    blacklist = Blacklist(clock)
    fail(blacklist, "192.0.2.7")
    clock.advance(INITIAL)
    assert blacklist.blockedFor(addr("192.0.2.7")) == 0
    fail(blacklist, "192.0.2.7", 1)
    assert blacklist.blockedFor(addr("192.0.2.7")) == 2 * INITIAL
    blacklist.succeeded(addr("192.0.2.7"))
    assert blacklist.blockedFor(addr("192.0.2.7")) == 0
    fail(blacklist, "192.0.2.7", THRESHOLD - 1)
    assert blacklist.blockedFor(addr("192.0.2.7")) == 0  # counting from zero again


def test_the_log_line_names_the_address_and_the_host_it_counts_as() -> None:
    blacklist = Blacklist(Clock())
    with capturedLogs() as events:
        fail(blacklist, "127.0.0.3")
        fail(blacklist, "192.0.2.7")
    lines = [formatEvent(e) for e in events]
    assert lines == [
        "VNC: 5 authentication failures from 127.0.0.3; blocked for 10 s "
        "(with every address of loopback)",
        "VNC: 5 authentication failures from 192.0.2.7; blocked for 10 s",
    ]


def test_memory_is_bounded_and_blocked_hosts_are_kept_longest() -> None:
    clock = Clock()
    blacklist = Blacklist(clock, max_hosts=8)
    fail(blacklist, "192.0.2.1")  # blocked
    for i in range(100):
        blacklist.failed(addr(f"10.0.{i // 250}.{i % 250}"))
        assert len(blacklist) <= 8
    assert blacklist.blockedFor(addr("192.0.2.1")) == INITIAL
    assert blacklist.blockedFor(addr("10.0.0.99")) == 0
    # all blocked: the least recently failed goes
    full = Blacklist(clock, max_hosts=2)
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        fail(full, host)
    assert len(full) == 2 and full.blockedFor(addr("192.0.2.1")) == 0
    assert full.blockedFor(addr("192.0.2.3")) == INITIAL
