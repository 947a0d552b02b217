"""The security types one by one, over a fake ``ISecuritySession`` (the session's own
handling -- result bytes, failure delay, blacklist -- is tested in test_vencrypt.py and
test_rfb_server.py through the whole session)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from vncmux.rfb import auth, vencrypt
from vncmux.rfb.security import (
    SEC_NONE,
    SEC_VENCRYPT,
    SEC_VNC_AUTH,
    ISecurity,
    ISecuritySession,
)
from vncmux.rfb.security.none import NoneSecurity
from vncmux.rfb.security.settings import SecuritySettings
from vncmux.rfb.security.vencrypt import PlainSecurity, VeNCryptSecurity
from vncmux.rfb.security.vncauth import VncAuthSecurity


@implementer(ISecuritySession)
class FakeSession:
    """Records what a security type wrote and how it ended."""

    def __init__(self, version: tuple[int, int] = (3, 8), blocked: bool = False) -> None:
        self.version = version
        self.peer = "test:1"
        self.written = b""
        self.outcome: tuple[Any, ...] | None = None
        self.is_blocked = blocked
        self.tls_then: Callable[[], None] | None = None

    def write(self, data: bytes) -> None:
        self.written += data

    def take(self) -> bytes:
        data, self.written = self.written, b""
        return data

    def refuse(self, why: str) -> None:
        self.outcome = ("refused", why)

    def proceed(self, result: bool) -> None:
        self.outcome = ("proceed", result)

    def blocked(self) -> bool:
        return self.is_blocked

    def authenticated(self, how: str, view_only: bool, user: str | None) -> None:
        self.outcome = ("ok", view_only, user)

    def authFailed(self, why: str) -> None:
        self.outcome = ("failed", why)

    def startTLS(self, then: Callable[[], None]) -> None:
        self.tls_then = then


def run(security: ISecurity, session: FakeSession, data: bytes) -> int:
    """Feed ``data`` unit by unit; the bytes used."""
    buf = bytearray(data)
    pos = 0
    while pos < len(buf):
        used = security.dataReceived(buf, pos, len(buf) - pos)
        if used == 0:
            break
        pos += used
    return pos


USERS = vencrypt.Users([vencrypt.User("al", b"pw"), vencrypt.User("eve", b"x", view_only=True)])


@pytest.mark.parametrize(
    "security",
    [
        NoneSecurity(),
        VncAuthSecurity(b"pw", None),
        VeNCryptSecurity((vencrypt.X509_NONE,), SecuritySettings().makeSubtype),
        PlainSecurity(USERS),
    ],
)
def test_every_security_type_provides_isecurity(security: ISecurity) -> None:
    assert verifyObject(ISecurity, security)
    assert verifyObject(ISecuritySession, FakeSession())


@pytest.mark.parametrize(
    "version, always, result",
    [((3, 3), False, False), ((3, 7), False, False), ((3, 8), False, True), ((3, 7), True, True)],
)
def test_none_proceeds_with_result_only_in_38_or_inside_vencrypt(
    version: tuple[int, int], always: bool, result: bool
) -> None:
    session = FakeSession(version)
    NoneSecurity(always_result=always).start(session)
    assert session.outcome == ("proceed", result) and session.written == b""


@pytest.mark.parametrize(
    "typed, blocked, outcome",
    [
        (b"pw", False, ("ok", False, None)),
        (b"look", False, ("ok", True, None)),
        (b"nope", False, ("failed", "authentication failed")),
        (b"pw", True, ("failed", "authentication failed")),  # blacklisted: refused anyway
    ],
)
def test_vnc_auth(typed: bytes, blocked: bool, outcome: tuple[Any, ...]) -> None:
    session = FakeSession(blocked=blocked)
    security = VncAuthSecurity(b"pw", b"look")
    security.start(session)
    challenge = session.take()
    assert len(challenge) == 16
    response = auth.vnc_auth_response(challenge, typed)
    assert run(security, session, response[:15]) == 0 and session.outcome is None
    assert run(security, session, response) == 16
    assert session.outcome == outcome


def test_vnc_auth_challenges_differ() -> None:
    a, b = FakeSession(), FakeSession()
    VncAuthSecurity(b"pw", None).start(a)
    VncAuthSecurity(b"pw", None).start(b)
    assert a.written != b.written


@pytest.mark.parametrize(
    "user, password, outcome",
    [
        ("al", "pw", ("ok", False, "al")),
        ("eve", "x", ("ok", True, "eve")),
        ("al", "wrong", ("failed", "authentication failed for user 'al'")),
        ("nobody", "pw", ("failed", "authentication failed for user 'nobody'")),
    ],
)
def test_plain(user: str, password: str, outcome: tuple[Any, ...]) -> None:
    session = FakeSession()
    security = PlainSecurity(USERS)
    security.start(session)
    data = vencrypt.plain_credentials(user, password)
    assert run(security, session, data) == len(data)
    assert session.outcome == outcome and session.written == b""


def test_plain_refuses_huge_lengths_before_reading_them() -> None:
    session = FakeSession()
    security = PlainSecurity(USERS)
    security.start(session)
    run(security, session, struct.pack("!II", 5, 0xFFFFFFFF))
    assert session.outcome is not None and session.outcome[0] == "refused"


def test_vencrypt_exchange_then_inner_type_inside_tls() -> None:
    session = FakeSession()
    settings = SecuritySettings(password=b"pw", users=USERS, tls=object())
    security = settings.make(SEC_VENCRYPT)
    security.start(session)
    assert session.take() == b"\0\2"
    assert run(security, session, b"\0\2") == 2
    assert session.take() == b"\0\2" + struct.pack("!II", vencrypt.X509_PLAIN, vencrypt.X509_VNC)
    assert run(security, session, struct.pack("!I", vencrypt.X509_VNC) + b"tls hello") == 4
    assert session.take() == b"\1" and session.tls_then is not None
    assert session.outcome is None
    session.tls_then()  # TLS is up: the inner VNC authentication starts inside it
    challenge = session.take()
    assert len(challenge) == 16
    run(security, session, auth.vnc_auth_response(challenge, b"pw"))
    assert session.outcome == ("ok", False, None)


@pytest.mark.parametrize(
    "data, answer, why",
    [
        (b"\0\1", b"\xff", "VeNCrypt version 0.1 not supported (only 0.2)"),
        (b"\0\2" + struct.pack("!I", vencrypt.X509_NONE), b"\0", "subtype 260 was not offered"),
    ],
)
def test_vencrypt_refusals(data: bytes, answer: bytes, why: str) -> None:
    session = FakeSession()
    security = SecuritySettings(password=b"pw", tls=object()).make(SEC_VENCRYPT)
    security.start(session)
    session.take()
    run(security, session, data)
    assert session.take().endswith(answer)
    assert session.outcome is not None and why in session.outcome[1]
    assert session.tls_then is None


@pytest.mark.parametrize(
    "kw, types",
    [
        ({}, (SEC_NONE,)),
        ({"password": b"pw"}, (SEC_VNC_AUTH,)),
        ({"users": USERS}, (SEC_VNC_AUTH,)),  # no TLS: nobody can pass, nobody gets in free
        ({"tls": object()}, (SEC_VENCRYPT,)),
        ({"tls": object(), "cleartext": True}, (SEC_VENCRYPT, SEC_NONE)),
        ({"tls": object(), "users": USERS, "cleartext": True}, (SEC_VENCRYPT,)),
    ],
)
def test_types_offered(kw: dict[str, Any], types: tuple[int, ...]) -> None:
    settings = SecuritySettings(**kw)
    assert settings.types() == types
    for number in types:
        assert settings.make(number).number == number


def test_stage_names_where_the_exchange_stands() -> None:
    """The stage appears in the log line of a connection lost mid-exchange."""
    session = FakeSession()
    security = SecuritySettings(users=USERS, tls=object()).make(SEC_VENCRYPT)
    security.start(session)
    assert security.stage == "vencrypt-version"
    run(security, session, b"\0\2")
    assert security.stage == "vencrypt-subtype"
    run(security, session, struct.pack("!I", vencrypt.X509_PLAIN))
    assert session.tls_then is not None
    session.tls_then()
    assert security.stage == "plain"
    assert VncAuthSecurity(None, b"v").stage == "vncauth"
