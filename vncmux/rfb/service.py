"""The VNC server of one console: its RFB factory, its listening ports, its password.

``makeVncService`` builds, for one ``IConsole`` and one ``VncSpec``, the ``RFBFactory``
(passwords, TLS, users, share policy, limits) and binds the TCP or UNIX port and the
WebSocket port.  Binding happens while the service tree is built, so a port in use stops
start-up with a one-line error; the returned service closes the ports when it stops.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from vncmux.console.interfaces import IConsole
from vncmux.rfb import auth, tls, vencrypt
from vncmux.rfb.listen import listenVNC
from vncmux.rfb.server import AUTH_FAILURE_DELAY, RFBFactory
from vncmux.specs import VncSpec

log = Logger()


class VncService(Service):
    """Holds the listening ports of one console's VNC server; closes them on stop."""

    def __init__(self, factory: RFBFactory, ports: list[IListeningPort]) -> None:
        self.setName("vnc")
        self.factory = factory
        self.ports = ports

    def stopService(self) -> defer.Deferred[Any]:
        Service.stopService(self)
        ports, self.ports = self.ports, []
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports], consumeErrors=True
        )


def vncPassword(password_file: str | None, generate: bool) -> bytes | None:
    """The VNC password: from ``password_file``, else made up when ``generate`` (the
    embedded default shell) and printed on stderr, else None.

    With the default shell and no password, anyone on the machine could connect to
    localhost and get that shell, so a password is made up and printed, as notebook
    servers print their token."""
    if password_file:
        return auth.read_password_file(password_file)
    if not generate:
        return None
    password = auth.generate_password()
    print(
        f"vncmux: VNC password for this session: {password}"
        "  (choose your own with --password-file)",
        file=sys.stderr,
        flush=True,
    )
    log.info("Generated a VNC password for the default shell (printed on stderr)")
    return password.encode("ascii")


def makeVncService(
    console: IConsole,
    spec: VncSpec,
    reactor: Any,
    *,
    stall_timeout: float,
    password_file: str | None = None,
    view_password_file: str | None = None,
    users_file: str | None = None,
    generate_password: bool = False,
) -> VncService:
    """Build the RFB factory for ``console`` and listen as ``spec`` says (nothing for
    ``--vnc none``).  Raises ``ConfigError`` (nothing left listening) when a port cannot be
    bound or a TLS, password or users file is unusable."""
    settings = spec.tls
    view_password = auth.read_password_file(view_password_file) if view_password_file else None
    factory = RFBFactory(
        console,
        password=vncPassword(password_file, generate_password),
        share=spec.share,
        connections=spec.connections,
        clock=reactor,
        stall_timeout=stall_timeout,
        view_password=view_password,
        tls=tls.context_factory(settings) if settings is not None else None,
        users=vencrypt.read_users_file(users_file) if users_file else None,
        cleartext=spec.cleartext,
        auth_failure_delay=AUTH_FAILURE_DELAY,
    )
    if settings is not None:
        log.info(
            "VNC: VeNCrypt with certificate {cert}{verify}; offering {types}",
            cert=settings.cert,
            verify=", client certificates verified against " + str(settings.ca)
            if settings.verify
            else "",
            types=", ".join(vencrypt.NAMES.get(t, str(t)) for t in factory.security.subtypes())
            + (" and clear-text types" if factory.security.cleartext else " only"),
        )
    ports = listenVNC(spec, factory, reactor)
    if spec.websocket is not None:
        from vncmux.rfb.websocket import listenWebSocket

        try:
            ports += listenWebSocket(spec, factory, reactor)
        except BaseException:
            for port in ports:
                port.stopListening()
            raise
    return VncService(factory, ports)
