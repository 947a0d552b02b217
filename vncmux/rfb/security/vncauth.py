"""Security type VNC Authentication (2), and VeNCrypt's X509Vnc: DES challenge/response.

The challenge is fresh per connection; the answer is checked against the full password and
the view-only password alike (both always, so the time taken does not tell which matched).
A blacklisted host fails even with the right password.
"""

from __future__ import annotations

from zope.interface import implementer

from vncmux.rfb import auth
from vncmux.rfb.security import SEC_VNC_AUTH, ISecurity, ISecuritySession


@implementer(ISecurity)
class VncAuthSecurity:
    """One VNC authentication exchange.  ``password`` grants full access,
    ``view_password`` watching only; either may be None."""

    name = "VncAuth"
    stage = "vncauth"

    def __init__(
        self,
        password: bytes | None,
        view_password: bytes | None,
        number: int = SEC_VNC_AUTH,
    ) -> None:
        self.number = number
        self._password = password
        self._view_password = view_password
        self._challenge = b""
        self._session: ISecuritySession | None = None

    def start(self, session: ISecuritySession) -> None:
        self._session = session
        self._challenge = auth.make_challenge()
        session.write(self._challenge)

    def dataReceived(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < auth.CHALLENGE_SIZE or self._session is None or not self._challenge:
            return 0
        response = bytes(buf[pos : pos + auth.CHALLENGE_SIZE])
        challenge, self._challenge = self._challenge, b""
        password, view = self._password, self._view_password
        full = password is not None and auth.check_response(challenge, response, password)
        watch = view is not None and auth.check_response(challenge, response, view)
        if self._session.blocked() or not (full or watch):
            self._session.authFailed("authentication failed")
        else:
            how = "with the password" if full else "with the view-only password"
            self._session.authenticated(how, not full, None)
        return auth.CHALLENGE_SIZE
