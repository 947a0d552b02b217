"""Waiting on a condition with a deadline: the only way tests synchronise with processes.

A timeout raises ``WaitTimeout`` (an ``AssertionError``, so pytest reports it as a failed
assertion) with a message that may be computed only then, e.g. a process's whole log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
    interval: float = 0.01,
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes
    (``WaitTimeout`` with ``message``; a callable message is evaluated only then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"after {timeout}s: {text}")
        time.sleep(interval)
