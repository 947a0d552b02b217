"""Listening on a Twisted server endpoint string at once, with one-line errors.

Byte sockets (``--socket``), the API (``--api``) and the web entry (``--web``) bind while
their service is built, before
twistd starts anything, so a bad endpoint or a port in use stops start-up with a
``ConfigError`` that names the option, instead of a traceback after the daemon is up.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.python.failure import Failure

from vncmux.errors import ConfigError


def listenNow(
    reactor: Any, endpoint: str, factory: Any, option: str = "", shown: str | None = None
) -> Any:
    """Listen on ``endpoint`` with ``factory`` and return the listening port; the endpoint
    must listen synchronously (TCP, UNIX and systemd ones do).  Every failure is a
    ``ConfigError`` naming ``option`` (e.g. ``--api``; none for ``--socket``, whose
    endpoints are named alone) and the endpoint as the user wrote it (``shown``, when
    vncmux added to it)."""
    where = shown or endpoint
    if option:
        where = f"{option} {where}"
    try:
        server = serverFromString(reactor, endpoint)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{where}: {e}") from e
    results: list[Any] = []
    server.listen(factory).addBoth(results.append)
    if not results:
        raise ConfigError(f"{where}: the endpoint does not listen at once")
    if isinstance(results[0], Failure):
        raise ConfigError(f"cannot listen on {where}: {_why(results[0])}")
    return results[0]


def _why(reason: Failure) -> str:
    """The cause in a few words: the OS's lower-cased ``strerror`` where there is one."""
    exc = reason.value
    err = getattr(exc, "socketError", None) if isinstance(exc, CannotListenError) else exc
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno).lower()
    return str(exc) or type(exc).__name__


__all__ = ["listenNow"]
