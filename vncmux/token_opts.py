"""``--websockify-tokens``, ``--redis``, ``--token-prefix``, ``--advertise`` → a
``TokenSettings`` (``vncmux.tokens`` keeps the entries).  Pure, like ``vncmux.config``,
which re-exports ``build_tokens`` and ``parse_redis_url``."""

from __future__ import annotations

import re

from vncmux.errors import ConfigError
from vncmux.qemu_opts import parse_int, parse_port
from vncmux.specs import RedisTarget, TokenSettings

_REDIS_URL = re.compile(
    r"redis://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/@\[\]]+)(?::(?P<port>\d+))?(?:/(?P<db>\d*))?"
)
_ADVERTISE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*|[0-9.]+")


def parse_redis_url(value: str) -> RedisTarget:
    """``--redis redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`` (port 6379, db 0 by default)."""
    match = _REDIS_URL.fullmatch(value.strip())
    if match is None:
        raise ConfigError(
            f"--redis {value}: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], "
            "e.g. redis://127.0.0.1:6379/0"
        )
    host = match["host"].strip("[]")
    port = parse_port(f"--redis {value} port", match["port"]) if match["port"] else 6379
    db = parse_int(f"--redis {value} database", match["db"], 0) if match["db"] else 0
    return RedisTarget(
        host=host,
        port=port,
        db=db,
        username=match["user"] or None,
        password=match["password"] or None,
    )


def build_tokens(
    directory: str | None,
    redis: str | None,
    prefix: str | None,
    advertise: str | None,
) -> TokenSettings:
    """``--websockify-tokens``, ``--redis``, ``--token-prefix``, ``--advertise``.  The
    token is prefix + console name, so the prefix follows the name's rules; the advertised
    host is a host name or IPv4 address (websockify's TokenRedis splits its value on the one
    colon, so an IPv6 literal cannot be routed)."""
    if directory is not None and not directory.strip():
        raise ConfigError("--websockify-tokens: needs a directory")
    target = parse_redis_url(redis) if redis is not None else None
    prefix = prefix or ""
    if prefix and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", prefix):
        raise ConfigError(
            f"--token-prefix {prefix!r}: letters, digits, '_', '.' or '-' (at most 64)"
        )
    if advertise is not None and not _ADVERTISE.fullmatch(advertise):
        raise ConfigError(
            f"--advertise {advertise!r}: a host name or IPv4 address that websockify can "
            "reach (no port, no IPv6 literal: websockify's token formats cannot carry one)"
        )
    if (prefix or advertise is not None) and directory is None and target is None:
        raise ConfigError("--token-prefix/--advertise need --websockify-tokens DIR or --redis URL")
    return TokenSettings(directory=directory, redis=target, prefix=prefix, advertise=advertise)
