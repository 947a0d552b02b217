"""VeNCrypt, view-only passwords, the auth failure delay and the connection limits of the RFB
server, driven through StringTransport and Clock (the real TLS runs in
tests/robustness/test_security_e2e.py)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import Clock, StringTransport

from tests.support.fake_console import FakeConsole as FakeDisplay
from tests.support.rfb_client import Client, server_init
from vncmux import preflight
from vncmux.config import ConfigError, build_config, exposure_warnings
from vncmux.rfb import auth, vencrypt
from vncmux.rfb.server import RFBFactory, State
from vncmux.rfb.tls import context_factory
from vncmux.specs import TlsSettings


class TLSTransport(StringTransport):
    """A StringTransport that records startTLS and what was written before and after it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.tls_context: Any = None
        self.clear_text = b""

    def startTLS(self, context: Any) -> None:
        self.tls_context = context
        self.clear_text = self.value()
        self.clear()


class Conn(Client):
    """A fake viewer connection whose transport can start TLS."""

    tr: TLSTransport

    def __init__(self, factory: RFBFactory, host: str = "127.0.0.1", port: int = 40000) -> None:
        super().__init__(factory, host, port, transport=TLSTransport)


TLS = object()  # stands for a context factory: the fake transport only records it


def make(**kw: Any) -> tuple[RFBFactory, FakeDisplay, Clock]:
    display = FakeDisplay()
    clock = Clock()
    return RFBFactory(display, clock=clock, **kw), display, clock


def to_subtypes(c: Conn) -> list[int]:
    """Version 3.8, choose VeNCrypt, version 0.2; the offered subtypes."""
    assert c.take() == b"RFB 003.008\n"
    c.send(b"RFB 003.008\n")
    types = c.take()
    assert types[0] >= 1 and 19 in types[1:]
    c.send(b"\x13")
    assert c.take() == b"\x00\x02"
    c.send(b"\x00\x02")
    out = c.take()
    assert out[0] == 0  # first ack: 0 = OK
    count = out[1]
    assert len(out) == 2 + 4 * count
    return [struct.unpack_from("!I", out, 2 + 4 * i)[0] for i in range(count)]


# -- what is offered ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, types",
    [
        ({}, [1]),
        ({"password": b"pw"}, [2]),
        ({"view_password": b"v"}, [2]),
        ({"tls": TLS}, [19]),
        ({"tls": TLS, "password": b"pw"}, [19]),
        ({"tls": TLS, "password": b"pw", "cleartext": True}, [19, 2]),
        ({"tls": TLS, "cleartext": True}, [19, 1]),
        ({"tls": TLS, "users": vencrypt.Users([]), "cleartext": True}, [19]),
    ],
)
def test_security_types_offered(kw: dict[str, Any], types: list[int]) -> None:
    factory, _, _ = make(**kw)
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    out = c.take()
    assert list(out[1:]) == types and out[0] == len(types)


def test_tls_only_refuses_rfb_33() -> None:
    factory, _, _ = make(tls=TLS, password=b"pw")
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.003\n")
    out = c.take()
    assert out[:4] == b"\0\0\0\0" and b"VeNCrypt" in out
    assert c.closed


def test_cleartext_not_offered_cannot_be_chosen() -> None:
    factory, _, _ = make(tls=TLS, password=b"pw")
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    c.take()
    c.send(b"\x02")  # VNC auth in clear text, not offered: CVE-2006-2369
    assert c.take()[:4] == b"\0\0\0\x01"
    assert c.closed and c.tr.tls_context is None


@pytest.mark.parametrize(
    "password, users, subtypes",
    [
        (None, False, [vencrypt.X509_NONE]),
        (b"pw", False, [vencrypt.X509_VNC]),
        (None, True, [vencrypt.X509_PLAIN]),
        (b"pw", True, [vencrypt.X509_PLAIN, vencrypt.X509_VNC]),
    ],
)
def test_subtypes(password: bytes | None, users: bool, subtypes: list[int]) -> None:
    factory, _, _ = make(
        tls=TLS,
        password=password,
        users=vencrypt.Users([vencrypt.User("a", b"b")]) if users else None,
    )
    assert to_subtypes(Conn(factory)) == subtypes


