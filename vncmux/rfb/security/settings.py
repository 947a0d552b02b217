"""Which security types a configuration offers, and the object that runs each.

Pure policy: with TLS, VeNCrypt (19), plus the clear-text type only if ``cleartext`` was
asked for.  Clear text means VNC authentication when any VNC password exists, else None --
but never None when a users file exists (that would skip the users' passwords).  Without
TLS and with only a users file, VNC authentication is offered and nobody can pass it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vncmux.rfb import vencrypt
from vncmux.rfb.security import SEC_NONE, SEC_VENCRYPT, SEC_VNC_AUTH, ISecurity
from vncmux.rfb.security.none import NoneSecurity
from vncmux.rfb.security.vencrypt import PlainSecurity, VeNCryptSecurity
from vncmux.rfb.security.vncauth import VncAuthSecurity


@dataclass(frozen=True)
class SecuritySettings:
    """The credentials and TLS context a server was configured with."""

    password: bytes | None = None
    view_password: bytes | None = None
    users: vencrypt.Users | None = None
    tls: Any = None  # an IOpenSSLServerConnectionCreator, or None: no VeNCrypt
    cleartext: bool = False

    def types(self) -> tuple[int, ...]:
        """The RFB security types to offer, in order of preference."""
        clear: tuple[int, ...]
        if self.password is not None or self.view_password is not None:
            clear = (SEC_VNC_AUTH,)
        elif self.users is not None:
            clear = ()
        else:
            clear = (SEC_NONE,)
        if self.tls is None:
            return clear or (SEC_VNC_AUTH,)
        return (SEC_VENCRYPT, *clear) if self.cleartext else (SEC_VENCRYPT,)

    def subtypes(self) -> tuple[int, ...]:
        """The VeNCrypt subtypes to offer, strongest inner authentication first."""
        return vencrypt.subtypes(
            password=self.password is not None or self.view_password is not None,
            users=self.users is not None,
        )

    def make(self, number: int) -> ISecurity:
        """A fresh object running security type ``number`` (one of ``types()``)."""
        if number == SEC_NONE:
            return NoneSecurity()
        if number == SEC_VNC_AUTH:
            return VncAuthSecurity(self.password, self.view_password)
        if number == SEC_VENCRYPT:
            return VeNCryptSecurity(self.subtypes(), self.makeSubtype)
        raise ValueError(f"no security type {number}")

    def makeSubtype(self, subtype: int) -> ISecurity:
        """The object authenticating inside TLS for VeNCrypt ``subtype``."""
        if subtype == vencrypt.X509_NONE:
            return NoneSecurity(subtype, always_result=True)
        if subtype == vencrypt.X509_VNC:
            return VncAuthSecurity(self.password, self.view_password, number=subtype)
        if subtype == vencrypt.X509_PLAIN:
            return PlainSecurity(self.users)
        raise ValueError(f"no VeNCrypt subtype {subtype}")
