"""Security type None (1), and VeNCrypt's X509None: no authentication at all."""

from __future__ import annotations

from zope.interface import implementer

from vncmux.rfb.security import SEC_NONE, ISecurity, ISecuritySession


@implementer(ISecurity)
class NoneSecurity:
    """Whoever connects gets in.  RFB 3.8 (and VeNCrypt, whatever the version: pass
    ``always_result``) still sends a SecurityResult; 3.3 and 3.7 go straight on."""

    name = "None"
    stage = "security"

    def __init__(self, number: int = SEC_NONE, always_result: bool = False) -> None:
        self.number = number
        self.always_result = always_result

    def start(self, session: ISecuritySession) -> None:
        session.proceed(self.always_result or session.version == (3, 8))

    def dataReceived(self, buf: bytearray, pos: int, avail: int) -> int:
        return 0  # never reached: the session is in ClientInit once started