def test_vencrypt_wrong_version_refused() -> None:
    factory, _, _ = make(tls=TLS)
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.008\n")
    c.take()
    c.send(b"\x13")
    c.take()
    c.send(b"\x00\x01")
    assert c.take() == b"\xff"
    assert c.closed


def test_vencrypt_subtype_not_offered_refused() -> None:
    factory, _, _ = make(tls=TLS, password=b"pw")
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_NONE))  # no password check: not offered
    assert c.take() == b"\x00"  # second ack: 0 = refused
    assert c.closed and c.tr.tls_context is None


# -- the TLS switch and the inner authentication ----------------------------------------------


def test_x509none_starts_tls_then_security_result() -> None:
    factory, display, _ = make(tls=TLS)
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_NONE))
    assert c.tr.clear_text == b"\x01"  # ack 1 = OK, in clear text before TLS
    assert c.tr.tls_context is TLS
    assert c.take() == b"\0\0\0\0"  # SecurityResult inside TLS
    c.send(b"\x01")
    assert c.take() == server_init(display)
    assert c.proto.state is State.NORMAL


def test_bytes_after_subtype_go_to_tls_not_rfb() -> None:
    """A client that pipelines its TLS hello behind the subtype: those bytes are handed to
    the TLS layer (transport.protocol), never parsed as RFB."""
    factory, _, _ = make(tls=TLS)
    c = Conn(factory)
    handed: list[bytes] = []

    class FakeTLSProtocol:
        def dataReceived(self, data: bytes) -> None:
            handed.append(data)

    c.tr.protocol = FakeTLSProtocol()
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_NONE) + b"\x16\x03\x01hello")
    assert handed == [b"\x16\x03\x01hello"]
    assert c.proto.state is State.CLIENTINIT


def vnc_inside(factory: RFBFactory, typed: bytes) -> Conn:
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_VNC))
    assert c.tr.clear_text == b"\x01"
    challenge = c.take()
    assert len(challenge) == 16
    c.send(auth.vnc_auth_response(challenge, typed))
    return c


def test_x509vnc_right_and_wrong_password() -> None:
    factory, display, _ = make(tls=TLS, password=b"pw")
    good = vnc_inside(factory, b"pw")
    assert good.take() == b"\0\0\0\0"
    good.send(b"\x01")
    assert good.take() == server_init(display)
    bad = vnc_inside(factory, b"nope")
    assert bad.take() == b"\0\0\0\x01" + struct.pack("!I", 21) + b"authentication failed"
    assert bad.closed


def plain_inside(factory: RFBFactory, user: str, password: str) -> Conn:
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_PLAIN))
    assert c.tr.clear_text == b"\x01"
    c.send(vencrypt.plain_credentials(user, password))
    return c


def test_x509plain_users_and_view_only() -> None:
    users = vencrypt.Users(
        [vencrypt.User("alice", b"longer than eight"), vencrypt.User("bob", b"pw", view_only=True)]
    )
    factory, display, _ = make(tls=TLS, users=users)
    a = plain_inside(factory, "alice", "longer than eight")
    assert a.take() == b"\0\0\0\0"
    assert a.proto.user == "alice" and not a.proto.view_only
    b = plain_inside(factory, "bob", "pw")
    assert b.take() == b"\0\0\0\0" and b.proto.view_only
    for user, password in (("alice", "longer than eigh"), ("carol", "x"), ("bob", "")):
        c = plain_inside(factory, user, password)
        assert c.take().startswith(b"\0\0\0\x01") and c.closed


