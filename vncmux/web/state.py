"""What the web pages, the health check and the metrics say about one console, as data.

Pure: ``console_status`` reads a running console instance (``vncmux.service``'s
``ConsoleInstance``: ``name``, ``config``, ``hub``, ``device``, ``console``, ``vnc_factory``,
``api``) and returns a frozen ``ConsoleStatus``; nothing here listens, renders or writes.
The instance is read through attributes only, so tests hand in plain fakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from vncmux.api.status import backend_kinds

DeviceState = Literal["up", "reconnecting", "down"]

#: Hub backends that are vncmux's own machinery, not clients.
INTERNAL_BACKENDS = frozenset({"history", "console"})


@dataclass(frozen=True)
class ConsoleStatus:
    """One console as the web entry shows it.

    ``public``: the console's screen is open to whoever reaches its VNC port (a VNC server
    without password or users); only then does the index show more than the name and the
    state, and serve a thumbnail.  ``optional``: the console was told its device may be
    absent (``wait``) and the device has not been up since start, so the health check
    does not count it as a fault (see ``vncmux.web.health``)."""

    name: str
    device: str
    state: DeviceState
    description: str
    since: float
    connects: int
    last_output: float | None
    clients: dict[str, int] = field(default_factory=dict)
    public: bool = False
    viewer: bool = False
    api: bool = False
    optional: bool = False

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


def device_state(instance: Any) -> DeviceState:
    """``up``, ``reconnecting`` (lost after having been up; the device service retries) or
    ``down`` (not opened since start, or not retrying)."""
    state = getattr(instance, "deviceState", None)
    if state in ("up", "reconnecting", "down"):
        return state  # type: ignore[no-any-return]
    hub = instance.hub
    if hub.device is not None:
        return "up"
    running = bool(getattr(instance.device, "running", False))
    return "reconnecting" if running and hub.deviceConnects > 0 else "down"


def is_public(factory: Any) -> bool:
    """True when ``factory`` (an RFBFactory, or None) lets anyone who connects see the
    screen: no VNC password, no view-only password, no users file."""
    if factory is None:
        return False
    security = factory.security
    return security.password is None and security.view_password is None and security.users is None


def viewer_kinds(factory: Any) -> dict[str, int]:
    """Viewers past their handshake, by transport: ``vnc`` (TCP, UNIX) or ``websocket``."""
    counts: dict[str, int] = {}
    if factory is None:
        return counts
    for proto in factory.live():
        if getattr(proto.state, "name", "") != "NORMAL":
            continue
        kind = "websocket" if type(proto.transport).__name__ == "_WebSocketTransport" else "vnc"
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def client_kinds(instance: Any) -> dict[str, int]:
    """Everyone attached to the console, by kind: byte sockets, ptys, log files (hub
    backends), VNC and WebSocket viewers, API output streams."""
    counts = {
        kind: n
        for kind, n in backend_kinds(instance.hub.backends).items()
        if kind not in INTERNAL_BACKENDS
    }
    counts.update(viewer_kinds(getattr(instance, "vnc_factory", None)))
    api_service = getattr(instance, "api", None)
    if api_service is not None:
        counts["api_stream"] = len(api_service.api.followers)
    return counts


def console_status(instance: Any) -> ConsoleStatus:
    """A snapshot of ``instance`` (see the module docstring)."""
    hub = instance.hub
    config = instance.config
    factory = getattr(instance, "vnc_factory", None)
    state = device_state(instance)
    wait = bool(getattr(config.device, "wait", False))
    api_service = getattr(instance, "api", None)
    return ConsoleStatus(
        name=instance.name,
        device=config.device.label,
        state=state,
        description=hub.deviceDescription,
        since=hub.deviceSince,
        connects=hub.deviceConnects,
        last_output=getattr(hub, "lastOutput", None),
        clients=client_kinds(instance),
        public=is_public(factory),
        viewer=factory is not None and getattr(instance, "console", None) is not None,
        api=api_service is not None and not api_service.api.tokens.open,
        optional=wait and hub.deviceConnects == 0,
    )


def statuses(instances: Iterable[Any]) -> list[ConsoleStatus]:
    return [console_status(i) for i in instances]
