"""The handshake steps before the security type, as pure functions."""

from __future__ import annotations

import struct

from vncmux.rfb.handshake import Step, choice_step, version_step

NONE, VNC, VENCRYPT = 1, 2, 19


def reason(text: bytes) -> bytes:
    return struct.pack("!I", len(text)) + text


def test_version_38_lists_the_types() -> None:
    assert version_step(b"RFB 003.889\n", (VENCRYPT, VNC), 0) == ((3, 8), Step(b"\2\x13\2"))


def test_version_33_server_picks_a_cleartext_type() -> None:
    assert version_step(b"RFB 003.003\n", (VENCRYPT, VNC), 0) == (
        (3, 3),
        Step(b"\0\0\0\2", start=VNC),
    )
    version, step = version_step(b"RFB 003.005\n", (VENCRYPT,), 0)
    assert version == (3, 3) and step.start is None
    assert step.refused == "this server requires VeNCrypt (TLS), which RFB 3.3 cannot do"
    assert step.reply == b"\0\0\0\0" + reason(step.refused.encode())


def test_refusals() -> None:
    assert version_step(b"GET / HTTP/1", (NONE,), 0) == (
        None,
        Step(refused="not an RFB client (sent b'GET / HTTP/1')"),
    )
    text = b"unsupported RFB protocol version 4.0"
    assert version_step(b"RFB 004.000\n", (NONE,), 0) == (
        (4, 0),
        Step(b"\0" + reason(text), text.decode()),
    )
    version, step = version_step(b"RFB 003.008\n", (NONE,), 12.4)
    blocked = b"too many authentication failures; try again later"
    assert step == Step(b"\0" + reason(blocked), blocked.decode() + " (blocked for 12 s more)")


def test_choice() -> None:
    assert choice_step(VNC, (VENCRYPT, VNC), (3, 8)) == Step(start=VNC)
    refused = choice_step(NONE, (VNC,), (3, 8))
    assert refused.reply == b"\0\0\0\1" + reason(b"security type not offered")
    assert refused.refused == "security type 1 was not offered (offered 2)"
    assert choice_step(NONE, (VNC,), (3, 7)).reply == b""  # 3.7 just closes