def test_plain_huge_lengths_close_without_allocating() -> None:
    factory, _, _ = make(tls=TLS, users=vencrypt.Users([vencrypt.User("a", b"b")]))
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_PLAIN))
    c.send(struct.pack("!II", 0xFFFFFFFF, 5))
    assert c.closed
    assert len(c.proto._buf) == 0


def test_plain_credentials_one_byte_at_a_time() -> None:
    factory, _, _ = make(tls=TLS, users=vencrypt.Users([vencrypt.User("al", b"pw")]))
    c = Conn(factory)
    to_subtypes(c)
    c.send(struct.pack("!I", vencrypt.X509_PLAIN))
    for byte in vencrypt.plain_credentials("al", "pw"):
        assert not c.take()
        c.send(bytes([byte]))
    assert c.take() == b"\0\0\0\0"


# -- view-only password ------------------------------------------------------------------------


def vnc_auth(factory: RFBFactory, typed: bytes, host: str = "127.0.0.1") -> Conn:
    c = Conn(factory, host=host)
    c.take()
    c.send(b"RFB 003.008\n")
    c.take()
    c.send(b"\x02")
    c.send(auth.vnc_auth_response(c.take(), typed))
    return c


def test_view_password_makes_viewer_view_only() -> None:
    factory, display, _ = make(password=b"full", view_password=b"look")
    watcher = vnc_auth(factory, b"look")
    assert watcher.take() == b"\0\0\0\0"
    watcher.send(b"\x01")
    watcher.take()
    assert watcher.proto.view_only
    assert watcher.proto.session is not None and watcher.proto.session.view_only  # told
    watcher.send(struct.pack("!BBxxI", 4, 1, ord("a")))  # key
    watcher.send(struct.pack("!BBHH", 5, 2, 10, 10))  # middle click
    watcher.send(struct.pack("!BxxxI", 6, 3) + b"abc")  # paste buffer
    watcher.send(struct.pack("!BBxxI", 4, 1, 0xFF63))  # Insert ...
    assert display.inputs == []
    assert not watcher.closed  # still watching
    driver = vnc_auth(factory, b"full")
    assert driver.take() == b"\0\0\0\0"
    driver.send(b"\x01" + struct.pack("!BBxxI", 4, 1, ord("a")))
    assert not driver.proto.view_only
    assert display.inputs == [("key", ord("a"), True)]


def test_view_only_password_alone() -> None:
    factory, _, _ = make(view_password=b"look")
    assert vnc_auth(factory, b"look").take() == b"\0\0\0\0"
    assert vnc_auth(factory, b"full", host="10.0.0.2").take().startswith(b"\0\0\0\x01")


# -- failures: delay and blacklist -------------------------------------------------------------


def test_failure_answered_after_delay() -> None:
    factory, _, clock = make(password=b"pw", auth_failure_delay=0.1)
    c = vnc_auth(factory, b"wrong")
    assert c.take() == b"" and not c.closed
    c.send(b"\x01" * 50)  # anything meanwhile is ignored
    clock.advance(0.09)
    assert c.take() == b"" and not c.closed
    clock.advance(0.02)
    assert c.take().startswith(b"\0\0\0\x01")
    assert c.closed


def test_success_is_not_delayed() -> None:
    factory, _, _ = make(password=b"pw", auth_failure_delay=0.1)
    assert vnc_auth(factory, b"pw").take() == b"\0\0\0\0"


def test_disconnect_during_delay_cancels_timer() -> None:
    factory, _, clock = make(password=b"pw", auth_failure_delay=0.1)
    c = vnc_auth(factory, b"wrong")
    c.proto.connectionLost()
    assert clock.getDelayedCalls() == [] or all(not d.active() for d in clock.getDelayedCalls())


