"""SIGHUP, shared: one signal handler, any number of callbacks run in the reactor thread.

Several parts of vncmux act on SIGHUP (the audit log reopens its file for logrotate, the
site reloads its configuration); a process has one SIGHUP handler, so they all register
here with ``onSighup`` instead of calling ``signal.signal`` themselves.  The handler only
schedules the callbacks with ``reactor.callFromThread`` (safe from a signal handler, and it
wakes the reactor); they run later, one after the other, in registration order, and one
that raises is logged without stopping the others.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

log = Logger()

_callbacks: list[Callable[[], object]] = []
_installed: dict[str, Any] = {}


def onSighup(callback: Callable[[], object], reactor: Any = None) -> Callable[[], None]:
    """Run ``callback()`` in the reactor on every SIGHUP from now on; returns the function
    that stops it (call it when the service that registered stops).  The first registration
    installs the handler (``reactor``: the one to wake, the global reactor by default)."""
    if "reactor" not in _installed:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        _installed["reactor"] = reactor
        _installed["previous"] = signal.signal(signal.SIGHUP, _handler)
    _callbacks.append(callback)

    def cancel() -> None:
        if callback in _callbacks:
            _callbacks.remove(callback)

    return cancel


def _handler(signum: int, frame: Any) -> None:
    _installed["reactor"].callFromThread(runCallbacks)


def runCallbacks() -> None:
    """What a SIGHUP does, in the reactor thread (tests call it directly)."""
    log.info("SIGHUP: {count} handler(s)", count=len(_callbacks))
    for callback in list(_callbacks):
        try:
            callback()
        except Exception:  # noqa: BLE001 -- one part's failure must not stop the others
            log.failure("SIGHUP handler {callback!r} failed", callback=callback)
