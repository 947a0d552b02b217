"""Who has the keyboard: one console's input policy (``--input-policy``).

Under the *shared* policy (the default, QEMU's hub) every client's input is merged, as it
always was.  Under the *exclusive* policy the first client to type holds the keyboard
until it has been idle for ``--lock-idle`` seconds or leaves; input from the others is
dropped (counted, logged once per client and holder) and the watchers hear of it, so a
viewer can be shown why.  Any full-control client may take the keyboard over explicitly
(Ctrl+Alt+T in a VNC viewer, ``POST /api/v1/takeover``, the telnet escape below).

``KeyboardLock`` is pure: time from an ``IReactorTime``, changes reported on the console's
event bus (``lock``, ``unlock``, ``takeover``) and to watchers (the status line).  It hangs
off the hub (``Hub.keyboard``), and ``Hub.input`` asks it about every client's input.

``TakeoverEscape`` finds the telnet takeover escape in what a telnet client typed.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from vncmux.events import API, LOCK, TAKEOVER, UNLOCK, Client, EventBus

log = Logger()

SHARED, EXCLUSIVE = "shared", "exclusive"
POLICIES = (SHARED, EXCLUSIVE)
#: Seconds without input after which the holder loses the keyboard (``--lock-idle``).
DEFAULT_IDLE = 30.0

#: Why a holder lost the keyboard (the ``unlock`` event's detail).
IDLE, LEFT, POLICY = "idle", "left", "policy"


class KeyboardWatcher(Protocol):
    """What the lock tells its watchers (the console's status line)."""

    def keyboardChanged(self) -> None:
        """The holder or the policy changed (read ``holder``/``exclusive``)."""

    def inputRefused(self, client: Client) -> None:
        """Input from ``client`` was just dropped: someone else holds the keyboard."""

    def takenOver(self, client: Client, previous: Client | None) -> None:
        """``client`` took the keyboard from ``previous`` (None: nobody held it)."""


def host_of(peer: str) -> str:
    """'127.0.0.1:5555' → '127.0.0.1', '[::1]:5555' → '[::1]'; anything else as it is."""
    if peer.startswith("["):
        end = peer.find("]")
        return peer[: end + 1] if end > 0 else peer
    host, sep, port = peer.rpartition(":")
    return host if sep and host and port.isdigit() else peer


def describe(client: Client) -> str:
    """How the status line and the logs name a holder: kind and address.  An API client is
    named by its host alone (each HTTP request may come on a new connection)."""
    if client.kind == API:
        return f"{client.kind} {host_of(client.peer)}"
    return str(client)


def _identity(client: Client) -> tuple[str, str, str]:
    """What makes two clients the same typist.  A viewer or socket is its connection; an
    API client is its host and credential, since its requests come on new connections."""
    if client.kind == API:
        return (client.kind, host_of(client.peer), client.credential)
    return (client.kind, client.peer, client.credential)


class KeyboardLock:
    """One console's keyboard (see the module docstring).

    Promises: under the shared policy ``allow`` is always True and nothing else happens;
    under the exclusive policy, ``allow`` is True only for the holder (a first typist
    becomes the holder: ``lock``), the holder loses the keyboard ``idle`` seconds after its
    last allowed input (``unlock``, detail ``idle``) or when it is ``release``d (``left``);
    ``takeover`` by a full-control client always makes it the holder (``takeover``, with
    the previous holder); a view-only client never holds the keyboard; every refusal is
    counted (``refused`` chunks, ``dropped`` bytes), logged once per client and holder, and
    told to the watchers.
    """

    def __init__(
        self,
        clock: IReactorTime,
        events: EventBus | None = None,
        *,
        exclusive: bool = False,
        idle: float = DEFAULT_IDLE,
    ) -> None:
        self._clock = clock
        self._events = events
        self.exclusive = exclusive
        self.idle = idle
        self.holder: Client | None = None
        self._holderId: tuple[str, str, str] | None = None
        self._last = 0.0
        self._timer: IDelayedCall | None = None
        self._watchers: list[KeyboardWatcher] = []
        self._logged: set[tuple[str, str, str]] = set()
        self.refused = 0
        self.dropped = 0

    @property
    def policy(self) -> str:
        return EXCLUSIVE if self.exclusive else SHARED

    def configure(self, *, exclusive: bool, idle: float = DEFAULT_IDLE) -> None:
        """Set the policy (at start, or on a reload); leaving the exclusive policy frees
        the keyboard."""
        self.idle = idle
        if exclusive == self.exclusive:
            return
        self.exclusive = exclusive
        if exclusive:
            log.info(
                "Keyboard: exclusive input policy: the first to type holds it until idle "
                "for {idle}s or gone",
                idle=idle,
            )
        elif self.holder is not None:
            self._free(POLICY)
        self._tell("keyboardChanged")

    # -- watchers ------------------------------------------------------------------------

    def watch(self, watcher: KeyboardWatcher) -> None:
        if watcher not in self._watchers:
            self._watchers.append(watcher)

    def unwatch(self, watcher: KeyboardWatcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def _tell(self, what: str, *args: object) -> None:
        for watcher in list(self._watchers):
            try:
                getattr(watcher, what)(*args)
            except Exception:  # noqa: BLE001 -- a watcher must not stop the input path
                log.failure("Keyboard watcher {watcher!r} failed", watcher=watcher)

    # -- the input path ------------------------------------------------------------------

    def permits(self, client: Client) -> bool:
        """Would ``client``'s input pass now?  (No side effects: for a clear answer to
        an API client before it sends.)"""
        if not self.exclusive:
            return True
        if client.view_only:
            return False
        return self.holder is None or _identity(client) == self._holderId

    def allow(self, client: Client, size: int = 0) -> bool:
        """``client`` sends ``size`` bytes of input: may they go to the device?  The first
        typist takes a free keyboard; the holder's input keeps it."""
        if not self.exclusive:
            return True
        if self.holder is None and not client.view_only:
            self._take(client)
            self._emit(LOCK, client)
            log.info("Keyboard: {client} holds it now", client=describe(client))
            self._tell("keyboardChanged")
            return True
        if self.holder is not None and _identity(client) == self._holderId:
            self._last = self._clock.seconds()
            return True
        self._refuse(client, size)
        return False

    def _refuse(self, client: Client, size: int) -> None:
        self.refused += 1
        self.dropped += size
        key = _identity(client)
        if key not in self._logged:
            self._logged.add(key)
            log.info(
                "Keyboard: input from {client} dropped (and counted): {holder} holds the "
                "keyboard (exclusive input policy)",
                client=describe(client),
                holder=describe(self.holder) if self.holder is not None else "nobody",
            )
        self._tell("inputRefused", client)

    # -- explicit changes ------------------------------------------------------------------

    def takeover(self, client: Client) -> bool:
        """``client`` takes the keyboard, whoever held it.  False (nothing done) under the
        shared policy, for a view-only client, or when it already holds it."""
        if not self.exclusive:
            log.info(
                "Keyboard: {client} asked to take over; the input policy is shared",
                client=describe(client),
            )
            return False
        if client.view_only:
            log.info("Keyboard: {client} is view-only: no takeover", client=describe(client))
            return False
        if self.holder is not None and _identity(client) == self._holderId:
            self._last = self._clock.seconds()
            return False
        previous = self.holder
        self._take(client)
        self._emit(TAKEOVER, client, previous=previous)
        log.info(
            "Keyboard: {client} took it over from {previous}",
            client=describe(client),
            previous=describe(previous) if previous is not None else "nobody",
        )
        self._tell("takenOver", client, previous)
        self._tell("keyboardChanged")
        return True

    def release(self, client: Client) -> None:
        """``client`` left: if it held the keyboard, the keyboard is free."""
        if self.holder is not None and _identity(client) == self._holderId:
            self._free(LEFT)
            self._tell("keyboardChanged")

    # -- holding -----------------------------------------------------------------------------

    def _take(self, client: Client) -> None:
        self.holder = client
        self._holderId = _identity(client)
        self._logged.clear()  # a new holder: refusals are worth a line again
        self._last = self._clock.seconds()
        if self._timer is None or not self._timer.active():
            self._timer = self._clock.callLater(self.idle, self._expire)

    def _expire(self) -> None:
        """The idle timer: re-armed for what remains while the holder keeps typing (one
        timer per idle period, not one reset per key)."""
        self._timer = None
        if self.holder is None:
            return
        left = self._last + self.idle - self._clock.seconds()
        if left > 0:
            self._timer = self._clock.callLater(left, self._expire)
            return
        log.info(
            "Keyboard: {client} idle for {idle}s: the keyboard is free",
            client=describe(self.holder),
            idle=self.idle,
        )
        self._free(IDLE)
        self._tell("keyboardChanged")

    def _free(self, why: str) -> None:
        holder, self.holder, self._holderId = self.holder, None, None
        self._logged.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if holder is not None:
            self._emit(UNLOCK, holder, detail=why)

    def _emit(
        self, name: str, client: Client, *, detail: str = "", previous: Client | None = None
    ) -> None:
        if self._events is not None:
            self._events.emit(name, client, detail=detail, previous=previous)

    def stop(self) -> None:
        """Cancel the idle timer (the console is going away)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


#: The telnet takeover escape: Ctrl+E c f (conserver's "force attach read-write").
TELNET_TAKEOVER = b"\x05cf"


class TakeoverEscape:
    """Finds ``TELNET_TAKEOVER`` in what a telnet client typed, across reads.

    ``feed(data)`` returns the bytes to pass on, with every complete escape removed, and
    whether an escape was seen.  Bytes that might begin the escape are held until the next
    byte shows whether they do (as conserver holds its ^E); when they do not, they are
    passed on unchanged, in order.
    """

    def __init__(self, escape: bytes = TELNET_TAKEOVER) -> None:
        self.escape = escape
        self._held = b""

    @property
    def held(self) -> bytes:
        """Bytes kept back for now (a possible start of the escape)."""
        return self._held

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        seen = False
        esc = self.escape
        held = self._held
        for byte in data:
            held += bytes((byte,))
            if held == esc:
                seen = True
                held = b""
            elif not esc.startswith(held):
                # Not the escape: pass on the first held byte and look again at the rest
                # (the escape may start inside what was held, e.g. ^E ^E c f).
                while held and not esc.startswith(held):
                    out += held[:1]
                    held = held[1:]
        self._held = held
        return bytes(out), seen
