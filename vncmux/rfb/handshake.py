"""The RFB handshake up to the security type: the version, the offer, the choice (pure).

Each step is a function from what the client sent to a ``Step``: the bytes to answer, and
then either a refusal (the reason, for the log line that closes the connection) or the
security type to run.  The types themselves are in ``vncmux.rfb.security``; the session
(``vncmux.rfb.session``) applies the steps and owns the states.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vncmux.rfb import writer
from vncmux.rfb.security import SEC_NONE, SEC_VNC_AUTH

_VERSION_RE = re.compile(rb"RFB (\d{3})\.(\d{3})\n\Z")
VERSION_SIZE = 12


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


@dataclass(frozen=True)
class Step:
    """Write ``reply``; then close, logging ``refused``, or run security type ``start``
    (None: wait for the client's next message)."""

    reply: bytes = b""
    refused: str | None = None
    start: int | None = None


def version_step(
    line: bytes, offered: Sequence[int], blocked_for: float
) -> tuple[tuple[int, int] | None, Step]:
    """The version to speak and the answer to the client's ProtocolVersion ``line``.

    ``offered``: the security types of this server; ``blocked_for``: seconds the client's
    host is still on the authentication blacklist (it is told, then closed).  RFB 3.3 has
    no list: the server picks the type, and only None and VNC auth exist there."""
    version = negotiate_version(line)
    if version is None:
        return None, Step(refused=f"not an RFB client (sent {line!r})")
    if version[0] != 3:
        reason = f"unsupported RFB protocol version {version[0]}.{version[1]}"
        return version, Step(writer.version_refused(reason), reason)
    if blocked_for:
        reason = "too many authentication failures; try again later"
        return version, Step(
            writer.security_refused(reason, version),
            f"{reason} (blocked for {blocked_for:.0f} s more)",
        )
    if version != (3, 3):
        return version, Step(writer.security_types(offered))
    cleartext = [t for t in offered if t in (SEC_NONE, SEC_VNC_AUTH)]
    if not cleartext:
        reason = "this server requires VeNCrypt (TLS), which RFB 3.3 cannot do"
        return version, Step(writer.security_refused(reason, version), reason)
    return version, Step(writer.security_type(cleartext[0]), start=cleartext[0])


def choice_step(choice: int, offered: Sequence[int], version: tuple[int, int]) -> Step:
    """The answer to the client's choice of security type (RFB 3.7+).

    A type that was not offered is refused (3.8 tells why); taking it anyway would let a
    client pick a weaker type than the server requires (CVE-2006-2369)."""
    if choice in offered:
        return Step(start=choice)
    listed = ", ".join(str(t) for t in offered)
    reply = b""
    if version == (3, 8):
        reply = writer.security_result_failed(version, b"security type not offered")
    return Step(reply, f"security type {choice} was not offered (offered {listed})")
