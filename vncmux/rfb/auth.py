"""VNC Authentication (RFB security type 2) and the password that feeds it.

RFB's only built-in password scheme: the server sends a 16-byte random challenge, the client
answers with the challenge DES-ECB-encrypted under the password.  The password is cut or
zero-padded to 8 bytes and, a quirk every implementation shares, each key byte has its bits
reversed before standard DES sees it.  DES comes from ``cryptography`` (no DES of our own).

Other servers silently truncate longer passwords; we refuse them when reading the file, so a
user never believes a 12-character password protects them when only 8 count.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from vncmux.errors import ConfigError

try:  # cryptography >= 43 moved the old ciphers to "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES as _TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[no-redef]
        TripleDES as _TripleDES,
    )

CHALLENGE_SIZE = 16
PASSWORD_SIZE = 8

# No 0/O, 1/l/I: a generated password is read off a terminal and typed into a viewer.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _reverse_bits(byte: int) -> int:
    out = 0
    for i in range(8):
        if byte & (1 << i):
            out |= 0x80 >> i
    return out


def des_key(password: bytes) -> bytes:
    """The 8-byte DES key RFB derives from ``password``: truncated/zero-padded, bits reversed."""
    padded = password[:PASSWORD_SIZE].ljust(PASSWORD_SIZE, b"\0")
    return bytes(_reverse_bits(b) for b in padded)


def vnc_auth_response(challenge: bytes, password: bytes) -> bytes:
    """What a client holding ``password`` answers to ``challenge`` (16 bytes → 16 bytes)."""
    if len(challenge) != CHALLENGE_SIZE:
        raise ValueError(f"VNC challenge must be {CHALLENGE_SIZE} bytes, not {len(challenge)}")
    key = des_key(password)
    # Triple DES with K1 = K2 = K3 is single DES; the 24-byte form avoids the deprecation
    # warning cryptography gives for 8-byte TripleDES keys.
    algorithm: Any = _TripleDES(key * 3)
    encryptor = Cipher(algorithm, modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def make_challenge() -> bytes:
    """A fresh random challenge for one authentication attempt."""
    return secrets.token_bytes(CHALLENGE_SIZE)


def check_response(challenge: bytes, response: bytes, password: bytes) -> bool:
    """True if ``response`` proves knowledge of ``password``; compared in constant time."""
    expected = vnc_auth_response(challenge, password)
    return hmac.compare_digest(expected, bytes(response))


def read_password_file(path: str) -> bytes:
    """The password in ``path``: its first line without the line ending.

    Raises ConfigError (one line) when the file cannot be read, is empty, or the password is
    longer than the 8 characters VNC authentication can use."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError as e:
        raise ConfigError(f"cannot read password file {path}: {e.strerror or e}") from None
    password = first.rstrip(b"\r\n")
    if not password:
        raise ConfigError(f"password file {path} is empty (the password is its first line)")
    try:
        chars = len(password.decode("utf-8"))
    except UnicodeDecodeError:
        chars = len(password)
    if chars > PASSWORD_SIZE or len(password) > PASSWORD_SIZE:
        raise ConfigError(
            f"password in {path} is longer than {PASSWORD_SIZE} characters; "
            f"VNC authentication uses only {PASSWORD_SIZE}"
        )
    return password


def generate_password() -> str:
    """A random 8-character password from an alphabet without look-alike characters."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_SIZE))
