"""Routing entries for websockify's token plugins: one per running console, removed on stop.

A deployment puts one websockify in front of many vncmux hosts; a browser's noVNC asks for
``?token=NAME`` and websockify looks the token up to find the VNC port to connect to.  This
module keeps those entries true while vncmux runs:

- ``--websockify-tokens DIR`` (websockify's ``TokenFile``/``ReadOnlyTokenFile`` reading a
  directory): one file per console, named after its token, holding ``TOKEN: HOST:PORT``.
  Written whole into a temporary file and renamed over the old one, so websockify never
  reads half an entry; the temporary file sits in DIR's parent when that is on the same
  file system and writable (websockify reads every file in DIR, a temporary one too),
  else in DIR.  Removed when the console stops.
- ``--redis URL`` (websockify's ``TokenRedis``): the key TOKEN holds
  ``{"host": "HOST:PORT"}`` with a TTL, set again every third of the TTL while the console
  lives, so a host that dies without a goodbye drops out of routing within the TTL; the
  key is deleted on stop.  Redis is spoken to by a small RESP client on a Twisted endpoint
  (a connection per round, commands pipelined): nothing blocks the reactor, and a Redis
  that is down is logged once and retried at the next round.

The token is ``--token-prefix`` + the console's name; the host is ``--advertise`` or the
address VNC listens on (this host's name when that is every interface).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from vncmux.specs import RedisTarget, TokenSettings

log = Logger()

#: Seconds a Redis round may take before it is abandoned (and retried next round).
REDIS_TIMEOUT = 5.0

Target = tuple[str, int]


class ConsoleInstanceLike(TypingProtocol):
    """What the registrar reads of a running console (``vncmux.service.ConsoleInstance``)."""

    name: str
    vnc_address: tuple[str, int] | None


class SiteLike(TypingProtocol):
    """What the registrar reads of the running site (``vncmux.service.SiteService``)."""

    def instances(self) -> list[Any]: ...


# --------------------------------------------------------------------------------------
# Which entries


_WILDCARDS = ("", "0.0.0.0", "::", "::0")


def advertisedHost(listening: str, advertise: str | None, hostname: Callable[[], str]) -> str:
    """The host websockify should dial for a VNC port bound to ``listening``."""
    if advertise:
        return advertise
    if listening in _WILDCARDS:
        return hostname()
    return listening


def entries(
    instances: Iterable[ConsoleInstanceLike],
    settings: TokenSettings,
    hostname: Callable[[], str] = socket.getfqdn,
) -> dict[str, Target]:
    """token → (host, port) for every console with a TCP VNC port."""
    found: dict[str, Target] = {}
    for instance in instances:
        address = instance.vnc_address
        if address is None:
            continue
        host = advertisedHost(address[0], settings.advertise, hostname)
        found[settings.prefix + instance.name] = (host, int(address[1]))
    return found


def tokenFileLine(token: str, target: Target) -> str:
    """One TokenFile line.  websockify splits the target on its last colon, so an IPv6
    host is written bare."""
    return f"{token}: {target[0]}:{target[1]}\n"


def tokenRedisValue(target: Target) -> str:
    """The TokenRedis value: JSON with the ``host`` key holding ``HOST:PORT``."""
    return json.dumps({"host": f"{target[0]}:{target[1]}"})


# --------------------------------------------------------------------------------------
# TokenFile


class TokenFiles:
    """One file per token in ``directory``, written atomically, removed by ``remove``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, token: str) -> str:
        return os.path.join(self.directory, token)

    def temporaryDirectory(self) -> str:
        """Where a file is written before it is renamed into place: DIR's parent when the
        rename stays on one file system and we may write there, else DIR itself."""
        parent = os.path.dirname(os.path.abspath(self.directory))
        try:
            same = os.stat(parent).st_dev == os.stat(self.directory).st_dev
        except OSError:
            return self.directory
        return parent if same and os.access(parent, os.W_OK | os.X_OK) else self.directory

    def write(self, token: str, target: Target) -> None:
        """Replace the token's file with its line in one step (temporary file + rename)."""
        final = self.path(token)
        name = f".vncmux-token-{token}.{os.getpid()}.tmp"
        temporary = os.path.join(self.temporaryDirectory(), name)
        data = tokenFileLine(token, target).encode("utf-8")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, final)
        except OSError:
            os.unlink(temporary)
            raise

    def remove(self, token: str) -> None:
        try:
            os.unlink(self.path(token))
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------
# RESP: the Redis protocol, as much as SET/EXPIRE/DEL/AUTH/SELECT/GET need


class RedisError(Exception):
    """An error reply (``-ERR ...``) or a broken conversation."""