def test_blacklisted_host_refused_even_with_right_password() -> None:
    """Connections opened before the fifth failure do not get a free try afterwards."""
    factory, _, clock = make(password=b"pw", handshake_timeout=100)
    waiting = []
    for port in range(10):  # all reach the challenge first
        c = Conn(factory, port=41000 + port)
        c.take()
        c.send(b"RFB 003.008\n")
        c.take()
        c.send(b"\x02")
        waiting.append((c, c.take()))
    for c, challenge in waiting[:5]:
        c.send(auth.vnc_auth_response(challenge, b"bad"))
        assert c.take().startswith(b"\0\0\0\x01")
    assert factory.blockedFor(IPv4Address("TCP", "127.0.0.1", 1)) == pytest.approx(10.0)
    c, challenge = waiting[5]
    c.send(auth.vnc_auth_response(challenge, b"pw"))
    assert c.take().startswith(b"\0\0\0\x01") and c.closed
    # the blacklist doubles: after 10 s one more failure blocks for 20 s
    clock.advance(10.5)
    c, challenge = waiting[6]
    c.send(auth.vnc_auth_response(challenge, b"bad"))
    assert factory.blockedFor(IPv4Address("TCP", "127.0.0.1", 1)) == pytest.approx(20.0)
    clock.advance(20.5)
    c, challenge = waiting[7]
    c.send(auth.vnc_auth_response(challenge, b"pw"))
    assert c.take() == b"\0\0\0\0"
    assert factory.blockedFor(IPv4Address("TCP", "127.0.0.1", 1)) == 0


# -- limits ------------------------------------------------------------------------------------


def test_pending_handshakes_capped_oldest_evicted() -> None:
    factory, _, _ = make(max_pending=3)
    done = Conn(factory, port=1)
    done.take()
    done.send(b"RFB 003.008\n\x01\x01")
    assert done.proto.state is State.NORMAL
    pending = [Conn(factory, port=10 + i) for i in range(3)]
    assert not any(p.closed for p in pending)
    newest = Conn(factory, port=20)
    assert pending[0].closed and pending[0].tr.disconnecting
    assert not any(p.closed for p in pending[1:]) and not newest.closed
    assert not done.closed  # a finished session is never evicted


def test_output_backlog_capped() -> None:
    factory, display, _ = make(max_output=10_000)
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.008\n\x01\x01")
    c.take()
    c.send(struct.pack("!BxHi", 2, 1, -312))  # announces Fence
    c.proto.pauseProducing()  # the transport is full
    fence = struct.pack("!BxxxIB", 248, 1 << 31, 64) + b"x" * 64
    sent = 0
    while not c.closed and sent < 1000:
        c.send(fence)
        sent += 1
    assert c.closed
    assert len(c.tr.value()) <= 10_000 + 100
    assert sent < 200


def test_output_backlog_resets_on_resume() -> None:
    factory, _, _ = make(max_output=10_000)
    c = Conn(factory)
    c.take()
    c.send(b"RFB 003.008\n\x01\x01")
    c.send(struct.pack("!BxHi", 2, 1, -312))
    fence = struct.pack("!BxxxIB", 248, 1 << 31, 64) + b"x" * 64
    for _ in range(50):
        c.proto.pauseProducing()
        for _ in range(100):
            c.send(fence)
        c.proto.resumeProducing()
    assert not c.closed


# -- config / TLS settings --------------------------------------------------------------------


def tls_files(directory: Path) -> Any:
    """Throwaway CA/server/client certificates (tests.support.tls_files makes them)."""
    from tests.support.tls_files import TLSFiles

    return TLSFiles(directory)


