"""VNC authentication: DES response against independent references, password file rules."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from vncdotool import rfb as vncdotool_rfb

from vncmux.config import ConfigError
from vncmux.rfb import auth


def _reverse(byte: int) -> int:
    # Written differently from the module's loop on purpose: string reversal of the bits.
    return int(f"{byte:08b}"[::-1], 2)


@pytest.mark.parametrize("password", ["", "a", "secret", "12345678", "pass wd", "\x7f~!@#$%^"])
def test_response_matches_vncdotool_client(password: str) -> None:
    """vncdotool's client code computes the same answer to the same challenge."""
    challenge = os.urandom(16)
    theirs = vncdotool_rfb.des_encrypt(vncdotool_rfb._vnc_des(password), challenge)
    assert auth.vnc_auth_response(challenge, password.encode("latin-1")) == theirs


def test_des_known_answer_with_bit_reversed_key() -> None:
    """The classic DES test vector (key 133457799BBCDFF1, 0123456789ABCDEF → 85E813540F0AB405):
    the password is the key with each byte's bits reversed, since RFB reverses them back."""
    key = bytes.fromhex("133457799BBCDFF1")
    password = bytes(_reverse(b) for b in key)
    challenge = bytes.fromhex("0123456789ABCDEF") * 2
    expected = bytes.fromhex("85E813540F0AB405") * 2
    assert auth.vnc_auth_response(challenge, password) == expected


def test_password_truncated_and_padded_to_eight() -> None:
    challenge = bytes(range(16))
    assert auth.vnc_auth_response(challenge, b"abcdefghXYZ") == auth.vnc_auth_response(
        challenge, b"abcdefgh"
    )
    assert auth.vnc_auth_response(challenge, b"abc") == auth.vnc_auth_response(
        challenge, b"abc\0\0\0\0\0"
    )
    assert auth.vnc_auth_response(challenge, b"abc") != auth.vnc_auth_response(challenge, b"abd")


def test_check_response() -> None:
    challenge = auth.make_challenge()
    assert len(challenge) == 16
    good = auth.vnc_auth_response(challenge, b"pw")
    assert auth.check_response(challenge, good, b"pw")
    assert not auth.check_response(challenge, good, b"other")
    assert not auth.check_response(challenge, good[:-1] + bytes([good[-1] ^ 1]), b"pw")
    assert not auth.check_response(challenge, good[:8], b"pw")


def test_challenge_must_be_16_bytes() -> None:
    with pytest.raises(ValueError):
        auth.vnc_auth_response(b"short", b"pw")


def test_challenges_are_random() -> None:
    assert auth.make_challenge() != auth.make_challenge()


def test_read_password_file_first_line(tmp_path: Path) -> None:
    p = tmp_path / "pw"
    p.write_bytes(b"s3cret\nsecond line\n")
    assert auth.read_password_file(str(p)) == b"s3cret"
    p.write_bytes(b"crlf\r\n")
    assert auth.read_password_file(str(p)) == b"crlf"
    p.write_bytes(b"12345678")
    assert auth.read_password_file(str(p)) == b"12345678"


def test_read_password_file_too_long(tmp_path: Path) -> None:
    p = tmp_path / "pw"
    p.write_bytes(b"123456789\n")
    with pytest.raises(ConfigError) as e:
        auth.read_password_file(str(p))
    assert str(e.value) == (
        f"password in {p} is longer than 8 characters; VNC authentication uses only 8"
    )
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"", b"\n", b"\nsecond\n"])
def test_read_password_file_empty(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "pw"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match="empty"):
        auth.read_password_file(str(p))


def test_read_password_file_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match="cannot read password file"):
        auth.read_password_file(missing)


def test_generate_password() -> None:
    seen = set()
    for _ in range(50):
        pw = auth.generate_password()
        assert len(pw) == 8
        assert set(pw) <= set(string.ascii_letters + string.digits)
        assert not set(pw) & set("0O1lI")
        seen.add(pw)
    assert len(seen) == 50
