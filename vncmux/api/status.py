"""``GET /status``: the device's state and the counters worth watching, as plain data.

Pure: reads what the hub, the console and the history expose.  Backends are counted by
kind from their class (``StreamBackend`` → ``socket``, ``VirtualConsole`` → ``console``
...), so a new kind of backend shows up under its class name until it is named here.
"""

from __future__ import annotations

from typing import Any

from vncmux.keyboard import describe

#: Backend class name → the kind /status reports.
BACKEND_KINDS = {
    "StreamBackend": "socket",
    "LogFileBackend": "logfile",
    "PtyBackend": "pty",
    "VirtualConsole": "console",
    "HistoryBackend": "history",
}


def backend_kinds(backends: Any) -> dict[str, int]:
    """How many backends of each kind are attached to the hub."""
    counts: dict[str, int] = {}
    for backend in backends:
        name = type(backend).__name__
        kind = BACKEND_KINDS.get(name, name)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def status(
    hub: Any,
    now: float,
    console: Any = None,
    history: Any = None,
    api: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Everything ``GET /status`` answers.  Times are Unix seconds; ``for`` is how long the
    device has been in its current state; ``reconnects`` counts openings after the first."""
    clients: dict[str, Any] = {"backends": backend_kinds(hub.backends)}
    if console is not None:
        clients["vnc_viewers"] = console.viewers
    clients.update(api or {})
    state: dict[str, Any] = {
        "device": {
            "up": hub.device is not None,
            "description": hub.deviceDescription,
            "since": hub.deviceSince,
            "for": max(0.0, now - hub.deviceSince),
            "connects": hub.deviceConnects,
            "reconnects": max(0, hub.deviceConnects - 1),
            "paused": bool(hub.paused),
        },
        "clients": clients,
        "bytes": {
            "out": hub.outputBytes,
            "in": hub.inputBytes,
            "input_dropped": hub.droppedInput,
        },
    }
    lock = hub.keyboard
    state["keyboard"] = {
        "policy": lock.policy,
        "holder": describe(lock.holder) if lock.holder is not None else None,
        "refused": lock.refused,
        "dropped": lock.dropped,
    }
    if history is not None:
        state["history"] = {"start": history.start, "end": history.end, "size": history.size}
    if console is not None:
        state["console"] = {"cols": console.cols, "rows": console.rows, "title": console.name}
    return state
