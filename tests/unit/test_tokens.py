"""websockify routing entries (vncmux.tokens): which entries, the TokenFile files (atomic,
removed on stop), the RESP client, and the registrar's Redis rounds against a fake Redis
(TTL renewed, Redis down logged and retried, entries deleted on stop); the option parsing
(vncmux.token_opts)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from vncmux.errors import ConfigError
from vncmux.specs import RedisTarget, TokenSettings
from vncmux.token_opts import build_tokens, parse_redis_url
from vncmux.tokens import (
    RedisError,
    RespParser,
    RespProtocol,
    TokenFiles,
    TokenRegistrar,
    encodeCommand,
    entries,
    tokenFileLine,
    tokenRedisValue,
)


@dataclass
class Instance:
    name: str
    vnc_address: tuple[str, int] | None


class Site:
    def __init__(self, *instances: Instance) -> None:
        self.running = list(instances)
        self.listeners: list[Any] = []

    def instances(self) -> list[Instance]:
        return list(self.running)

    def subscribe(self, added: Any, removed: Any) -> Any:
        self.listeners.append((added, removed))
        return lambda: self.listeners.remove((added, removed))


# --------------------------------------------------------------------------------------
# entries and formats


def test_entries_prefix_advertise_and_wildcards() -> None:
    site = [Instance("a", ("127.0.0.1", 5901)), Instance("b", ("0.0.0.0", 5902))]
    site.append(Instance("c", None))  # no TCP VNC port: no entry
    plain = entries(site, TokenSettings(directory="/d"), hostname=lambda: "host1.lab")
    assert plain == {"a": ("127.0.0.1", 5901), "b": ("host1.lab", 5902)}
    named = entries(site, TokenSettings(directory="/d", prefix="rack2-", advertise="10.0.0.5"))
    assert named == {"rack2-a": ("10.0.0.5", 5901), "rack2-b": ("10.0.0.5", 5902)}


def test_formats_are_websockifys() -> None:
    assert tokenFileLine("a", ("10.0.0.1", 5901)) == "a: 10.0.0.1:5901\n"
    assert tokenFileLine("a", ("::1", 5901)) == "a: ::1:5901\n"  # rsplit(':', 1) reads it
    assert json.loads(tokenRedisValue(("h", 5900))) == {"host": "h:5900"}


# --------------------------------------------------------------------------------------
# TokenFile


def test_token_file_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir()
    files = TokenFiles(str(directory))
    files.write("a", ("h", 1))
    renames: list[tuple[str, str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        # at the moment of the rename the final file still holds the old, whole line
        renames.append((src, dst, Path(dst).read_text()))
        assert Path(src).read_text() == "a: h:2\n"
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    files.write("a", ("h", 2))
    assert renames == [(renames[0][0], str(directory / "a"), "a: h:1\n")]
    # written beside the directory websockify reads (same file system: rename is atomic)
    assert Path(renames[0][0]).parent == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens"]  # no temporary left
    assert sorted(p.name for p in directory.iterdir()) == ["a"]
    assert (directory / "a").read_text() == "a: h:2\n"
    files.remove("a")
    files.remove("a")  # gone already: fine
    assert list(directory.iterdir()) == []


def test_token_file_temporary_in_the_directory_when_the_parent_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: p != str(tmp_path) and real_access(p, m))
    files = TokenFiles(str(directory))
    assert files.temporaryDirectory() == str(directory)
    files.write("a", ("h", 1))
    assert sorted(p.name for p in directory.iterdir()) == ["a"]


def test_registrar_files_follow_the_consoles(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    site = Site(Instance("a", ("127.0.0.1", 5901)), Instance("b", ("127.0.0.1", 5902)))
    registrar = TokenRegistrar(site, TokenSettings(directory=str(tmp_path)), reactor)
    registrar.startService()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a": "a: 127.0.0.1:5901\n",
        "b": "b: 127.0.0.1:5902\n",
    }
    site.running.pop(0)  # console a removed on reload
    site.running.append(Instance("c", ("127.0.0.1", 5903)))
    added, _removed = site.listeners[0]
    added(site.running[-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]
    registrar.stopService()
    assert list(tmp_path.iterdir()) == []
    assert site.listeners == []


def test_registrar_unwritable_directory_is_logged(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    missing = tmp_path / "missing"
    registrar = TokenRegistrar(
        Site(Instance("a", ("h", 1))), TokenSettings(directory=str(missing)), reactor
    )
    registrar.startService()  # does not raise
    assert registrar.written == {}
    missing.mkdir()
    reactor.advance(10)  # the next round writes it
    assert (missing / "a").read_text() == "a: h:1\n"
    registrar.stopService()


# --------------------------------------------------------------------------------------
# RESP


def test_encode_and_parse() -> None:
    assert encodeCommand("SET", "k", 5) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
    parser = RespParser()
    wire = b"+OK\r\n-ERR no\r\n:3\r\n$5\r\nhel"
    replies = parser.feed(wire)
    assert replies[0] == b"OK" and replies[2] == 3
    assert isinstance(replies[1], RedisError) and str(replies[1]) == "ERR no"
    assert parser.feed(b"lo\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n") == [b"hello", None, [b"a", 1]]
    assert RespParser().feed(encodeCommand("GET", "x")) == [[b"GET", b"x"]]


def test_protocol_collects_one_reply_per_command() -> None:
    protocol = RespProtocol([("SET", "a", "1"), ("DEL", "b")])
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value() == encodeCommand("SET", "a", "1") + encodeCommand("DEL", "b")
    results: list[Any] = []
    protocol.done.addCallback(results.append)
    protocol.dataReceived(b"+OK\r\n")
    assert results == []
    protocol.dataReceived(b":1\r\n")
    assert results == [[b"OK", 1]]
    assert transport.disconnecting


def test_protocol_fails_when_the_connection_drops() -> None:
    protocol = RespProtocol([("SET", "a", "1")])
    protocol.makeConnection(StringTransport())
    failures: list[Failure] = []
    protocol.done.addErrback(failures.append)
    protocol.connectionLost(None)
    assert failures and failures[0].check(RedisError)


# --------------------------------------------------------------------------------------
# the registrar against a fake Redis


class FakeRedis:
    """Executes what a RespProtocol sends (AUTH, SELECT, SET ... EX, DEL, GET) on a dict;
    ``down`` makes connections fail."""

    def __init__(self, password: str | None = None) -> None:
        self.data: dict[bytes, tuple[bytes, int | None]] = {}
        self.password = password
        self.down = False
        self.commands: list[list[bytes]] = []

    def execute(self, command: list[bytes], state: dict[str, bool]) -> bytes:
        self.commands.append(command)
        name = command[0].upper()
        if name == b"AUTH":
            state["auth"] = command[-1].decode() == self.password
            return b"+OK\r\n" if state["auth"] else b"-WRONGPASS\r\n"
        if self.password is not None and not state.get("auth"):
            return b"-NOAUTH Authentication required.\r\n"
        if name == b"SELECT":
            return b"+OK\r\n"
        if name == b"SET":
            ttl = int(command[4]) if len(command) > 4 and command[3].upper() == b"EX" else None
            self.data[command[1]] = (command[2], ttl)
            return b"+OK\r\n"
        if name == b"DEL":
            gone = [k for k in command[1:] if self.data.pop(k, None) is not None]
            return b":%d\r\n" % len(gone)
        return b"-ERR unknown command\r\n"


class FakeEndpoint:
    """Connects a RespProtocol straight to a FakeRedis (or refuses, when it is down)."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    def connect(self, factory: Any) -> Deferred[Any]:
        if self.redis.down:
            return fail(ConnectionRefusedError())
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        state: dict[str, bool] = {}
        replies = b"".join(
            self.redis.execute(c, state) for c in RespParser().feed(transport.value())
        )
        protocol.dataReceived(replies)
        return succeed(protocol)


