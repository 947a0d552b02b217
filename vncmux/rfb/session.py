"""One viewer's RFB session: the glue between the transport, the protocol units and a console.

``RFBServerProtocol`` walks explicit states (VERSION → SECURITY → CLIENTINIT → NORMAL, and
CLOSED), buffers what the client sends and hands whole units to whoever owns the current
state: the version line and the choice of security type here, the chosen type's
``ISecurity`` object (``vncmux.rfb.security``), the ClientInit flag here, then the
``MessageReader`` (``vncmux.rfb.reader``) for the normal phase.  It writes only through
``vncmux.rfb.writer``'s layouts, asks the ``UpdateScheduler`` (``vncmux.rfb.updates``) what
an update must hold and the ``EncodeManager`` (``vncmux.rfb.encode_manager``) to encode it.

The session does no terminal work: on entering the normal phase it attaches to the
console (``IConsole.attach``) and passes keys, pointer events and clipboard text to the
``IViewerSession`` it gets back, which maps them (and drops them for a view-only viewer).
A SetDesktopSize goes to the console too, and its answers and every new size go out as
``vncmux.rfb.resize`` says.

Updates are pulled: a parked FramebufferUpdateRequest asks the console to say when this
viewer's damage accumulator holds something (``updateAvailable``).  Nothing is sent while
the transport is paused, so a viewer that stops reading costs at most one update of buffer,
and is dropped after ``stall_timeout`` seconds or past ``max_output`` bytes queued.

A close always finishes: the session stops being the transport's producer (Twisted's TLS
layer does not start its close while one is registered), and a connection still open
``close_grace`` seconds later (its peer reads nothing, or ignores the TLS close) is
aborted.  A closed viewer no longer counts against ``connections=`` or the handshakes.

Promises: never sends a FramebufferUpdate that was not requested; pad bytes are zero; never
allocates what a client merely declares; any protocol error closes this viewer only, with a
log line naming the peer, and the connection is gone within ``close_grace`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from time import perf_counter
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.interfaces import IViewer, IViewerSession
from vncmux.events import ATTACH, AUTH_FAILURE, DETACH, NONE, VNC, Client
from vncmux.rfb import writer
from vncmux.rfb.blacklist import host_key
from vncmux.rfb.encode_manager import Capabilities, EncodeManager
from vncmux.rfb.handshake import VERSION_SIZE, Step, choice_step, version_step
from vncmux.rfb.pixels import NATIVE, PixelFormat, colour_map_entries
from vncmux.rfb.reader import (
    CLIP_CAPS,
    CLIP_NOTIFY,
    CLIP_PROVIDE,
    CLIP_REQUEST,
    CLIP_TEXT,
    IMessageHandler,
    MessageReader,
    ProtocolError,
)
from vncmux.rfb.resize import SizeAnswers, size_rects
from vncmux.rfb.security import ISecurity, ISecuritySession
from vncmux.rfb.updates import UpdateScheduler

if TYPE_CHECKING:
    from vncmux.rfb.factory import RFBFactory

log = Logger()

_FENCE_FLAGS_KNOWN = 0x7  # BlockBefore | BlockAfter | SyncNext
_FENCE_REQUEST = 1 << 31


class State(Enum):
    VERSION = "version"
    SECURITY = "security"  # choosing a type, then the type's own exchange
    CLIENTINIT = "clientinit"
    NORMAL = "normal"
    CLOSED = "closed"


def peer_label(address: Any) -> str:
    """A short printable peer address for log lines: 'host:port' or 'unix:path'."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return f"unix:{name.decode() if isinstance(name, bytes) else name or '?'}"
    return str(address)