def encodeCommand(*args: str | bytes | int) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespParser:
    """Incremental RESP reader: ``feed(bytes)`` returns the replies completed so far
    (bytes, int, None, a list, or a ``RedisError`` instance for an error reply)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        replies: list[Any] = []
        while True:
            parsed = self._parse(0)
            if parsed is None:
                return replies
            value, end = parsed
            self._buffer = self._buffer[end:]
            replies.append(value)

    def _line(self, start: int) -> tuple[bytes, int] | None:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            return None
        return self._buffer[start:end], end + 2

    def _parse(self, start: int) -> tuple[Any, int] | None:
        line = self._line(start)
        if line is None:
            return None
        text, after = line
        if not text:
            raise RedisError("empty reply line")
        kind, rest = text[:1], text[1:]
        if kind == b"+":
            return rest, after
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace")), after
        if kind == b":":
            return int(rest), after
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None, after
            if len(self._buffer) < after + size + 2:
                return None
            return self._buffer[after : after + size], after + size + 2
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None, after
            items: list[Any] = []
            position = after
            for _ in range(count):
                parsed = self._parse(position)
                if parsed is None:
                    return None
                item, position = parsed
                items.append(item)
            return items, position
        raise RedisError(f"unknown reply type {kind!r}")


class RespProtocol(Protocol):
    """Sends a batch of commands at once and fires ``done`` with their replies, in order
    (an error reply is a ``RedisError`` in the list), then closes the connection."""

    def __init__(self, commands: list[tuple[str | bytes | int, ...]]) -> None:
        self.commands = commands
        self.parser = RespParser()
        self.replies: list[Any] = []
        self.done: Deferred[list[Any]] = Deferred()

    def connectionMade(self) -> None:
        if not self.commands:
            self._finish(None)
            return
        assert self.transport is not None
        self.transport.write(b"".join(encodeCommand(*c) for c in self.commands))

    def dataReceived(self, data: bytes) -> None:
        try:
            self.replies += self.parser.feed(data)
        except (RedisError, ValueError) as e:
            self._finish(Failure(RedisError(f"unreadable reply: {e}")))
            return
        if len(self.replies) >= len(self.commands):
            self._finish(None)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._finish(Failure(RedisError("connection closed before every reply came")))

    def _finish(self, failure: Failure | None) -> None:
        if self.done.called:
            return
        if failure is None:
            self.done.callback(self.replies[: len(self.commands)])
        else:
            self.done.errback(failure)
        if self.transport is not None:
            self.transport.loseConnection()


def redisEndpoint(target: RedisTarget, reactor: Any) -> Any:
    return HostnameEndpoint(reactor, target.host, target.port, timeout=REDIS_TIMEOUT)


def loginCommands(target: RedisTarget) -> list[tuple[str | bytes | int, ...]]:
    """AUTH and SELECT, as the URL asks, to put before a round's commands."""
    commands: list[tuple[str | bytes | int, ...]] = []
    if target.password is not None:
        if target.username:
            commands.append(("AUTH", target.username, target.password))
        else:
            commands.append(("AUTH", target.password))
    if target.db:
        commands.append(("SELECT", target.db))
    return commands


def redisRound(
    endpoint: Any, reactor: Any, commands: list[tuple[str | bytes | int, ...]]
) -> Deferred[list[Any]]:
    """Connect, send ``commands``, collect one reply each; fails on any error reply, a
    broken connection or ``REDIS_TIMEOUT``."""
    protocol = RespProtocol(commands)

    def connected(_: Any) -> Deferred[list[Any]]:
        return protocol.done

    def checked(replies: list[Any]) -> list[Any]:
        for reply in replies:
            if isinstance(reply, RedisError):
                raise reply
        return replies

    d: Deferred[Any] = connectProtocol(endpoint, protocol)
    d.addCallback(connected)
    d.addTimeout(REDIS_TIMEOUT, reactor)
    d.addErrback(_abortOnFailure, protocol)
    d.addCallback(checked)
    return d


def _abortOnFailure(failure: Failure, protocol: RespProtocol) -> Failure:
    transport: Any = protocol.transport
    if transport is not None:
        transport.abortConnection()
    return failure


# --------------------------------------------------------------------------------------
# The service