def registrarWith(
    redis: FakeRedis, site: Site, target: RedisTarget | None = None
) -> tuple[TokenRegistrar, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    settings = TokenSettings(redis=target or RedisTarget("r"), prefix="lab-", ttl=30)
    registrar = TokenRegistrar(site, settings, reactor, endpoint=FakeEndpoint(redis))
    return registrar, reactor


def test_redis_set_with_ttl_renewed_and_deleted_on_stop() -> None:
    redis = FakeRedis()
    site = Site(Instance("a", ("10.0.0.1", 5901)))
    registrar, reactor = registrarWith(redis, site)
    registrar.startService()
    assert redis.data == {b"lab-a": (b'{"host": "10.0.0.1:5901"}', 30)}
    redis.data.clear()  # as if it expired, or Redis restarted empty
    reactor.advance(10)  # a third of the TTL: set again
    assert b"lab-a" in redis.data
    stopped: list[Any] = []
    registrar.stopService().addBoth(stopped.append)
    assert stopped and not isinstance(stopped[0], Failure)
    assert redis.data == {}
    assert redis.commands[-1] == [b"DEL", b"lab-a"]


def test_redis_removed_console_is_deleted() -> None:
    redis = FakeRedis()
    site = Site(Instance("a", ("h", 1)), Instance("b", ("h", 2)))
    registrar, reactor = registrarWith(redis, site)
    registrar.startService()
    assert set(redis.data) == {b"lab-a", b"lab-b"}
    site.running.pop()
    registrar.refresh()
    assert set(redis.data) == {b"lab-a"}
    registrar.stopService()


def test_redis_auth_and_database() -> None:
    redis = FakeRedis(password="s3cret")
    site = Site(Instance("a", ("h", 1)))
    registrar, _ = registrarWith(redis, site, parse_redis_url("redis://:s3cret@r:6379/3"))
    registrar.startService()
    assert redis.commands[:2] == [[b"AUTH", b"s3cret"], [b"SELECT", b"3"]]
    assert b"lab-a" in redis.data
    registrar.stopService()


def test_redis_down_is_logged_once_and_retried() -> None:
    from twisted.logger import LogLevel, globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        redis = FakeRedis()
        redis.down = True
        registrar, reactor = registrarWith(redis, Site(Instance("a", ("h", 1))))
        registrar.startService()
        reactor.advance(10)
        reactor.advance(10)
        errors = [e for e in events if e.get("log_level") == LogLevel.error]
        assert len(errors) == 1 and "unreachable" in errors[0]["log_format"]
        assert registrar.redisUp is False
        redis.down = False
        reactor.advance(10)
        assert b"lab-a" in redis.data and registrar.redisUp is True
        registrar.stopService()
        assert redis.data == {}
    finally:
        globalLogPublisher.removeObserver(events.append)


def test_redis_wrong_password_counts_as_down() -> None:
    redis = FakeRedis(password="right")
    registrar, _ = registrarWith(
        redis, Site(Instance("a", ("h", 1))), parse_redis_url("redis://:wrong@r")
    )
    registrar.startService()
    assert registrar.redisUp is False and redis.data == {}
    registrar.stopService()


# --------------------------------------------------------------------------------------
# options


def test_parse_redis_url() -> None:
    assert parse_redis_url("redis://r") == RedisTarget("r", 6379, 0)
    assert parse_redis_url("redis://u:p@10.1.1.1:6380/2") == RedisTarget(
        "10.1.1.1", 6380, 2, "u", "p"
    )
    for bad in ("http://r", "redis://", "redis://r:0", "redis://r/x"):
        with pytest.raises(ConfigError, match="--redis"):
            parse_redis_url(bad)


def test_build_tokens_errors() -> None:
    assert not build_tokens(None, None, None, None).enabled
    assert build_tokens("/d", None, "lab-", "gw.example").prefix == "lab-"
    with pytest.raises(ConfigError, match="--token-prefix"):
        build_tokens("/d", None, "bad prefix", None)
    with pytest.raises(ConfigError, match="--advertise"):
        build_tokens("/d", None, None, "::1")
    with pytest.raises(ConfigError, match="need --websockify-tokens"):
        build_tokens(None, None, "lab-", None)