def test_context_factory_checks_files(tmp_path: Path) -> None:
    files = tls_files(tmp_path)
    assert context_factory(TlsSettings(str(files.cert), str(files.key))) is not None
    assert context_factory(TlsSettings(str(files.cert), str(files.key), str(files.ca), True))
    with pytest.raises(ConfigError, match="does not match"):
        context_factory(TlsSettings(str(files.cert), str(files.client_key)))
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        context_factory(TlsSettings(str(files.key), str(files.key)))
    with pytest.raises(ConfigError, match="No such file"):
        context_factory(TlsSettings(str(tmp_path / "nope"), str(files.key)))


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# accounts\nalice:s3cret:with:colons-not-allowed\n")
    with pytest.raises(ConfigError, match="line 2"):
        vencrypt.read_users_file(str(path))
    path.write_text("# accounts\n\nalice:s3cret\nbob:pw:view\n")
    users = vencrypt.read_users_file(str(path))
    assert len(users) == 2
    bob = users.check(b"bob", b"pw")
    assert bob is not None and bob.view_only
    assert users.check(b"alice", b"s3cret") is not None
    assert users.check(b"alice", b"pw") is None and users.check(b"\xff", b"pw") is None
    path.write_text("alice:a\nalice:b\n")
    with pytest.raises(ConfigError, match="twice"):
        vencrypt.read_users_file(str(path))


def test_build_config_security_options(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("a:b\n")
    with pytest.raises(ConfigError, match="needs TLS"):
        build_config(device=None, users_file=str(users), shell="/bin/sh")
    with pytest.raises(ConfigError, match="cleartext"):
        build_config(device=None, vnc="127.0.0.1:0,cleartext=on", shell="/bin/sh")
    with pytest.raises(ConfigError, match="view-password-file"):
        preflight.check(
            build_config(device=None, view_password_file=str(tmp_path / "nope"), shell="/bin/sh")
        )
    config = build_config(
        device=None,
        vnc="127.0.0.1:0,tls-cert=/c",
        users_file=str(users),
        sockets_ro=["tcp:4555:interface=127.0.0.1"],
        shell="/bin/sh",
    )
    assert config.users_file == str(users)
    assert config.servers[0].readonly


@pytest.mark.parametrize(
    "vnc, sockets, password, expected",
    [
        ("127.0.0.1:0", ["unix:/tmp/x", "tcp:1:interface=127.0.0.1"], False, 0),
        (":0", [], False, 1),
        (":0", [], True, 0),
        ("[::1]:0", ["tcp6:1:interface=\\:\\:1"], False, 0),
        ("10.0.0.1:0", ["tcp:4555"], False, 2),
        ("none", ["ssl:4556:privateKey={key}:certKey={cert}"], False, 1),
        (":0,tls-cert=/c,tls-ca=/a,x509verify=on", ["tcp:1:interface=0.0.0.0"], False, 1),
    ],
)
def test_exposure_warnings(
    tmp_path: Path, vnc: str, sockets: list[str], password: bool, expected: int
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    if any("{key}" in s for s in sockets):
        files = tls_files(tmp_path)
        sockets = [s.format(key=files.key, cert=files.cert) for s in sockets]
    config = build_config(
        device="tcp:127.0.0.1:1",
        vnc=vnc,
        sockets=sockets,
        password_file=str(pw) if password else None,
    )
    warnings = exposure_warnings(config)
    assert len(warnings) == expected, warnings
    assert all("WITHOUT AUTHENTICATION" in w for w in warnings)


# -- found with TigerVNC 1.12 over VeNCrypt ---------------------------------------------------


def test_viewer_clipboard_caps_are_not_read_as_provide() -> None:
    """TigerVNC announces its extended clipboard caps with the provide bit among the action
    bits; that message must not be inflated as clipboard data."""
    from twisted.logger import capturedLogs

    from tests.support.rfb_client import ext_clipboard_client, ext_cut, paste_buffer

    c, display, _factory = ext_clipboard_client()
    flags = (1 << 0) | (1 << 24) | (1 << 25) | (1 << 26) | (1 << 27) | (1 << 28)
    with capturedLogs() as events:
        c.send(ext_cut(flags, struct.pack("!I", 20 << 20)))
    assert not [e for e in events if "bad clipboard data" in e.get("log_format", "")]
    assert paste_buffer(c) == "" and not c.closed
    assert c.take() == b""  # caps need no answer