@implementer(IViewer, IPushProducer, IMessageHandler, ISecuritySession)
class RFBServerProtocol(Protocol):
    """One viewer's RFB session (see the module docstring)."""

    factory: RFBFactory
    transport: Any  # ITransport + IConsumer (+ abortConnection); Any: no mypy-zope here

    def __init__(self, factory: RFBFactory) -> None:
        self.factory = factory
        self.console = factory.console
        self._clock = factory.clock
        self.state = State.VERSION
        self.version: tuple[int, int] = (3, 8)
        self.peer = "?"
        self.host = "?"  # the host key (``blacklist.host_key``) of every per-host limit
        self.shared = True
        self.exclusive = False
        self._buf = bytearray()
        self._offered: tuple[int, ...] = ()
        self.security: ISecurity | None = None
        self._failing = False  # authentication failed: the answer is on its way
        self._tls_then: Callable[[], None] | None = None
        self._tls = False
        self._handshake_timer: Any = None  # IDelayedCall
        self._stall_timer: Any = None
        self._fail_timer: Any = None
        self._close_timer: Any = None
        self._producing = False  # registered as the transport's producer
        self.view_only = False
        self.user: str | None = None
        self._paused = False
        self._backlog = 0  # bytes written while the transport was paused
        self.reader = MessageReader(self, factory.max_cut_text)
        # the normal phase
        self.session: IViewerSession | None = None
        self.damage: Damage | None = None
        self.updates: UpdateScheduler | None = None
        self.sizes: SizeAnswers | None = None
        self.encoders: EncodeManager | None = None
        self.fmt: PixelFormat = NATIVE
        self._effective: PixelFormat = NATIVE
        self.encodings: tuple[int, ...] = ()
        self.caps = Capabilities()
        self._clip_caps_sent = False
        self.updates_sent = 0

    # -- connection ----------------------------------------------------------------------

    def connectionMade(self) -> None:
        address = self.transport.getPeer()
        self.peer = peer_label(address)
        self.host = host_key(address)
        self.reader.peer = self.peer
        if not self.factory.admit(self):
            self.state = State.CLOSED
            self._finish(abort=False)
            return
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)  # small updates and bells go out at once
        self.transport.registerProducer(self, True)
        self._producing = True
        self.factory.limitPending(self)
        self._handshake_timer = self._clock.callLater(
            self.factory.handshake_timeout, self._handshakeTimeout
        )
        log.info("VNC connection from {peer}", peer=self.peer)
        self.transport.write(writer.SERVER_VERSION)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        was = self.state
        self.state = State.CLOSED
        self._producing = False
        self._buf = bytearray()
        self.reader.clear()
        self._cancelTimers()
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        self._close_timer = None
        if self.session is not None:
            self.session.detach()
            self.session = None
            self.damage = None
            self.console.events.emit(DETACH, self._client())
        if self.encoders is not None:
            self.encoders.close()  # frees per-connection zlib streams now
        if self.factory.forget(self):
            log.info(
                "VNC viewer {peer} disconnected (state {state}{why})",
                peer=self.peer,
                state=self._stateLabel(was),
                why="" if was in (State.NORMAL, State.CLOSED) else f": {reason.getErrorMessage()}",
            )

    def _stateLabel(self, state: State) -> str:
        """The state for log lines, down to the security exchange's own stage."""
        if state is State.SECURITY:
            if self._failing:
                return "auth-failed"
            if self.security is not None:
                return str(self.security.stage)
        return state.value

    def close(self, why: str, *, abort: bool = False) -> None:
        """Log ``why`` with the peer and close (after what was written, unless ``abort``).

        The viewer stops counting as one at once; the connection is aborted if it is still
        open ``close_grace`` seconds later."""
        if self.state is State.CLOSED:
            return
        log.info("VNC viewer {peer}: {why}; closing", peer=self.peer, why=why)
        self.state = State.CLOSED
        self._cancelTimers()
        self._finish(abort)

    def _finish(self, abort: bool) -> None:
        """Close the transport, and make sure the close finishes."""
        if self._producing:
            # With a producer registered, TLS never sends its close and TCP, once the
            # buffer drains, resumes the producer instead of closing.
            self._producing = False
            self.transport.unregisterProducer()
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()
        if self._close_timer is None:
            self._close_timer = self._clock.callLater(self.factory.close_grace, self._overdue)

    def _overdue(self) -> None:
        """The close did not finish in time (the peer reads nothing, or ignores TLS's)."""
        self._close_timer = None
        log.info(
            "VNC viewer {peer}: connection still open {grace:g} s after closing; aborting",
            peer=self.peer,
            grace=self.factory.close_grace,
        )
        self.transport.abortConnection()

    def _cancelTimers(self) -> None:
        """Stop the handshake, stall and failure-delay timers (not the close's own)."""
        for timer in (self._handshake_timer, self._stall_timer, self._fail_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._handshake_timer = self._stall_timer = self._fail_timer = None

    def _handshakeTimeout(self) -> None:
        self._handshake_timer = None
        if self.state not in (State.NORMAL, State.CLOSED):
            self.close(
                f"handshake not finished in {self.factory.handshake_timeout:g} s", abort=True
            )

    # -- flow control (IPushProducer: the transport tells us when its buffer is full) ---

    def pauseProducing(self) -> None:
        self._paused = True
        if self.session is not None:
            self.session.cancelRequest()  # resumeProducing asks again
        if (
            self._stall_timer is None
            and self.factory.stall_timeout > 0
            and self.state is not State.CLOSED
        ):
            self._stall_timer = self._clock.callLater(self.factory.stall_timeout, self._stalled)

    def resumeProducing(self) -> None:
        self._paused = False
        self._backlog = 0
        if self._stall_timer is not None:
            if self._stall_timer.active():
                self._stall_timer.cancel()
            self._stall_timer = None
        self._pull()

    def stopProducing(self) -> None:
        self._paused = True

    def _stalled(self) -> None:
        self._stall_timer = None
        if self.state is not State.CLOSED:
            self.factory.stats.stalled += 1
            self.close(
                f"not reading for {self.factory.stall_timeout:g} s (output buffer full)", abort=True
            )

    def _out(self, data: bytes) -> None:
        """Write to the viewer, counting what piles up while its transport is full; past
        ``max_output`` the viewer is dropped instead of buffered without bound."""
        if self.state is State.CLOSED:
            return
        if self._paused:
            self._backlog += len(data)
            if self._backlog > self.factory.max_output:
                self.factory.stats.stalled += 1
                self.close(
                    f"not reading: over {self.factory.max_output} bytes of output queued",
                    abort=True,
                )
                return
        self.transport.write(data)

    # -- input ---------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        buf = self._buf
        buf += data
        pos = 0
        try:
            while pos < len(buf) and self.state is not State.CLOSED and self._tls_then is None:
                try:
                    used = self._step(buf, pos, len(buf) - pos)
                except ProtocolError as e:
                    self.close(str(e))
                    used = 0
                if used == 0:
                    break
                pos += used
        finally:
            if self.state is State.CLOSED:
                self._buf = bytearray()
            else:
                del buf[:pos]
        if self._tls_then is not None and self.state is not State.CLOSED:
            self._startTLS()

    def _step(self, buf: bytearray, pos: int, avail: int) -> int:
        """Hand one whole unit at ``pos`` to the current state's owner; the bytes used,
        or 0 to wait for more."""
        state = self.state
        if state is State.NORMAL:
            return self.reader.read(buf, pos, avail)
        if state is State.SECURITY:
            if self._failing:
                return avail  # the answer is on its way; whatever comes meanwhile is dropped
            if self.security is None:
                return self._securityChoice(buf[pos])
            return self.security.dataReceived(buf, pos, avail)
        if state is State.VERSION:
            if avail < VERSION_SIZE:
                return 0
            return self._version(bytes(buf[pos : pos + VERSION_SIZE]))
        if state is State.CLIENTINIT:
            return self._clientInit(buf[pos])
        return 0

    # -- handshake: version and the choice of security type ------------------------------

    def _version(self, line: bytes) -> int:
        self._offered = self.factory.security.types()
        blocked = self.factory.blockedFor(self.transport.getPeer())
        version, step = version_step(line, self._offered, blocked)
        if version is not None:
            self.version = version
        self.state = State.SECURITY
        self._apply(step)
        return VERSION_SIZE

    def _securityChoice(self, choice: int) -> int:
        self._apply(choice_step(choice, self._offered, self.version))
        return 1

    def _apply(self, step: Step) -> None:
        if step.reply:
            self.transport.write(step.reply)
        if step.refused is not None:
            self.close(step.refused)
        elif step.start is not None:
            self._startSecurity(step.start)

    def _startSecurity(self, number: int) -> None:
        self.security = self.factory.security.make(number)
        self.security.start(self)

    # -- ISecuritySession: what the security types do with the connection -----------------

    def write(self, data: bytes) -> None:
        if self.state is not State.CLOSED:
            self.transport.write(data)

    def refuse(self, why: str) -> None:
        self.close(why)

    def proceed(self, result: bool) -> None:
        if result:
            self.transport.write(writer.security_result_ok())
        self.state = State.CLIENTINIT

    def blocked(self) -> bool:
        """True if our host is on the blacklist now (a burst of connections opened before
        the fifth failure must not get to try the right password anyway)."""
        return self.factory.blockedFor(self.transport.getPeer()) > 0

    def authenticated(self, how: str, view_only: bool, user: str | None) -> None:
        self.factory.authSucceeded(self.transport.getPeer())
        self.view_only = view_only
        self.user = user
        self.transport.write(writer.security_result_ok())
        self.state = State.CLIENTINIT
        subject = None
        if self._tls:
            from vncmux.rfb.tls import peer_subject

            subject = peer_subject(self.transport)
        log.info(
            "VNC viewer {peer} authenticated {how}{view}{cert}",
            peer=self.peer,
            how=how,
            view=" (view-only)" if view_only else "",
            cert=f", client certificate {subject}" if subject else "",
        )

    def authFailed(self, why: str) -> None:
        """Count the failure now; answer (and close) only after the failure delay."""
        blocked = self.blocked()
        self.factory.stats.auth_failures += 1
        if not blocked:
            self.factory.authFailed(self.transport.getPeer())
        log.warn(
            "VNC {why} from {peer}{blocked}",
            why=why,
            peer=self.peer,
            blocked=" (host is blacklisted)" if blocked else "",
        )
        self._failing = True
        self.console.events.emit(AUTH_FAILURE, self._client(NONE), detail=why)
        delay = self.factory.auth_failure_delay
        if delay > 0:
            self._fail_timer = self._clock.callLater(delay, self._sendAuthFailure)
        else:
            self._sendAuthFailure()

    def _sendAuthFailure(self) -> None:
        self._fail_timer = None
        if self.state is State.CLOSED:
            return
        self.transport.write(writer.security_result_failed(self.version, b"authentication failed"))
        self.close("authentication failed")

    def startTLS(self, then: Callable[[], None]) -> None:
        self._tls_then = then  # dataReceived switches once this read is parsed

    def _startTLS(self) -> None:
        """Put TLS under the connection and let the security type go on inside it.

        Bytes after the subtype in the same read can only be the client's TLS hello:
        they are handed to the new TLS layer, never parsed as RFB."""
        then, self._tls_then = self._tls_then, None
        leftover, self._buf = bytes(self._buf), bytearray()
        self.state = State.CLOSED  # nothing in clear text is accepted from now on
        try:
            self.transport.startTLS(self.factory.tls)
        except Exception as e:  # noqa: BLE001 - a transport without TLS, a bad context
            self.state = State.SECURITY
            self.close(f"cannot start TLS: {e}", abort=True)
            return
        self.state = State.SECURITY
        self._tls = True
        if then is not None:
            then()
        if leftover:
            self.transport.protocol.dataReceived(leftover)

    # -- ClientInit → ServerInit -------------------------------------------------------------

    def _clientInit(self, flag: int) -> int:
        self.shared = flag != 0
        if not self.factory.applySharePolicy(self):
            return 1
        console = self.console
        client = self._client()
        self.session = console.attach(self, self.view_only, self.peer, client)
        self.damage = self.session.damage
        self.updates = UpdateScheduler(self.damage, console, console.width, console.height)
        self.sizes = SizeAnswers(self.updates, self.peer)
        # Pixels come from the session: the shared frame, or this viewer's own view
        # (scrolled back, or showing its selection).
        self.encoders = EncodeManager(self.factory.work, self.session.crop, self._viewerCount)
        self.transport.write(
            writer.server_init(console.width, console.height, NATIVE, self.factory.desktopName())
        )
        self.state = State.NORMAL
        if self._handshake_timer is not None and self._handshake_timer.active():
            self._handshake_timer.cancel()
        self._handshake_timer = None
        log.info(
            "VNC viewer {peer} connected (RFB {major}.{minor}, {mode})",
            peer=self.peer,
            major=self.version[0],
            minor=self.version[1],
            mode="shared" if self.shared else "exclusive",
        )
        console.events.emit(ATTACH, client)
        return 1

    def _client(self, credential: str = "") -> Client:
        """Who this viewer is on the event bus (kind, address, credential)."""
        kind = getattr(self.transport, "clientKind", VNC)
        if credential:
            return Client(kind, self.peer, credential)
        return Client.of(kind, self.peer, view_only=self.view_only, user=self.user)

    def _viewerCount(self) -> int:
        return int(self.console.viewers)

    # -- IMessageHandler: the client's messages ----------------------------------------------

    def setPixelFormat(self, fmt: PixelFormat) -> None:
        self.fmt = fmt
        self._effective = fmt.effective()
        if not fmt.true_colour:
            self._out(writer.set_colour_map_entries(colour_map_entries()))

    def setEncodings(self, numbers: tuple[int, ...]) -> None:
        assert self.encoders is not None and self.updates is not None
        self.encodings = numbers
        self.caps = self.encoders.setEncodings(numbers)
        self.updates.copyrect = self.caps.copyrect
        self.updates.ext_desktop_size = self.caps.ext_desktop_size
        if self.caps.ext_clipboard and not self._clip_caps_sent:
            flags = CLIP_TEXT | CLIP_CAPS | CLIP_REQUEST | CLIP_NOTIFY | CLIP_PROVIDE
            caps = self.factory.max_cut_text.to_bytes(4, "big")
            self._out(writer.extended_clipboard(flags, caps))
            self._clip_caps_sent = True
            self.reader.extended_clipboard = True

    def framebufferUpdateRequest(self, incremental: bool, x: int, y: int, w: int, h: int) -> None:
        assert self.updates is not None
        self.updates.request(incremental, x, y, w, h)
        self._pull()

    def keyEvent(self, keysym: int, down: bool) -> None:
        if self.session is not None:
            self.session.key(keysym, down)

    def pointerEvent(self, buttons: int, x: int, y: int) -> None:
        if self.session is not None:
            self.session.pointer(buttons, x, y)

    def clientCutText(self, text: str) -> None:
        if self.session is not None:
            self.session.clipboard(text)

    def clipboardNotify(self, formats: int) -> None:
        if formats & CLIP_TEXT:
            self._out(writer.extended_clipboard(CLIP_REQUEST | CLIP_TEXT))

    def clipboardPeek(self) -> None:
        self._out(writer.extended_clipboard(CLIP_NOTIFY))  # we hold no clipboard of our own

    def enableContinuousUpdates(self, enable: bool, x: int, y: int, w: int, h: int) -> None:
        # Never announced (no EndOfContinuousUpdates sent), so a well-behaved client does
        # not send this; requests keep driving updates either way.
        log.debug("VNC viewer {peer}: ignoring EnableContinuousUpdates", peer=self.peer)

    def fence(self, flags: int, payload: bytes) -> None:
        if flags & _FENCE_REQUEST and self.caps.fence:
            # Messages are handled in order and written at once, so BlockBefore/After and
            # SyncNext already hold: echo the flags we understand.
            self._out(writer.fence(flags & _FENCE_FLAGS_KNOWN, payload))

    def setDesktopSize(self, width: int, height: int, screens: int) -> None:
        """The console decides (``vncmux.rfb.resize``); only a client that announced
        ExtendedDesktopSize may ask (it is told the answer that way)."""
        if self.caps.ext_desktop_size and self.sizes is not None and self.session is not None:
            self.sizes.request(self.session, width, height, screens)
            self._pull()

    # -- updates -------------------------------------------------------------------------

    def _pull(self) -> None:
        """Ask the console for damage and send if the parked request can be answered."""
        updates = self.updates
        if updates is None or not updates.requested or self._paused:
            return
        if self.state is not State.NORMAL or self.session is None:
            return
        self.session.requestUpdate()  # may call updateAvailable() right away
        if updates.ready():
            self._send()

    def updateAvailable(self) -> None:
        """IViewer: our accumulator has damage (we asked for this with requestUpdate)."""
        if self.state is not State.NORMAL or self.updates is None or not self.updates.requested:
            return
        if self._paused:
            return  # resumeProducing pulls again
        if not self._send() and self.session is not None:
            # Damage only outside the requested area: it is held; wait for more.
            self.session.requestUpdate()

    def _send(self) -> bool:
        """Build and write one FramebufferUpdate for the parked request; False if empty."""
        assert self.updates is not None and self.encoders is not None
        update = self.updates.take(self.console.width, self.console.height)
        if update is None:
            return False
        width, height = self.updates.width, self.updates.height
        rects = size_rects(update, self.caps.ext_desktop_size, width, height)
        if update.name:
            rects.append(writer.desktop_name(self.factory.desktopName()))
        if update.copy is not None:
            rects.append(writer.copy_rect(*update.copy))
        started = perf_counter()
        for rect in update.rects:
            rects.extend(self.encoders.encode(rect, self._effective))
        stats = self.factory.stats
        stats.encode_seconds += perf_counter() - started
        stats.frames += 1
        self.updates_sent += 1
        self._out(writer.framebuffer_update(rects))
        return True

    # -- IViewer: console events ------------------------------------------------------------

    def bell(self) -> None:
        if self.state is State.NORMAL and not self._paused:
            self._out(writer.bell())

    def nameChanged(self, name: str) -> None:
        if self.state is State.NORMAL and self.caps.desktop_name and self.updates is not None:
            self.updates.nameChanged()
            self._pull()

    def cutText(self, text: str) -> None:
        """Text for the viewer's clipboard: an Extended Clipboard provide (UTF-8) when the
        viewer has the extension, else ServerCutText (Latin-1, '?' for what it lacks)."""
        if self.state is not State.NORMAL:
            return
        if self.caps.ext_clipboard:
            payload = writer.clipboard_text_payload(text, self.factory.max_cut_text)
            self._out(writer.extended_clipboard(CLIP_PROVIDE | CLIP_TEXT, payload))
        else:
            self._out(writer.server_cut_text(text[: self.factory.max_cut_text]))

    def sizeChanged(self, width: int, height: int) -> None:
        if self.state is State.NORMAL and self.sizes is not None and self.session is not None:
            announce = self.caps.desktop_size or self.caps.ext_desktop_size
            if self.sizes.resized(self.session, announce, width, height):
                self._pull()
