"""``GET /healthz``: 200 when every console's device is up or deliberately absent, 503
with the reasons otherwise.

"Deliberately absent" is a console told that its device may be missing (``wait``:
``--wait-device``, or a console of a config file, whose devices wait by default) whose
device has not been up since vncmux started: a USB adapter not plugged in yet is not a
fault.  Once its device has been up, losing it is one, until it returns.  The verdict is
pure (``verdict``); ``HealthResource`` is its twisted.web face.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from vncmux.web.state import ConsoleStatus, statuses


def verdict(consoles: Sequence[ConsoleStatus]) -> tuple[int, list[str]]:
    """The status code and the lines of the answer: a summary, then one line per console
    (``NAME: up``, ``NAME: waiting for its device ...``, ``NAME: device down: why``)."""
    lines: list[str] = []
    faults = 0
    for c in consoles:
        if c.state == "up":
            lines.append(f"{c.name}: up")
        elif c.optional:
            lines.append(f"{c.name}: waiting for its device, allowed ({c.description})")
        else:
            faults += 1
            lines.append(f"{c.name}: device {c.state}: {c.description}")
    if faults:
        summary = f"unhealthy: {faults} of {len(consoles)} consoles have no device"
        return 503, [summary, *lines]
    return 200, [f"ok: {len(consoles)} consoles", *lines]


class HealthResource(Resource):
    """``/healthz`` over the consoles ``instances()`` returns when asked."""

    isLeaf = True

    def __init__(self, instances: Callable[[], Iterable[Any]]) -> None:
        super().__init__()
        self._instances = instances

    def render_GET(self, request: Request) -> bytes:
        code, lines = verdict(statuses(self._instances()))
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return ("\n".join(lines) + "\n").encode("utf-8")
