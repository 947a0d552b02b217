"""RFB security types: one object per type, behind ``ISecurity``, run over ``ISecuritySession``.

After the version and the choice of type, the session hands the connection to the chosen
type's object: it writes what the type sends first, parses what the client answers (whole
units only, like the message reader) and ends by telling the session the outcome --
proceed without authentication, authenticated (possibly view-only, possibly as a user), or
failed.  What every type shares stays in the session: the SecurityResult for success,
the delayed failure answer, the per-host blacklist, the TLS switch.

- ``none.NoneSecurity``: type 1 (and VeNCrypt's X509None inside TLS).
- ``vncauth.VncAuthSecurity``: type 2, DES challenge/response (and X509Vnc inside TLS),
  with an optional view-only password.
- ``vencrypt.VeNCryptSecurity``: type 19: version, subtype, TLS, then the inner type;
  ``vencrypt.PlainSecurity``: X509Plain's user name and password inside TLS.
- ``settings.SecuritySettings``: what to offer for a configuration, and the objects.
"""

from __future__ import annotations

from collections.abc import Callable

from zope.interface import Attribute, Interface

SEC_INVALID = 0
SEC_NONE = 1
SEC_VNC_AUTH = 2
SEC_VENCRYPT = 19


class ISecuritySession(Interface):
    """What a security type may do with the connection it runs on."""

    version = Attribute("The RFB version spoken: (3, 3), (3, 7) or (3, 8).")
    peer = Attribute("The peer as a short label, for log lines.")

    def write(data: bytes) -> None:
        """Send bytes to the client (in the clear, or inside TLS once started)."""

    def refuse(why: str) -> None:
        """A protocol error (not a failed password): log ``why`` and close.  Whatever the
        client must be told was written before."""

    def proceed(result: bool) -> None:
        """No authentication: on to ClientInit, sending SecurityResult OK if ``result``."""

    def blocked() -> bool:
        """True if the client's host is on the authentication blacklist now."""

    def authenticated(how: str, view_only: bool, user: str | None) -> None:
        """Credentials checked: SecurityResult OK, log ``how``, on to ClientInit."""

    def authFailed(why: str) -> None:
        """Credentials wrong (or host blocked): counted, answered after the failure delay,
        then closed.  Input meanwhile is ignored."""

    def startTLS(then: Callable[[], None]) -> None:
        """Put TLS under the connection once the current read is parsed, then call
        ``then()``; bytes already read behind go to the TLS layer."""


class ISecurity(Interface):
    """One security type (or VeNCrypt subtype) running for one connection."""

    number = Attribute("The RFB security type or VeNCrypt subtype number.")
    name = Attribute("A short name for log lines.")
    stage = Attribute(
        "Where the exchange stands ('vncauth', 'vencrypt-subtype', 'plain', ...), named in "
        "the log line of a connection lost during it."
    )

    def start(session: ISecuritySession) -> None:
        """The type was chosen: write what it sends first (a challenge, a version)."""

    def dataReceived(buf: bytearray, pos: int, avail: int) -> int:
        """Handle one whole unit at ``buf[pos:]``: the bytes used, or 0 to wait."""
