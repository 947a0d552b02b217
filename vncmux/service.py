"""Wiring: a validated ``Config`` → the service tree that runs vncmux.

One ``Hub``; the device service that feeds it; one service per byte backend (listening
sockets, outgoing sockets, log files, ptys); and, unless vncmux runs as a pure byte
multiplexer, the virtual console with its VNC server.  The modules that do the work are
imported here, at call time, so that the byte-only mode never imports the console stack.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger

from vncmux.config import Config
from vncmux.hub import Hub

log = Logger()


def describeVnc(config: Config) -> str:
    """One phrase for the log: where viewers connect, or why there is no VNC server."""
    vnc = config.vnc
    if vnc.kind == "none":
        return "no VNC server" + (" (console without viewers)" if config.console else "")
    if vnc.kind == "unix":
        where = f"unix:{vnc.path}"
    else:
        host = vnc.host or "all interfaces"
        if ":" in host:
            host = f"[{host}]"
        where = f"{host}:{vnc.port} (display {vnc.port - 5900})"
    extra = f", websocket port {vnc.websocket}" if vnc.websocket is not None else ""
    return f"VNC on {where}, share={vnc.share}, connections={vnc.connections}{extra}"


def makeService(config: Config, reactor: Any) -> MultiService:
    """Build (not start) every service ``config`` asks for, sharing one ``Hub``.

    Listening endpoints are bound while this runs, so a port in use raises ``ConfigError``
    from here, before twistd starts anything; ``vncmux.tap`` turns it into the one-line
    error.
    """
    from vncmux.devices import makeDeviceService
    from vncmux.sockets import (
        makeByteClientService,
        makeByteServerService,
        makeLogFileService,
        makePtyService,
    )

    top = MultiService()
    hub = Hub(reactor, config.stall_timeout)
    cols, rows = (config.console.cols, config.console.rows) if config.console else (80, 24)

    log.info("vncmux: device {device}", device=config.device.label)
    children: list[IService] = [
        makeDeviceService(config.device, hub, reactor, cols, rows),
    ]
    for server in config.servers:
        label = server.label or server.endpoint
        log.info(
            "vncmux: byte socket {label} on {endpoint}",
            label="" if label == server.endpoint else f"(chardev {label})",
            endpoint=server.endpoint,
        )
        children.append(
            makeByteServerService(
                server.endpoint, hub, reactor, config.max_clients, label, server.readonly
            )
        )
    for client in config.clients:
        label = client.label or client.endpoint
        log.info(
            "vncmux: byte socket {label} connecting to {endpoint}",
            label=label,
            endpoint=client.endpoint,
        )
        children.append(makeByteClientService(client.endpoint, hub, reactor, label))
    for logfile in config.logfiles:
        log.info("vncmux: logging device output to {path}", path=logfile.path)
        children.append(makeLogFileService(logfile.path, hub))
    for pty in config.ptys:
        children.append(makePtyService(hub, reactor, label=pty.label or "pty"))
    if config.console is not None:
        from vncmux.console.setup import makeConsoleService

        log.info(
            "vncmux: virtual console {cols}x{rows}; {vnc}",
            cols=config.console.cols,
            rows=config.console.rows,
            vnc=describeVnc(config),
        )
        children.append(makeConsoleService(config, hub, reactor))
    else:
        log.info("vncmux: no virtual console (pure byte multiplexer)")
    for child in children:
        top.addService(child)
    return top
