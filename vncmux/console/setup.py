"""Wiring of the virtual console: terminal + renderer + display on the hub, and the VNC server.

Kept apart from ``vncmux.service`` so that a pure byte multiplexer (``--vnc none`` and no
``vc`` chardev) never imports pyte or Pillow.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from vncmux.config import Config, ConfigError
from vncmux.console.display import Display
from vncmux.console.render import Renderer
from vncmux.console.terminal import Terminal
from vncmux.console.vc import VirtualConsole
from vncmux.hub import Hub

log = Logger()


class ConsoleService(Service):
    """Owns the console's pieces for the life of the process and the VNC listeners.

    The VNC ports are bound when the service is built (so a port in use stops start-up
    with a clear message) and closed when the service stops."""

    def __init__(
        self, hub: Hub, vc: VirtualConsole, display: Display, ports: list[IListeningPort]
    ) -> None:
        self.setName("console")
        self.hub = hub
        self.vc = vc
        self.display = display
        self.ports = ports

    def startService(self) -> None:
        Service.startService(self)
        self.hub.attach(self.vc)

    def stopService(self) -> Any:
        Service.stopService(self)
        self.hub.detach(self.vc)
        for port in self.ports:
            port.stopListening()
        self.ports = []
        return None


def _console_size(config: Config, renderer_cell: tuple[int, int]) -> tuple[int, int]:
    """cols×rows: from vc width/height in pixels (QEMU's meaning) when given."""
    spec = config.console
    assert spec is not None
    cols, rows = spec.cols, spec.rows
    cw, ch = renderer_cell
    if spec.width:
        cols = max(1, spec.width // cw)
    if spec.height:
        rows = max(1, spec.height // ch)
    return cols, rows


def _password(config: Config) -> bytes | None:
    """The VNC password: from --password-file, or generated for the default shell.

    With the embedded default (a shell for whoever connects) and no password, anyone on
    the machine could connect to localhost and get that shell, so one is made up and
    printed, as notebook servers print their token."""
    from vncmux.rfb import auth

    if config.password_file:
        return auth.read_password_file(config.password_file)
    if config.device.default_shell:
        password = auth.generate_password()
        print(
            f"vncmux: VNC password for this session: {password}"
            "  (choose your own with --password-file)",
            file=sys.stderr,
            flush=True,
        )
        log.info("Generated a VNC password for the default shell (printed on stderr)")
        return password.encode("ascii")
    return None


def makeConsoleService(config: Config, hub: Hub, reactor: Any) -> IService:
    """Build the console and, unless ``--vnc none``, the RFB server listening on it."""
    if config.console is None:
        raise ConfigError("internal: makeConsoleService called without a console")
    probe = Renderer(1, 1)
    cols, rows = _console_size(config, (probe.cell_width, probe.cell_height))
    renderer = Renderer(cols, rows)
    terminal = Terminal(cols, rows, encoding=config.encoding)
    vc = VirtualConsole(hub, terminal, reactor)  # routes the terminal's replies to the hub
    display = Display(
        terminal,
        renderer,
        send_input=lambda data: hub.input(data, vc),
        clock=reactor,
        default_name=f"vncmux: {config.device.label}",
        encoding=config.encoding,
        busy=lambda: vc.backlog > 0,
    )
    vc.on_change = display.changed

    ports: list[IListeningPort] = []
    if config.vnc.kind != "none":
        from vncmux.rfb import auth, tls, vencrypt
        from vncmux.rfb.listen import listenVNC
        from vncmux.rfb.server import AUTH_FAILURE_DELAY, RFBFactory

        settings = tls.settings_from_options(config.vnc.options)
        view_password = (
            auth.read_password_file(config.view_password_file)
            if config.view_password_file
            else None
        )
        factory = RFBFactory(
            display,
            password=_password(config),
            share=config.vnc.share,
            connections=config.vnc.connections,
            clock=reactor,
            stall_timeout=config.stall_timeout,
            view_password=view_password,
            tls=tls.context_factory(settings) if settings is not None else None,
            users=vencrypt.read_users_file(config.users_file) if config.users_file else None,
            cleartext=("cleartext", "on") in config.vnc.options,
            auth_failure_delay=AUTH_FAILURE_DELAY,
        )
        if settings is not None:
            log.info(
                "VNC: VeNCrypt with certificate {cert}{verify}; offering {types}",
                cert=settings.cert,
                verify=", client certificates verified against " + str(settings.ca)
                if settings.verify
                else "",
                types=", ".join(vencrypt.NAMES.get(t, str(t)) for t in factory.vencryptSubtypes())
                + (" and clear-text types" if factory.cleartext else " only"),
            )
        ports = listenVNC(config.vnc, factory, reactor)
        if config.vnc.websocket is not None:
            from vncmux.rfb.websocket import listenWebSocket

            try:
                ports += listenWebSocket(config.vnc, factory, reactor)
            except BaseException:
                for port in ports:
                    port.stopListening()
                raise
    return ConsoleService(hub, vc, display, ports)
