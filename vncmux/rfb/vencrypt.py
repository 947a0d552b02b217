"""VeNCrypt (RFB security type 19): constants, subtype choice and the Plain credentials.

VeNCrypt wraps the rest of the RFB handshake in TLS.  After the client picks type 19 the
server sends its VeNCrypt version (0.2); the client answers with the version it speaks and
the server acknowledges with a U8 where **0 means OK**; then the server lists its subtypes
(U8 count, U32 each), the client picks one (U32) and the server acknowledges again, this time
with **1 meaning OK** (the two acks use opposite conventions).  TLS then starts on the same
connection and the inner authentication runs inside it: nothing (X509None), VNC
authentication (X509Vnc) or a user name and password in clear text inside TLS (X509Plain).

This module is pure (no I/O): what to offer for a given configuration, and the parsing of the
Plain credentials message and of the users file.  The exchange itself runs in
``vncmux.rfb.security.vencrypt``; the TLS context comes from ``vncmux.rfb.tls``.

Anonymous TLS (TLSNone/TLSVnc/TLSPlain, 257-259) is not offered: it needs anonymous
Diffie-Hellman cipher suites, which OpenSSL 3 only enables at security level 0 and which
give no protection against a man in the middle; certificates (X509*) are required instead.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from vncmux.errors import ConfigError

SEC_VENCRYPT = 19
VERSION = (0, 2)

PLAIN = 256
TLS_NONE = 257
TLS_VNC = 258
TLS_PLAIN = 259
X509_NONE = 260
X509_VNC = 261
X509_PLAIN = 262

NAMES = {
    PLAIN: "Plain",
    TLS_NONE: "TLSNone",
    TLS_VNC: "TLSVnc",
    TLS_PLAIN: "TLSPlain",
    X509_NONE: "X509None",
    X509_VNC: "X509Vnc",
    X509_PLAIN: "X509Plain",
}

# Acks: after the version exchange 0 = OK; after the subtype choice 1 = OK.
VERSION_OK = 0
VERSION_REFUSED = 0xFF
SUBTYPE_OK = 1
SUBTYPE_REFUSED = 0

# The Plain credentials: U32 user length, U32 password length, then both.  Nobody needs
# more than this; a larger claim closes the connection before anything is allocated.
MAX_CREDENTIAL = 1024
_LENGTHS = struct.Struct("!II")


def subtypes(*, password: bool, users: bool) -> tuple[int, ...]:
    """The X.509 subtypes to offer, strongest inner authentication first.

    ``password``: a VNC password (or view-only password) exists, so X509Vnc;
    ``users``: a users file exists, so X509Plain.  With neither, X509None (the channel is
    encrypted but whoever connects gets in, unless client certificates are verified)."""
    offer: list[int] = []
    if users:
        offer.append(X509_PLAIN)
    if password:
        offer.append(X509_VNC)
    if not offer:
        offer.append(X509_NONE)
    return tuple(offer)


def subtype_list(offer: tuple[int, ...]) -> bytes:
    """The server's subtype message: U8 count, then each subtype as U32."""
    return bytes([len(offer)]) + b"".join(struct.pack("!I", s) for s in offer)


def plain_lengths(header: bytes) -> tuple[int, int]:
    """(user length, password length) from the 8-byte Plain header; ValueError past the cap."""
    user_len, pass_len = _LENGTHS.unpack(header)
    if user_len > MAX_CREDENTIAL or pass_len > MAX_CREDENTIAL:
        raise ValueError(
            f"Plain credentials of {user_len}+{pass_len} bytes (at most {MAX_CREDENTIAL} each)"
        )
    return user_len, pass_len


def plain_credentials(user: str, password: str) -> bytes:
    """What a client sends for Plain (for tests and tools)."""
    u, p = user.encode("utf-8"), password.encode("utf-8")
    return _LENGTHS.pack(len(u), len(p)) + u + p


@dataclass(frozen=True)
class User:
    """One entry of the users file: a name, its password, and whether it may only watch."""

    name: str
    password: bytes
    view_only: bool = False


class Users:
    """The accounts X509Plain checks against.  Lookup compares passwords in constant time
    and always does one comparison, so an unknown name costs as long as a wrong password."""

    def __init__(self, users: list[User]) -> None:
        self._by_name = {u.name: u for u in users}

    def __len__(self) -> int:
        return len(self._by_name)

    def check(self, name: bytes, password: bytes) -> User | None:
        """The user if ``name``/``password`` match an entry, else None."""
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        user = self._by_name.get(text)
        expected = user.password if user is not None else b"\0" * 32
        ok = hmac.compare_digest(expected, bytes(password))
        return user if ok and user is not None else None


def read_users_file(path: str) -> Users:
    """``user:password[:view]`` per line; ``#`` comments and blank lines skipped.

    ``view`` (or ``ro``) in the third field makes that user view-only.  Raises ConfigError
    (one line, naming the file and line) for anything else."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read users file {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"users file {path} is not UTF-8 text") from None
    users: list[User] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(":")
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise ConfigError(f"users file {path} line {number}: expected user:password[:view]")
        flag = fields[2].strip().lower() if len(fields) == 3 else ""
        if flag not in ("", "view", "ro"):
            raise ConfigError(
                f"users file {path} line {number}: unknown flag {fields[2]!r} (only 'view')"
            )
        if fields[0] in seen:
            raise ConfigError(f"users file {path} line {number}: user {fields[0]!r} twice")
        seen.add(fields[0])
        users.append(User(fields[0], fields[1].encode("utf-8"), view_only=bool(flag)))
    if not users:
        raise ConfigError(f"users file {path} has no user:password line")
    return Users(users)
