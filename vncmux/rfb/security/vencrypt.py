"""Security type VeNCrypt (19): version, subtype, TLS, then the inner authentication.

The wire format and the pure parts (subtype choice, Plain lengths, the users file) are in
``vncmux.rfb.vencrypt``; this module runs the exchange.  The two acks use opposite
conventions (version: 0 = OK; subtype: 1 = OK).  After the subtype ack TLS starts on the
same connection and the subtype's own object takes over inside it: X509None
(``NoneSecurity`` with a SecurityResult), X509Vnc (``VncAuthSecurity``), X509Plain
(``PlainSecurity`` below).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from twisted.logger import Logger
from zope.interface import implementer

from vncmux.rfb import vencrypt
from vncmux.rfb.security import SEC_VENCRYPT, ISecurity, ISecuritySession

log = Logger()

_U32 = struct.Struct("!I")


@implementer(ISecurity)
class PlainSecurity:
    """X509Plain: a user name and password (inside TLS) checked against the users file;
    a view-only user watches only."""

    number = vencrypt.X509_PLAIN
    name = "X509Plain"
    stage = "plain"

    def __init__(self, users: vencrypt.Users | None) -> None:
        self._users = users
        self._lengths: tuple[int, int] | None = None
        self._session: ISecuritySession | None = None

    def start(self, session: ISecuritySession) -> None:
        self._session = session

    def dataReceived(self, buf: bytearray, pos: int, avail: int) -> int:
        session = self._session
        if session is None:
            return 0
        if self._lengths is None:
            if avail < 8:
                return 0
            try:
                self._lengths = vencrypt.plain_lengths(bytes(buf[pos : pos + 8]))
            except ValueError as e:
                session.refuse(str(e))
                return 0
            return 8
        user_len, pass_len = self._lengths
        if avail < user_len + pass_len:
            return 0
        name = bytes(buf[pos : pos + user_len])
        password = bytes(buf[pos + user_len : pos + user_len + pass_len])
        user = self._users.check(name, password) if self._users is not None else None
        if user is None or session.blocked():
            label = name.decode("utf-8", errors="replace")
            session.authFailed(f"authentication failed for user {label!r}")
        else:
            session.authenticated(f"as user {user.name!r}", user.view_only, user.name)
        return user_len + pass_len


@implementer(ISecurity)
class VeNCryptSecurity:
    """The VeNCrypt exchange for one connection.  ``subtypes`` are offered in order;
    ``inner(subtype)`` makes the object that authenticates inside TLS."""

    number = SEC_VENCRYPT
    name = "VeNCrypt"

    def __init__(self, subtypes: tuple[int, ...], inner: Callable[[int], ISecurity]) -> None:
        self.subtypes = subtypes
        self._inner_factory = inner
        self.subtype = 0  # the subtype chosen, 0 until then
        self.inner: ISecurity | None = None
        self._session: ISecuritySession | None = None
        self._step = self._version

    @property
    def stage(self) -> str:
        if self.inner is not None:
            return str(self.inner.stage)
        return "vencrypt-version" if self._step == self._version else "vencrypt-subtype"

    def start(self, session: ISecuritySession) -> None:
        self._session = session
        session.write(bytes(vencrypt.VERSION))

    def dataReceived(self, buf: bytearray, pos: int, avail: int) -> int:
        if self._session is None:
            return 0
        return self._step(self._session, buf, pos, avail)

    def _version(self, session: ISecuritySession, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 2:
            return 0
        major, minor = buf[pos], buf[pos + 1]
        if (major, minor) != vencrypt.VERSION:
            session.write(bytes([vencrypt.VERSION_REFUSED]))
            session.refuse(f"VeNCrypt version {major}.{minor} not supported (only 0.2)")
            return 2
        session.write(bytes([vencrypt.VERSION_OK]) + vencrypt.subtype_list(self.subtypes))
        self._step = self._subtype
        return 2

    def _subtype(self, session: ISecuritySession, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 4:
            return 0
        (subtype,) = _U32.unpack_from(buf, pos)
        if subtype not in self.subtypes:
            session.write(bytes([vencrypt.SUBTYPE_REFUSED]))
            session.refuse(f"VeNCrypt subtype {subtype} was not offered")
            return 4
        self.subtype = subtype
        session.write(bytes([vencrypt.SUBTYPE_OK]))
        self._step = self._waiting
        session.startTLS(self._tlsStarted)
        return 4

    def _waiting(self, session: ISecuritySession, buf: bytearray, pos: int, avail: int) -> int:
        return 0  # TLS is being started: nothing in clear text is parsed any more

    def _tlsStarted(self) -> None:
        """TLS is under the connection: the chosen subtype authenticates inside it."""
        session = self._session
        assert session is not None
        log.info(
            "VNC viewer {peer}: TLS started (VeNCrypt {name})",
            peer=session.peer,
            name=vencrypt.NAMES.get(self.subtype, str(self.subtype)),
        )
        self.inner = self._inner_factory(self.subtype)
        self._step = self._delegate
        self.inner.start(session)

    def _delegate(self, session: ISecuritySession, buf: bytearray, pos: int, avail: int) -> int:
        assert self.inner is not None
        return self.inner.dataReceived(buf, pos, avail)
