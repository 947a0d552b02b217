"""The RFB (VNC) server: handshake and message state machine for viewers of the console.

One ``RFBServerProtocol`` per viewer, made by ``RFBFactory``.  The protocol walks explicit
states (VERSION → SECURITY → VNCAUTH → CLIENTINIT → NORMAL), buffers what the client sends
and parses only whole messages, each with a small handler that knows its exact length; a
message it cannot size (an unknown type) closes the connection, since nothing after it can
be parsed.

Updates are *pulled*: a FramebufferUpdateRequest is parked and the shared ``Display`` is
asked to say when this viewer's damage accumulator holds something; then one
FramebufferUpdate is built from the accumulator (a CopyRect for a pending scroll, then the
dirty row bands, encoded from the shared image in the viewer's pixel format).  Nothing is
queued per byte of device output, and nothing is sent while the transport is paused, so a
viewer that stops reading costs at most one update of buffer, and is dropped after
``stall_timeout`` seconds.

Clipboard text from a viewer (ClientCutText, Latin-1; or the Extended Clipboard, UTF-8 and
zlib-compressed, announced only to viewers that ask) becomes that viewer's paste buffer; it
is typed only on Shift+Insert or a middle click, never on arrival.

Hostile input that broke other servers is handled on purpose: security types that were not
offered, insane pixel formats, huge ClientCutText lengths (streamed and discarded past the
cap, never allocated; inflated clipboard data bounded too), FBUR rectangles that overflow,
Fence payloads over 64 bytes, unknown message types, per-host authentication guessing
(TigerVNC's blacklist: 5 failures, then 10 s doubling, and every failure answered only after
a short delay), handshakes that never finish (a deadline, and a cap on handshakes in
progress that evicts the oldest), and viewers that never read (nothing is queued for them
past ``max_output`` bytes; they are dropped).

Security: with a TLS context the server offers VeNCrypt (19) and, unless ``cleartext`` is
set, nothing else; inside TLS the viewer authenticates with nothing (X509None), the VNC
password (X509Vnc) or a user name and password (X509Plain).  A viewer that authenticated
with the view-only password (or as a view-only user) sees the console but its keys, pointer
events and pastes are dropped.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.display import IViewer
from vncmux.console.keys import KeyMapper, is_paste_key, mouse_report, paste_bytes
from vncmux.rfb import auth, encodings, vencrypt
from vncmux.rfb.blacklist import Blacklist
from vncmux.rfb.encodings.copyrect import copyrect_payload
from vncmux.rfb.pixels import NATIVE, PixelFormat, colour_map_entries
from vncmux.rfb.rects import Rect, clip_rect, contains, intersects, subtract, union

log = Logger()

SERVER_VERSION = b"RFB 003.008\n"
SEC_INVALID = 0
SEC_NONE = 1
SEC_VNC_AUTH = 2

MAX_CUT_TEXT = 1 << 20
MAX_FENCE_PAYLOAD = 64
HANDSHAKE_TIMEOUT = 30.0
# At most this many connections may be in the handshake at once; a new one evicts the oldest
# (a slow-handshake flood cannot lock everyone out, and the oldest is the likeliest idle).
MAX_PENDING = 16
# Every failed authentication is answered after this delay (TigerVNC's 100 ms), so guessing
# costs time even before the blacklist.  RFBFactory's default is 0; the service passes this.
AUTH_FAILURE_DELAY = 0.1
# Output queued for a viewer whose transport is full (fence replies, colour maps, clipboard
# notes) beyond this drops the viewer: memory per viewer stays bounded (QEMU CVE-2017-15124).
MAX_OUTPUT = 4 << 20
STALL_TIMEOUT = 30.0

SHARE_POLICIES = ("allow-exclusive", "force-shared", "ignore")
# From this many viewers on, ZRLE frames are compressed once for all of them.
SHARE_STREAMS_AT = 3

_VERSION_RE = re.compile(rb"RFB (\d{3})\.(\d{3})\n\Z")
_RECT = struct.Struct("!HHHHi")
_U32 = struct.Struct("!I")
_FENCE_FLAGS_KNOWN = 0x7  # BlockBefore | BlockAfter | SyncNext
_FENCE_REQUEST = 1 << 31
# Extended clipboard flags: formats in the low bits, actions in the top byte.
_CLIP_TEXT = 1 << 0
_CLIP_CAPS = 1 << 24
_CLIP_REQUEST = 1 << 25
_CLIP_PEEK = 1 << 26
_CLIP_NOTIFY = 1 << 27
_CLIP_PROVIDE = 1 << 28


class State(Enum):
    VERSION = "version"
    SECURITY = "security"
    VNCAUTH = "vncauth"
    VENCRYPT_VERSION = "vencrypt-version"
    VENCRYPT_SUBTYPE = "vencrypt-subtype"
    PLAIN = "plain"
    AUTH_FAILED = "auth-failed"  # answer delayed; input ignored
    CLIENTINIT = "clientinit"
    NORMAL = "normal"
    CLOSED = "closed"


def negotiate_version(line: bytes) -> tuple[int, int] | None:
    """The version to speak for a client's ProtocolVersion line, TigerVNC's way.

    Returns None for garbage, (major, minor) as sent when major != 3 (to be refused), else
    (3, 8) for minor >= 8 (Apple's 3.889, UltraVNC's 3.14), (3, 7), or (3, 3)."""
    m = _VERSION_RE.match(line)
    if m is None:
        return None
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 3:
        return (major, minor)
    if minor >= 8:
        return (3, 8)
    if minor == 7:
        return (3, 7)
    return (3, 3)


def _bands(rows: Iterable[int]) -> list[tuple[int, int]]:
    d = Damage(0)
    d.rows = set(rows)
    return list(d.bands())


def _string(text: bytes) -> bytes:
    return _U32.pack(len(text)) + text


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


@implementer(IViewer, IPushProducer)
class RFBServerProtocol(Protocol):
    """One viewer's RFB session (see the module docstring).

    Promises: never sends a FramebufferUpdate that was not requested; answers a
    non-incremental request at once with the whole requested area; pad bytes are zero;
    never allocates what a client merely declares; any protocol error closes this viewer
    only, with a log line naming the peer."""

    factory: RFBFactory
    transport: Any  # ITransport + IConsumer (+ abortConnection); Any: no mypy-zope here

    def __init__(self, factory: RFBFactory) -> None:
        self.factory = factory
        self.display = factory.display
        self._clock = factory.clock
        self.state = State.VERSION
        self.version: tuple[int, int] = (3, 8)
        self.peer = "?"
        self.shared = True
        self.exclusive = False
        self._buf = bytearray()
        self._offered: tuple[int, ...] = (SEC_NONE,)
        self._subtypes: tuple[int, ...] = ()
        self.subtype = 0  # the VeNCrypt subtype chosen, 0 = no VeNCrypt
        self._challenge = b""
        self._handshake_timer: Any = None  # IDelayedCall
        self._stall_timer: Any = None
        self._fail_timer: Any = None
        self._start_tls = False
        self._plain_lengths: tuple[int, int] | None = None
        self.view_only = False
        self.user: str | None = None
        self._input_dropped_logged = False
        self._backlog = 0  # bytes written while the transport was paused
        # NORMAL state
        self.damage: Damage | None = None
        self._held: Damage | None = (
            None  # damage outside the requested area, older than self.damage
        )
        self.fmt: PixelFormat = NATIVE
        self._effective: PixelFormat = NATIVE
        self.encodings: tuple[int, ...] = ()
        self._encoders: dict[int, Any] = {}
        self.encoder: Any = None
        self.copyrect = False
        self.desktop_size = False
        self.ext_desktop_size = False
        self.desktop_name = False
        self.last_rect = False
        self.ext_clipboard = False
        self.fence = False
        self.continuous_updates = False
        self.fb_width = 0
        self.fb_height = 0
        self._requested = False
        self._region: Rect | None = None
        self._force = False  # a non-incremental request is pending: answer now, all of it
        self._full: Rect | None = None  # area a non-incremental request asked for
        self._pending_resize = False
        self._pending_eds: list[tuple[int, int]] = []  # (reason, status) ExtendedDesktopSize
        self._pending_name = False
        self._paused = False
        self._cut_remaining = 0
        self._cut_buf = bytearray()
        self._cut_declared = 0
        self._cut_extended = False
        self._clip_caps_sent = False
        self.paste_buffer = ""
        self._buttons = 0
        self._mapper: KeyMapper | None = None
        self._cell: tuple[int, int] | None = None
        self.updates_sent = 0

    # -- connection ----------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.peer = peer_label(self.transport.getPeer())
        if not self.factory.admit(self):
            return
        self.transport.registerProducer(self, True)
        self.factory.limitPending(self)
        self._handshake_timer = self._clock.callLater(
            self.factory.handshake_timeout, self._handshakeTimeout
        )
        log.info("VNC connection from {peer}", peer=self.peer)
        self.transport.write(SERVER_VERSION)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        was = self.state
        self.state = State.CLOSED
        self._buf = bytearray()
        self._cut_buf = bytearray()
        for timer in (self._handshake_timer, self._stall_timer, self._fail_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._handshake_timer = self._stall_timer = self._fail_timer = None
        if self.damage is not None:
            self.display.detach(self)
            self.damage = None
        self._encoders.clear()  # frees per-connection zlib streams now
        self.encoder = None
        if self.factory.forget(self):
            log.info(
                "VNC viewer {peer} disconnected (state {state}{why})",
                peer=self.peer,
                state=was.value,
                why="" if was in (State.NORMAL, State.CLOSED) else f": {reason.getErrorMessage()}",
            )

    def close(self, why: str, *, abort: bool = False) -> None:
        """Log ``why`` with the peer and close (after what was written, unless ``abort``)."""
        if self.state is State.CLOSED:
            return
        log.info("VNC viewer {peer}: {why}; closing", peer=self.peer, why=why)
        self.state = State.CLOSED
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def _handshakeTimeout(self) -> None:
        self._handshake_timer = None
        if self.state not in (State.NORMAL, State.CLOSED):
            self.close(
                f"handshake not finished in {self.factory.handshake_timeout:g} s", abort=True
            )

    # -- flow control (IPushProducer: the transport tells us when its buffer is full) ---

    def pauseProducing(self) -> None:
        self._paused = True
        if self._stall_timer is None and self.factory.stall_timeout > 0:
            self._stall_timer = self._clock.callLater(self.factory.stall_timeout, self._stalled)

    def resumeProducing(self) -> None:
        self._paused = False
        self._backlog = 0
        if self._stall_timer is not None:
            if self._stall_timer.active():
                self._stall_timer.cancel()
            self._stall_timer = None
        if self.state is State.NORMAL and self._requested:
            self._pull()

    def stopProducing(self) -> None:
        self._paused = True

    def _stalled(self) -> None:
        self._stall_timer = None
        if self.state is not State.CLOSED:
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
                self.close(
                    f"not reading: over {self.factory.max_output} bytes of output queued",
                    abort=True,
                )
                return
        self.transport.write(data)

    # -- input parsing -------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        buf = self._buf
        buf += data
        pos = 0
        try:
            while pos < len(buf) and self.state is not State.CLOSED and not self._start_tls:
                used = self._step(buf, pos, len(buf) - pos)
                if used == 0:
                    break
                pos += used
        finally:
            if self.state is State.CLOSED:
                self._buf = bytearray()
            else:
                del buf[:pos]
        if self._start_tls and self.state is not State.CLOSED:
            self._startTLS()

    def _step(self, buf: bytearray, pos: int, avail: int) -> int:
        """Handle one whole unit at ``pos``; the bytes used, or 0 to wait for more."""
        state = self.state
        if state is State.NORMAL:
            if self._cut_remaining:
                return self._cutTextData(buf, pos, avail)
            handler = _MESSAGES.get(buf[pos])
            if handler is None:
                self.close(f"unknown message type {buf[pos]}")
                return 0
            return handler(self, buf, pos, avail)
        if state is State.VERSION:
            return self._version(bytes(buf[pos : pos + 12])) if avail >= 12 else 0
        if state is State.SECURITY:
            return self._securityChoice(buf[pos])
        if state is State.VNCAUTH:
            return self._vncAuthResponse(bytes(buf[pos : pos + 16])) if avail >= 16 else 0
        if state is State.VENCRYPT_VERSION:
            return self._vencryptVersion(buf[pos], buf[pos + 1]) if avail >= 2 else 0
        if state is State.VENCRYPT_SUBTYPE:
            return self._vencryptSubtype(_U32.unpack_from(buf, pos)[0]) if avail >= 4 else 0
        if state is State.PLAIN:
            return self._plain(buf, pos, avail)
        if state is State.AUTH_FAILED:
            return avail  # the answer is on its way; whatever comes meanwhile is dropped
        if state is State.CLIENTINIT:
            return self._clientInit(buf[pos])
        return 0

    # -- handshake -----------------------------------------------------------------------

    def _version(self, line: bytes) -> int:
        version = negotiate_version(line)
        if version is None:
            self.close(f"not an RFB client (sent {line!r})")
            return 0
        if version[0] != 3:
            reason = f"unsupported RFB protocol version {version[0]}.{version[1]}"
            self.transport.write(b"\0" + _string(reason.encode()))
            self.close(reason)
            return 0
        self.version = version
        blocked = self.factory.blockedFor(self.transport.getPeer())
        if blocked:
            reason = "too many authentication failures; try again later"
            if version == (3, 3):
                self.transport.write(_U32.pack(SEC_INVALID) + _string(reason.encode()))
            else:
                self.transport.write(b"\0" + _string(reason.encode()))
            self.close(f"{reason} (blocked for {blocked:.0f} s more)")
            return 12
        self._offered = self.factory.securityTypes()
        if version == (3, 3):
            # 3.3: the server decides, and the challenge follows the type directly; only
            # None and VNC auth exist there, so a TLS-only server must refuse.
            cleartext = [t for t in self._offered if t in (SEC_NONE, SEC_VNC_AUTH)]
            if not cleartext:
                reason = "this server requires VeNCrypt (TLS), which RFB 3.3 cannot do"
                self.transport.write(_U32.pack(SEC_INVALID) + _string(reason.encode()))
                self.close(reason)
                return 12
            self.transport.write(_U32.pack(cleartext[0]))
            self._startSecurity(cleartext[0])
        else:
            self.transport.write(bytes([len(self._offered), *self._offered]))
            self.state = State.SECURITY
        return 12

    def _securityChoice(self, choice: int) -> int:
        if choice not in self._offered:
            offered = ", ".join(str(t) for t in self._offered)
            why = f"security type {choice} was not offered (offered {offered})"
            if self.version == (3, 8):
                self.transport.write(_U32.pack(1) + _string(b"security type not offered"))
            self.close(why)
            return 1
        self._startSecurity(choice)
        return 1

    def _startSecurity(self, sectype: int) -> None:
        if sectype == SEC_NONE:
            if self.version == (3, 8):
                self.transport.write(_U32.pack(0))
            self.state = State.CLIENTINIT
        elif sectype == vencrypt.SEC_VENCRYPT:
            self.transport.write(bytes(vencrypt.VERSION))
            self.state = State.VENCRYPT_VERSION
        else:
            self._sendChallenge()

    def _sendChallenge(self) -> None:
        self._challenge = auth.make_challenge()
        self.transport.write(self._challenge)
        self.state = State.VNCAUTH

    # -- VeNCrypt --------------------------------------------------------------------------

    def _vencryptVersion(self, major: int, minor: int) -> int:
        if (major, minor) != vencrypt.VERSION:
            self.transport.write(bytes([vencrypt.VERSION_REFUSED]))
            self.close(f"VeNCrypt version {major}.{minor} not supported (only 0.2)")
            return 2
        self._subtypes = self.factory.vencryptSubtypes()
        self.transport.write(bytes([vencrypt.VERSION_OK]) + vencrypt.subtype_list(self._subtypes))
        self.state = State.VENCRYPT_SUBTYPE
        return 2

    def _vencryptSubtype(self, subtype: int) -> int:
        if subtype not in self._subtypes:
            self.transport.write(bytes([vencrypt.SUBTYPE_REFUSED]))
            self.close(f"VeNCrypt subtype {subtype} was not offered")
            return 4
        self.subtype = subtype
        self.transport.write(bytes([vencrypt.SUBTYPE_OK]))
        self._start_tls = True  # dataReceived switches once this read is parsed
        return 4

    def _startTLS(self) -> None:
        """Put TLS under the connection and run the chosen inner authentication in it.

        Bytes after the subtype in the same read can only be the client's TLS hello:
        they are handed to the new TLS layer, never parsed as RFB."""
        self._start_tls = False
        leftover, self._buf = bytes(self._buf), bytearray()
        self.state = State.CLOSED  # nothing in clear text is accepted from now on
        try:
            self.transport.startTLS(self.factory.tls)
        except Exception as e:  # noqa: BLE001 - a transport without TLS, a bad context
            self.state = State.VENCRYPT_SUBTYPE
            self.close(f"cannot start TLS: {e}", abort=True)
            return
        log.info(
            "VNC viewer {peer}: TLS started (VeNCrypt {name})",
            peer=self.peer,
            name=vencrypt.NAMES.get(self.subtype, str(self.subtype)),
        )
        if self.subtype == vencrypt.X509_NONE:
            self.state = State.CLIENTINIT
            self.transport.write(_U32.pack(0))  # SecurityResult: always after VeNCrypt
        elif self.subtype == vencrypt.X509_VNC:
            self._sendChallenge()
        else:
            self.state = State.PLAIN
        if leftover:
            self.transport.protocol.dataReceived(leftover)

    def _plain(self, buf: bytearray, pos: int, avail: int) -> int:
        if self._plain_lengths is None:
            if avail < 8:
                return 0
            try:
                self._plain_lengths = vencrypt.plain_lengths(bytes(buf[pos : pos + 8]))
            except ValueError as e:
                self.close(str(e))
                return 0
            return 8
        user_len, pass_len = self._plain_lengths
        if avail < user_len + pass_len:
            return 0
        name = bytes(buf[pos : pos + user_len])
        password = bytes(buf[pos + user_len : pos + user_len + pass_len])
        users = self.factory.users
        user = users.check(name, password) if users is not None else None
        label = name.decode("utf-8", errors="replace")
        if user is None or self._blocked():
            self._authFailed(f"authentication failed for user {label!r}")
        else:
            self.user = user.name
            self.view_only = user.view_only
            self._authOk(f"as user {user.name!r}")
        return user_len + pass_len

    # -- authentication outcome --------------------------------------------------------

    def _blocked(self) -> bool:
        """True if our host is on the blacklist now (a burst of connections opened before
        the fifth failure must not get to try the right password anyway)."""
        return self.factory.blockedFor(self.transport.getPeer()) > 0

    def _authOk(self, how: str) -> None:
        self._challenge = b""
        self.factory.authSucceeded(self.transport.getPeer())
        self.transport.write(_U32.pack(0))
        self.state = State.CLIENTINIT
        subject = None
        if self.subtype:
            from vncmux.rfb.tls import peer_subject

            subject = peer_subject(self.transport)
        log.info(
            "VNC viewer {peer} authenticated {how}{view}{cert}",
            peer=self.peer,
            how=how,
            view=" (view-only)" if self.view_only else "",
            cert=f", client certificate {subject}" if subject else "",
        )

    def _authFailed(self, why: str) -> None:
        """Count the failure now; answer (and close) only after the failure delay."""
        blocked = self._blocked()
        if not blocked:
            self.factory.authFailed(self.transport.getPeer())
        log.warn(
            "VNC {why} from {peer}{blocked}",
            why=why,
            peer=self.peer,
            blocked=" (host is blacklisted)" if blocked else "",
        )
        self._challenge = b""
        self.state = State.AUTH_FAILED
        delay = self.factory.auth_failure_delay
        if delay > 0:
            self._fail_timer = self._clock.callLater(delay, self._sendAuthFailure)
        else:
            self._sendAuthFailure()

    def _sendAuthFailure(self) -> None:
        self._fail_timer = None
        if self.state is not State.AUTH_FAILED:
            return
        self.transport.write(_U32.pack(1))
        if self.version == (3, 8):
            self.transport.write(_string(b"authentication failed"))
        self.close("authentication failed")

    def _vncAuthResponse(self, response: bytes) -> int:
        password, view = self.factory.password, self.factory.view_password
        full = password is not None and auth.check_response(self._challenge, response, password)
        # Both are always checked, so the time taken does not tell which one matched.
        watch = view is not None and auth.check_response(self._challenge, response, view)
        if self._blocked() or not (full or watch):
            self._authFailed("authentication failed")
            return 16
        self.view_only = not full
        self._authOk("with the view-only password" if self.view_only else "with the password")
        return 16

    def _clientInit(self, flag: int) -> int:
        self.shared = flag != 0
        if not self.factory.applySharePolicy(self):
            return 1
        self.damage = self.display.attach(self)
        self._startNormal()
        return 1

    def _startNormal(self) -> None:
        self._mapper = KeyMapper(encoding=self.display.encoding)
        self.encoder = self._encoderFor(encodings.RAW)
        self.fb_width, self.fb_height = self.display.width, self.display.height
        name = self.factory.desktopName().encode("utf-8")
        self.transport.write(
            struct.pack("!HH", self.fb_width, self.fb_height) + NATIVE.pack() + _string(name)
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

    # -- client messages (each returns the bytes used, 0 = wait for more) -----------------

    def _setPixelFormat(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 20:
            return 0
        try:
            fmt = PixelFormat.parse(bytes(buf[pos + 4 : pos + 20]))
            problem = fmt.problem()
        except (ValueError, struct.error) as e:
            problem = str(e)
        if problem is not None:
            self.close(f"invalid pixel format: {problem}")
            return 0
        self.fmt = fmt
        self._effective = fmt.effective()
        if not fmt.true_colour:
            entries = colour_map_entries()
            out = [struct.pack("!BxHH", 1, 0, len(entries))]
            out.extend(struct.pack("!HHH", r, g, b) for r, g, b in entries)
            self._out(b"".join(out))
        return 20

    def _setEncodings(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 4:
            return 0
        count = (buf[pos + 2] << 8) | buf[pos + 3]
        size = 4 + 4 * count
        if avail < size:
            return 0
        numbers = struct.unpack_from(f"!{count}i", buf, pos + 4)
        self.encodings = numbers
        present = set(numbers)
        self.copyrect = encodings.COPYRECT in present
        self.desktop_size = encodings.DESKTOP_SIZE in present
        self.ext_desktop_size = encodings.EXTENDED_DESKTOP_SIZE in present
        self.desktop_name = encodings.DESKTOP_NAME in present
        self.last_rect = encodings.LAST_RECT in present
        self.ext_clipboard = encodings.EXTENDED_CLIPBOARD in present
        self.fence = encodings.FENCE in present
        self.continuous_updates = encodings.CONTINUOUS_UPDATES in present
        if self.ext_clipboard and not self._clip_caps_sent:
            self._sendClipboardCaps()
        chosen = encodings.choose(numbers)
        self.encoder = self._encoders.setdefault(chosen.number, chosen)
        return size

    def _encoderFor(self, number: int) -> Any:
        enc = self._encoders.get(number)
        if enc is None:
            enc = encodings.make_encoder(number)
            self._encoders[number] = enc
        return enc

    def _framebufferUpdateRequest(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 10:
            return 0
        incremental, x, y, w, h = struct.unpack_from("!BHHHH", buf, pos + 1)
        self.requestUpdate(bool(incremental), x, y, w, h)
        return 10

    def _keyEvent(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        down = buf[pos + 1] != 0
        (keysym,) = _U32.unpack_from(buf, pos + 4)
        self._key(keysym, down)
        return 8

    def _pointerEvent(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 6:
            return 0
        mask, x, y = struct.unpack_from("!BHH", buf, pos + 1)
        self._pointer(mask, x, y)
        return 6

    def _clientCutText(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        (length,) = _U32.unpack_from(buf, pos + 4)
        # The length is only a claim: the text is collected as it arrives, up to the cap,
        # and the rest is read and dropped.  A "negative" length is the extended clipboard,
        # but only once we announced it (sent our caps); before that it is a plain count.
        self._cut_extended = self._clip_caps_sent and length >= 0x80000000
        if self._cut_extended:
            length = (1 << 32) - length
        self._cut_declared = length
        self._cut_remaining = length
        self._cut_buf = bytearray()
        if length == 0:
            self._cutTextDone()
        return 8

    def _cutTextData(self, buf: bytearray, pos: int, avail: int) -> int:
        take = min(avail, self._cut_remaining)
        room = self.factory.max_cut_text - len(self._cut_buf)
        if room > 0:
            self._cut_buf += buf[pos : pos + min(take, room)]
        self._cut_remaining -= take
        if self._cut_remaining == 0:
            self._cutTextDone()
        return take

    def _cutTextDone(self) -> None:
        data, self._cut_buf = bytes(self._cut_buf), bytearray()
        truncated = self._cut_declared > len(data)
        if self._cut_extended:
            if truncated:
                log.info(
                    "VNC viewer {peer}: extended clipboard message of {n} bytes dropped",
                    peer=self.peer,
                    n=self._cut_declared,
                )
            else:
                self._extendedClipboard(data)
            return
        if truncated:
            log.info(
                "VNC viewer {peer}: clipboard text of {n} bytes cut to {cap}",
                peer=self.peer,
                n=self._cut_declared,
                cap=len(data),
            )
        self.paste_buffer = data.decode("latin-1")

    # -- extended clipboard (UTF-8 text from the viewer) -----------------------------------

    def _sendClipboardCaps(self) -> None:
        flags = _CLIP_TEXT | _CLIP_CAPS | _CLIP_REQUEST | _CLIP_NOTIFY | _CLIP_PROVIDE
        self._writeExtendedClipboard(flags, _U32.pack(self.factory.max_cut_text))
        self._clip_caps_sent = True

    def _writeExtendedClipboard(self, flags: int, payload: bytes = b"") -> None:
        length = 4 + len(payload)
        self._out(struct.pack("!BxxxiI", 3, -length, flags) + payload)

    def _extendedClipboard(self, data: bytes) -> None:
        """One complete extended clipboard message from the viewer (payload after length)."""
        if len(data) < 4:
            return
        (flags,) = _U32.unpack_from(data)
        if flags & _CLIP_CAPS:
            # The viewer's caps list its actions as flag bits too (provide among them):
            # nothing to do, and never to be read as a provide message.
            return
        if flags & _CLIP_PROVIDE:
            if flags & _CLIP_TEXT:
                text = self._providedText(data[4:])
                if text is not None:
                    self.paste_buffer = text
        elif flags & _CLIP_NOTIFY:
            if flags & _CLIP_TEXT:
                self._writeExtendedClipboard(_CLIP_REQUEST | _CLIP_TEXT)
        elif flags & _CLIP_PEEK:
            self._writeExtendedClipboard(_CLIP_NOTIFY)  # we hold no clipboard of our own
        # request (we never announce data): nothing to do

    def _providedText(self, compressed: bytes) -> str | None:
        """The text format from a provide message's zlib stream, inflated within the cap."""
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(compressed, self.factory.max_cut_text + 4)
        except zlib.error as e:
            log.info("VNC viewer {peer}: bad clipboard data ({e})", peer=self.peer, e=e)
            return None
        if len(raw) < 4:
            return None
        (size,) = _U32.unpack_from(raw)
        text = raw[4 : 4 + size]
        if size > len(text):
            log.info(
                "VNC viewer {peer}: clipboard text of {n} bytes cut to {cap}",
                peer=self.peer,
                n=size,
                cap=len(text),
            )
        return text.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def _enableContinuousUpdates(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 10:
            return 0
        # Never announced (no EndOfContinuousUpdates sent), so a well-behaved client does
        # not send this; requests keep driving updates either way.
        log.debug("VNC viewer {peer}: ignoring EnableContinuousUpdates", peer=self.peer)
        return 10

    def _fence(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 9:
            return 0
        length = buf[pos + 8]
        if length > MAX_FENCE_PAYLOAD:
            self.close(f"Fence payload of {length} bytes (at most {MAX_FENCE_PAYLOAD})")
            return 0
        if avail < 9 + length:
            return 0
        (flags,) = _U32.unpack_from(buf, pos + 4)
        payload = bytes(buf[pos + 9 : pos + 9 + length])
        if flags & _FENCE_REQUEST and self.fence:
            # Messages are handled in order and written at once, so BlockBefore/After and
            # SyncNext already hold: echo the flags we understand.
            reply = flags & _FENCE_FLAGS_KNOWN
            self._out(struct.pack("!BxxxIB", 248, reply, length) + payload)
        return 9 + length

    def _setDesktopSize(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        screens = buf[pos + 6]
        size = 8 + 16 * screens
        if avail < size:
            return 0
        if self.ext_desktop_size:
            self._queueExtDesktopSize(1, 1)  # reason: this client; status: prohibited
            if self._requested:
                self._pull()
        return size

    def _qemu(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 2:
            return 0
        subtype = buf[pos + 1]
        if subtype != 0:
            self.close(f"unsupported QEMU message subtype {subtype}")
            return 0
        if avail < 12:
            return 0
        down, keysym, _keycode = struct.unpack_from("!HII", buf, pos + 2)
        if keysym:
            self._key(keysym, down != 0)
        return 12

    # -- input to the console ------------------------------------------------------------

    def _viewOnly(self, what: str) -> bool:
        """True (input dropped, logged once per viewer) if this viewer may only watch."""
        if not self.view_only:
            return False
        if not self._input_dropped_logged:
            self._input_dropped_logged = True
            log.info(
                "VNC viewer {peer} is view-only: its {what} (and all later input) ignored",
                peer=self.peer,
                what=what,
            )
        return True

    def _key(self, keysym: int, down: bool) -> None:
        if self._viewOnly("key events"):
            return
        modes = self.display.modes
        assert self._mapper is not None
        if down and is_paste_key(keysym, self._mapper):
            self._paste()
            return
        data = self._mapper.key(keysym, down, modes)
        if data:
            self.display.input(data, self)

    def _paste(self) -> None:
        if self._viewOnly("paste"):
            return
        if not self.paste_buffer:
            return
        data = paste_bytes(self.paste_buffer, self.display.modes, self.display.encoding)
        if data:
            self.display.input(data, self)

    def _pointer(self, mask: int, x: int, y: int) -> None:
        if self._viewOnly("pointer events"):
            return
        prev, self._buttons = self._buttons, mask
        modes = self.display.modes
        if modes.mouse_tracking:
            ox, oy, _w, _h = self.display.row_box(0, 1)
            cw, ch = max(1, self.display.cell_width), max(1, self.display.cell_height)
            col = min(max(0, (x - ox) // cw), self.display.cols - 1)
            row = min(max(0, (y - oy) // ch), self.display.rows - 1)
            cell, self._cell = self._cell, (col, row)
            if mask == prev and cell == (col, row):
                return  # xterm reports motion per cell, not per pixel
            data = mouse_report(mask, prev, col, row, modes)
            if data:
                self.display.input(data, self)
        elif mask & 2 and not prev & 2:
            self._paste()

    # -- updates -------------------------------------------------------------------------

    def requestUpdate(self, incremental: bool, x: int, y: int, w: int, h: int) -> None:
        """A FramebufferUpdateRequest: remember it and answer now or when damage comes."""
        region = clip_rect(x, y, w, h, self.fb_width, self.fb_height)
        self._requested = True
        self._region = union(self._region, region)
        if not incremental:
            assert self.damage is not None
            self._force = True
            self._full = union(self._full, region)
            self._held = None
            self.damage.mark_all()
            if self.ext_desktop_size:
                self._queueExtDesktopSize(0, 0)
        self._pull()

    def _queueExtDesktopSize(self, reason: int, status: int) -> None:
        """Remember an ExtendedDesktopSize for the next update; repeats collapse, so a
        client that asks again and again without reading cannot grow the queue."""
        if (reason, status) not in self._pending_eds:
            self._pending_eds.append((reason, status))

    def _pull(self) -> None:
        """Bring the display up to date and send if there is anything for this request."""
        if not self._requested or self._paused or self.state is not State.NORMAL:
            return
        self.display.requestUpdate(self)  # may call updateAvailable() right away
        if self._requested and (self._force or self._pseudoPending() or self._held):
            self._send()

    def _pseudoPending(self) -> bool:
        return self._pending_resize or bool(self._pending_eds) or self._pending_name

    def updateAvailable(self) -> None:
        """IViewer: our accumulator has damage (we asked for this with requestUpdate)."""
        if not self._requested or self.state is not State.NORMAL:
            return
        if self._paused:
            return  # resumeProducing pulls again
        if not self._send():
            # Damage only outside the requested area: it is kept in _held; wait for more.
            self.display.requestUpdate(self)

    def _send(self) -> bool:
        """Build and write one FramebufferUpdate for the parked request; False if empty."""
        assert self.damage is not None
        work = self._held if self._held is not None else Damage(self.damage.lines)
        self._held = None
        work.merge(self.damage)
        self.damage.clear()
        rects: list[bytes] = []
        force, full = self._force, self._full
        if self._pending_resize:
            self._pending_resize = False
            self.fb_width, self.fb_height = self.display.width, self.display.height
            if self.ext_desktop_size:
                rects.append(self._extDesktopSize(0, 0))
                self._pending_eds = [e for e in self._pending_eds if e != (0, 0)]
            else:
                rects.append(
                    _RECT.pack(0, 0, self.fb_width, self.fb_height, encodings.DESKTOP_SIZE)
                )
            force = True
            full = (0, 0, self.fb_width, self.fb_height)
            self._region = full
            work.mark_all()
        for reason, status in self._pending_eds:
            rects.append(self._extDesktopSize(reason, status))
        self._pending_eds = []
        if self._pending_name:
            self._pending_name = False
            name = self.factory.desktopName().encode("utf-8")
            rects.append(_RECT.pack(0, 0, 0, 0, encodings.DESKTOP_NAME) + _string(name))
        region = self._region
        if region is not None:
            rects.extend(self._framebufferRects(work, region))
            if force and full is not None:
                rects.extend(self._marginRects(full))
        if work:
            self._held = work
        if not rects and not force:
            return False
        self._requested = False
        self._region = self._full = None
        self._force = False
        self.updates_sent += 1
        self._out(struct.pack("!BxH", 0, len(rects)) + b"".join(rects))
        return True

    def _framebufferRects(self, work: Damage, region: Rect) -> list[bytes]:
        """CopyRect for the scroll and encoded dirty bands inside ``region``; what is
        sent is removed from ``work``."""
        display = self.display
        rects: list[bytes] = []
        scroll = work.scroll
        if scroll is not None:
            work.scroll = None
            box = display.row_box(scroll.top, scroll.height)
            covered = set(range(scroll.top, scroll.bottom + 1)) <= work.rows
            fb = (0, 0, self.fb_width, self.fb_height)
            if self.copyrect and not covered and contains(region, box) and contains(fb, box):
                src_first, count = scroll.source_rows()
                sx, sy, _sw, _sh = display.row_box(src_first, count)
                dx, dy, dw, dh = display.row_box(scroll.dest_top(), count)
                rects.append(
                    _RECT.pack(dx, dy, dw, dh, encodings.COPYRECT) + copyrect_payload(sx, sy)
                )
            else:
                work.mark(range(scroll.top, scroll.bottom + 1))
        if contains(region, display.row_box(0, display.rows)):
            send = set(work.rows)  # the usual whole-screen request: no per-row test
        else:
            send = {r for r in work.rows if intersects(display.row_box(r, 1), region)}
        work.rows -= send
        for first, count in _bands(send):
            box = display.row_box(first, count)
            clipped = clip_rect(box[0], box[1], box[2], box[3], self.fb_width, self.fb_height)
            if clipped is not None:
                rects.extend(self._encode(clipped))
        return rects

    def _marginRects(self, full: Rect) -> list[bytes]:
        """Parts of a non-incremental request that no character row covers."""
        rows = self.display.rows
        if rows <= 0:
            pieces = [full]
        else:
            pieces = subtract(full, self.display.row_box(0, rows))
        out = []
        for piece in pieces:
            clipped = clip_rect(*piece, self.fb_width, self.fb_height)
            if clipped is not None:
                out.extend(self._encode(clipped))
        return out

    def _encode(self, rect: Rect) -> list[bytes]:
        """The rectangle as one or more encoded RFB rectangles (Tight limits their size)."""
        if hasattr(self.encoder, "shared"):
            # Several viewers: compress each frame once for all of them (see ZRLEEncoder).
            self.encoder.shared = len(getattr(self.display, "viewers", ())) >= SHARE_STREAMS_AT
        out = []
        for x, y, w, h in encodings.split(self.encoder, *rect):
            image = self.display.crop((x, y, x + w, y + h))
            payload = self.encoder.encode(image, self._effective)
            out.append(_RECT.pack(x, y, w, h, self.encoder.number) + payload)
        return out

    def _extDesktopSize(self, reason: int, status: int) -> bytes:
        w, h = self.fb_width, self.fb_height
        screen = struct.pack("!IHHHHI", 0, 0, 0, w, h, 0)
        return (
            _RECT.pack(reason, status, w, h, encodings.EXTENDED_DESKTOP_SIZE)
            + struct.pack("!Bxxx", 1)
            + screen
        )

    # -- IViewer: console events ------------------------------------------------------------

    def bell(self) -> None:
        if self.state is State.NORMAL and not self._paused:
            self._out(b"\x02")

    def nameChanged(self, name: str) -> None:
        if self.state is State.NORMAL and self.desktop_name:
            self._pending_name = True
            self._pull()

    def sizeChanged(self, width: int, height: int) -> None:
        if self.state is not State.NORMAL or self.damage is None:
            return
        self._held = None
        if self.damage.lines != self.display.rows:
            self.damage.lines = self.display.rows
        self.damage.mark_all()
        if self.desktop_size or self.ext_desktop_size:
            self._pending_resize = True
            self._pull()
        else:
            log.info(
                "VNC viewer {peer} cannot be told of the new size {w}x{h}; it keeps {ow}x{oh}",
                peer=self.peer,
                w=width,
                h=height,
                ow=self.fb_width,
                oh=self.fb_height,
            )


_Handler = Callable[[RFBServerProtocol, bytearray, int, int], int]
_MESSAGES: dict[int, _Handler] = {
    0: RFBServerProtocol._setPixelFormat,
    2: RFBServerProtocol._setEncodings,
    3: RFBServerProtocol._framebufferUpdateRequest,
    4: RFBServerProtocol._keyEvent,
    5: RFBServerProtocol._pointerEvent,
    6: RFBServerProtocol._clientCutText,
    150: RFBServerProtocol._enableContinuousUpdates,
    248: RFBServerProtocol._fence,
    251: RFBServerProtocol._setDesktopSize,
    255: RFBServerProtocol._qemu,
}


class RFBFactory(Factory):
    """Makes viewer sessions on one display and holds what they share: the passwords, the
    TLS context, the share policy, the connection limits and the per-host authentication
    blacklist.

    ``tls`` (an IOpenSSLServerConnectionCreator, see ``vncmux.rfb.tls``) turns VeNCrypt on;
    then only VeNCrypt is offered unless ``cleartext`` asks for None/VNC auth as well.
    ``view_password`` is a second VNC password for view-only viewers; ``users`` (see
    ``vncmux.rfb.vencrypt.read_users_file``) enables X509Plain."""

    protocol = RFBServerProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        display: Any,
        *,
        password: bytes | None = None,
        share: str = "force-shared",
        connections: int = 64,
        clock: Any = None,  # IReactorTime; Any: no mypy-zope to see Clock provides it
        name: str | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        stall_timeout: float = STALL_TIMEOUT,
        max_cut_text: int = MAX_CUT_TEXT,
        view_password: bytes | None = None,
        tls: Any = None,
        users: vencrypt.Users | None = None,
        cleartext: bool = False,
        auth_failure_delay: float = 0.0,
        max_pending: int = MAX_PENDING,
        max_output: int = MAX_OUTPUT,
    ) -> None:
        if share not in SHARE_POLICIES:
            raise ValueError(f"share policy must be one of {', '.join(SHARE_POLICIES)}")
        self.display = display
        self.password = password
        self.share = share
        self.connections = connections
        if clock is None:
            # Imported here, not at module import: twistd must choose the reactor first.
            from twisted.internet import reactor as clock
        self.clock: Any = clock
        self.name = name
        self.handshake_timeout = handshake_timeout
        self.stall_timeout = stall_timeout
        self.max_cut_text = max_cut_text
        self.view_password = view_password
        self.tls = tls
        self.users = users
        self.cleartext = cleartext
        self.auth_failure_delay = auth_failure_delay
        self.max_pending = max_pending
        self.max_output = max_output
        self.clients: list[RFBServerProtocol] = []
        self.blacklist = Blacklist(clock)

    def buildProtocol(self, addr: Any) -> RFBServerProtocol:  # type: ignore[override]
        return RFBServerProtocol(self)

    def desktopName(self) -> str:
        return self.name or self.display.name

    # -- security ------------------------------------------------------------------------

    def securityTypes(self) -> tuple[int, ...]:
        """The RFB security types to offer, in order of preference.

        With TLS: VeNCrypt, plus the clear-text type only if ``cleartext`` was asked for.
        Clear text means VNC auth when any VNC password exists, else None -- but never None
        when a users file exists (that would skip the users' passwords)."""
        clear: tuple[int, ...]
        if self.password is not None or self.view_password is not None:
            clear = (SEC_VNC_AUTH,)
        elif self.users is not None:
            clear = ()
        else:
            clear = (SEC_NONE,)
        if self.tls is None:
            return clear or (SEC_VNC_AUTH,)
        return (vencrypt.SEC_VENCRYPT, *clear) if self.cleartext else (vencrypt.SEC_VENCRYPT,)

    def vencryptSubtypes(self) -> tuple[int, ...]:
        return vencrypt.subtypes(
            password=self.password is not None or self.view_password is not None,
            users=self.users is not None,
        )

    # -- admission -----------------------------------------------------------------------

    def admit(self, proto: RFBServerProtocol) -> bool:
        """Count a new connection, or refuse it (closed, logged) past the limit."""
        if len(self.clients) >= self.connections:
            log.warn(
                "VNC connection from {peer} refused: limit of {n} connections reached",
                peer=proto.peer,
                n=self.connections,
            )
            proto.state = State.CLOSED
            proto.transport.loseConnection()
            return False
        self.clients.append(proto)
        return True

    def limitPending(self, proto: RFBServerProtocol) -> None:
        """Keep at most ``max_pending`` connections in the handshake: evict the oldest."""
        pending = [
            c
            for c in self.clients
            if c is not proto and c.state not in (State.NORMAL, State.CLOSED)
        ]
        while len(pending) >= self.max_pending:
            oldest = pending.pop(0)
            oldest.close(
                f"evicted: {self.max_pending} handshakes in progress and {proto.peer} arrived",
                abort=True,
            )

    def forget(self, proto: RFBServerProtocol) -> bool:
        if proto in self.clients:
            self.clients.remove(proto)
            return True
        return False

    def applySharePolicy(self, proto: RFBServerProtocol) -> bool:
        """Apply the ClientInit shared flag; False if ``proto`` was refused (and closed)."""
        if self.share != "allow-exclusive":
            if not proto.shared:
                log.info(
                    "VNC viewer {peer} asked for exclusive access; treated as shared ({policy})",
                    peer=proto.peer,
                    policy=self.share,
                )
            proto.shared = True
            return True
        others = [c for c in self.clients if c is not proto]
        if not proto.shared:
            proto.exclusive = True
            for other in others:
                other.close(f"disconnected: viewer {proto.peer} asked for exclusive access")
            return True
        holder = next((c for c in others if c.exclusive and c.state is State.NORMAL), None)
        if holder is not None:
            proto.close(f"refused: viewer {holder.peer} has exclusive access")
            return False
        return True

    # -- authentication blacklist (per host, as TigerVNC) ----------------------------------

    def blockedFor(self, address: Any) -> float:
        """Seconds ``address``'s host must still wait before trying again (0 = may try)."""
        return self.blacklist.blockedFor(address)

    def authFailed(self, address: Any) -> None:
        self.blacklist.failed(address)

    def authSucceeded(self, address: Any) -> None:
        self.blacklist.succeeded(address)
