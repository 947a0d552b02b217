"""Who did what on one console: the client/event bus.

Every kind of client (VNC and WebSocket viewers, byte sockets, telnet sockets, the HTTP
API) reports here when it attaches, leaves, types or fails to authenticate; the hub
reports the device coming and going; the keyboard lock and BREAK report theirs.  The
consumers are the audit log (``vncmux.audit``) and the recording (``vncmux.record``), and
whatever else wants to know who is on a console.

One ``EventBus`` per console; it hangs off the console's hub (``Hub.events``), which every
client already holds.  The bus is pure: no I/O, time from an ``IReactorTime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface, implementer

log = Logger()

#: Kinds of client.
VNC, WEBSOCKET, SOCKET, TELNET, API, PTY = "vnc", "websocket", "socket", "telnet", "api", "pty"
KINDS = (VNC, WEBSOCKET, SOCKET, TELNET, API, PTY)

#: Credential classes (a VeNCrypt X509Plain viewer's is its user name instead); NONE: a
#: client that failed to authenticate.
FULL, VIEW_ONLY, NONE = "full", "view-only", "none"

#: Every event the bus carries.
START, ATTACH, DETACH, INPUT = "start", "attach", "detach", "input"
DEVICE_UP, DEVICE_DOWN, BREAK = "device-up", "device-down", "break"
LOCK, UNLOCK, TAKEOVER, AUTH_FAILURE = "lock", "unlock", "takeover", "auth-failure"
EVENTS = (
    START,
    ATTACH,
    DETACH,
    INPUT,
    DEVICE_UP,
    DEVICE_DOWN,
    BREAK,
    LOCK,
    UNLOCK,
    TAKEOVER,
    AUTH_FAILURE,
)


@dataclass(frozen=True)
class Client:
    """One client of a console, as the audit log names it.

    ``kind``: one of ``KINDS``; ``peer``: its address as the logs write it ('host:port',
    '[v6]:port', a UNIX path with pid/uid); ``credential``: ``FULL``, ``VIEW_ONLY`` or the
    user name it authenticated as (X509Plain).  Frozen, so it compares by value and can be
    a dict key (the keyboard lock's holder).
    """

    kind: str
    peer: str
    credential: str = FULL
    view_only: bool = False

    @classmethod
    def of(
        cls, kind: str, peer: str, *, view_only: bool = False, user: str | None = None
    ) -> Client:
        """The usual way to make one: the credential follows from ``view_only``/``user``."""
        credential = user if user else (VIEW_ONLY if view_only else FULL)
        return cls(kind, peer, credential, view_only)

    def __str__(self) -> str:
        return f"{self.kind} {self.peer}"

    def asdict(self) -> dict[str, str]:
        """The JSON form: kind, peer, credential."""
        return {"kind": self.kind, "peer": self.peer, "credential": self.credential}


@dataclass(frozen=True)
class Event:
    """One thing that happened on a console.

    ``time``: the clock's seconds (epoch seconds with the real reactor); ``name``: one of
    ``EVENTS``; ``client``: who, when a client did it; ``data``: the input bytes (``input``
    only); ``detail``: free text (the device's description, why a lock ended, how a BREAK
    was sent); ``previous``: for ``takeover``, the client that lost the keyboard.
    """

    time: float
    name: str
    client: Client | None = None
    data: bytes = b""
    detail: str = ""
    previous: Client | None = None


class IEventListener(Interface):
    """A consumer of a console's events (the audit log, the recording)."""

    def event(event: Event) -> None:
        """One event, in the order they happened.  Must not block; exceptions are logged
        by the bus and do not reach the emitter."""


class EventBus:
    """The per-console bus: ``emit`` tells every subscribed listener, in subscribe order.

    Promises: an emitter never sees a listener's exception (it is logged); an unknown event
    name is a programming error (``ValueError``); with no listeners ``emit`` costs a call.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._listeners: list[Any] = []

    @property
    def listening(self) -> bool:
        """True when someone listens (an emitter may skip building costly details)."""
        return bool(self._listeners)

    def subscribe(self, listener: IEventListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener: IEventListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(
        self,
        name: str,
        client: Client | None = None,
        *,
        data: bytes | bytearray = b"",
        detail: str = "",
        previous: Client | None = None,
    ) -> None:
        """Tell every listener that ``name`` happened now (see ``Event``)."""
        if name not in EVENTS:
            raise ValueError(f"unknown console event {name!r}")
        if not self._listeners:
            return
        event = Event(self._clock.seconds(), name, client, bytes(data), detail, previous)
        for listener in list(self._listeners):
            try:
                listener.event(event)
            except Exception:  # noqa: BLE001 -- one listener must not break the console
                log.failure(
                    "Event listener {listener!r} failed on {event}", listener=listener, event=name
                )


@implementer(IEventListener)
class EventRecorder:
    """Keeps every event it hears (tests, and the API's view of recent events)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def event(self, event: Event) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]