class TokenRegistrar(Service):
    """Keeps the routing entries of ``site``'s running consoles in a token directory and/or
    Redis, from start to stop.

    Rounds run at start, every ``ttl / 3`` seconds, and whenever ``refresh()`` is called
    (the site calls it when consoles come and go).  Files are rewritten only when their
    entry changed; Redis keys are set again every round (that renews their TTL and puts
    them back after a Redis restart).  ``stopService`` removes every entry it made and
    returns when Redis has answered (or ``REDIS_TIMEOUT`` passed)."""

    def __init__(
        self,
        site: SiteLike,
        settings: TokenSettings,
        reactor: Any,
        *,
        hostname: Callable[[], str] = socket.getfqdn,
        endpoint: Any = None,
    ) -> None:
        self.setName("websockify-tokens")
        self.site = site
        self.settings = settings
        self.reactor = reactor
        self.hostname = hostname
        self.files = TokenFiles(settings.directory) if settings.directory else None
        self.redis = settings.redis
        self.endpoint = endpoint
        if self.redis is not None and endpoint is None:
            self.endpoint = redisEndpoint(self.redis, reactor)
        self.written: dict[str, Target] = {}  # token files on disk
        self.inRedis: dict[str, Target] = {}  # keys set (as far as we know)
        self.redisUp: bool | None = None
        self._warnedIpv6 = False
        self._round: Deferred[Any] | None = None
        self._again = False
        self._loop: LoopingCall | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- life

    def startService(self) -> None:
        Service.startService(self)
        subscribe = getattr(self.site, "subscribe", None)
        if subscribe is not None:
            self._unsubscribe = subscribe(
                lambda _instance: self.refresh(), lambda _instance: self.refresh()
            )
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self.reactor
        self._loop.start(max(1.0, self.settings.ttl / 3), now=True)

    def stopService(self) -> Deferred[Any]:
        Service.stopService(self)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for token in list(self.written):
            self._removeFile(token)
        if self.redis is None or not self.inRedis:
            return succeed(None)
        tokens = list(self.inRedis)
        login = loginCommands(self.redis)
        pending = self._round if self._round is not None else succeed(None)

        def deleteAll(_: Any) -> Deferred[Any]:
            d = redisRound(self.endpoint, self.reactor, [*login, ("DEL", *tokens)])
            d.addCallbacks(lambda _: self._deleted(tokens), self._redisFailed)
            return d

        pending.addBoth(lambda _: None)
        return pending.addCallback(deleteAll)

    # -- rounds

    def current(self) -> dict[str, Target]:
        return entries(self.site.instances(), self.settings, self.hostname)

    def refresh(self) -> None:
        """Bring the entries in line with the running consoles (now, or after the round in
        flight)."""
        if not self.running:
            return
        wanted = self.current()
        if self.files is not None:
            self._syncFiles(wanted)
        if self.redis is not None:
            if self._round is not None:
                self._again = True
                return
            self._redisRound(wanted)

    def _syncFiles(self, wanted: Mapping[str, Target]) -> None:
        assert self.files is not None
        for token in [t for t in self.written if t not in wanted]:
            self._removeFile(token)
        for token, target in wanted.items():
            if self.written.get(token) == target:
                continue
            try:
                self.files.write(token, target)
            except OSError as e:
                log.error(
                    "websockify tokens: cannot write {path}: {error}",
                    path=self.files.path(token),
                    error=e.strerror,
                )
                continue
            self.written[token] = target
            log.info(
                "websockify tokens: {token} -> {host}:{port} in {path}",
                token=token,
                host=target[0],
                port=target[1],
                path=self.files.path(token),
            )

    def _removeFile(self, token: str) -> None:
        assert self.files is not None
        try:
            self.files.remove(token)
        except OSError as e:
            log.error(
                "websockify tokens: cannot remove {path}: {error}",
                path=self.files.path(token),
                error=e.strerror,
            )
        self.written.pop(token, None)

    def _redisRound(self, wanted: Mapping[str, Target]) -> None:
        assert self.redis is not None
        unroutable = sorted(t for t, (host, _port) in wanted.items() if ":" in host)
        if unroutable and not self._warnedIpv6:
            self._warnedIpv6 = True
            log.warn(
                "websockify tokens: {tokens} advertise an IPv6 address, which websockify's "
                "TokenRedis cannot parse; give --advertise a host name",
                tokens=", ".join(unroutable),
            )
        gone = [t for t in self.inRedis if t not in wanted]
        commands = loginCommands(self.redis)
        for token, target in wanted.items():
            commands.append(("SET", token, tokenRedisValue(target), "EX", self.settings.ttl))
        if gone:
            commands.append(("DEL", *gone))
        if len(commands) == len(loginCommands(self.redis)):
            return
        d = redisRound(self.endpoint, self.reactor, commands)
        self._round = d
        d.addCallbacks(lambda _: self._redisDone(dict(wanted), gone), self._redisFailed)
        d.addBoth(self._roundOver)

    def _redisDone(self, wanted: dict[str, Target], gone: list[str]) -> None:
        assert self.redis is not None
        if self.redisUp is not True:
            log.info(
                "websockify tokens: {count} registered in {redis} (TTL {ttl} s)",
                count=len(wanted),
                redis=self.redis.label,
                ttl=self.settings.ttl,
            )
        elif wanted != self.inRedis:
            log.info(
                "websockify tokens: {tokens} now registered in {redis}",
                tokens=", ".join(sorted(wanted)) or "none",
                redis=self.redis.label,
            )
        self.redisUp = True
        self.inRedis = wanted

    def _deleted(self, tokens: list[str]) -> None:
        for token in tokens:
            self.inRedis.pop(token, None)
        assert self.redis is not None
        log.info(
            "websockify tokens: {tokens} removed from {redis}",
            tokens=", ".join(sorted(tokens)),
            redis=self.redis.label,
        )

    def _redisFailed(self, failure: Failure) -> None:
        assert self.redis is not None
        if self.redisUp is not False:
            log.error(
                "websockify tokens: Redis at {redis} unreachable ({error}); retrying every "
                "{every:.0f} s",
                redis=self.redis.label,
                error=failure.getErrorMessage() or failure.type.__name__,
                every=max(1.0, self.settings.ttl / 3),
            )
        self.redisUp = False

    def _roundOver(self, _: Any) -> None:
        self._round = None
        if self._again and self.running:
            self._again = False
            self.refresh()
