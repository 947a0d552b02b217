"""Wiring of the virtual console: terminal + renderer + display on the hub, and the VNC server.

Kept apart from ``vncmux.service`` so that a pure byte multiplexer (``--vnc none`` and no
``vc`` chardev) never imports pyte or Pillow.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

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

    name = "console"

    def __init__(self, hub: Hub, vc: VirtualConsole, display: Display, ports: list[IListeningPort]) -> None:
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


def _password(config: Config) -> Optional[bytes]:
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
    vc_holder: list[VirtualConsole] = []

    def reply(data: bytes) -> None:
        hub.input(data, vc_holder[0] if vc_holder else None)

    terminal = Terminal(cols, rows, encoding=config.encoding, reply=reply)
    vc = VirtualConsole(hub, terminal, reactor)
    vc_holder.append(vc)
    display = Display(
        terminal,
        renderer,
        send_input=lambda data: hub.input(data, vc),
        clock=reactor,
        default_name=f"vncmux: {config.device.label}",
        encoding=config.encoding,
    )
    vc.on_change = display.changed

    ports: list[IListeningPort] = []
    if config.vnc.kind != "none":
        from vncmux.rfb.listen import listenVNC
        from vncmux.rfb.server import RFBFactory

        factory = RFBFactory(
            display,
            password=_password(config),
            share=config.vnc.share,
            connections=config.vnc.connections,
            clock=reactor,
        )
        ports = listenVNC(config.vnc, factory, reactor)
    return ConsoleService(hub, vc, display, ports)
