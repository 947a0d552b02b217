"""Wiring: a validated ``Config`` → the service tree that runs vncmux.

One ``Hub``; the device service that feeds it; one service per byte backend (listening
sockets, outgoing sockets, log files, ptys); and, unless vncmux runs as a pure byte
multiplexer, the virtual console (``makeConsole``: callable once per console, nothing here
assumes there is only one) with its VNC server (``vncmux.rfb.service``).  The modules that
do the work are imported here, at call time, so that the byte-only mode never imports the
console stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger

from vncmux.config import Config, ConsoleSpec
from vncmux.hub import Hub

if TYPE_CHECKING:
    from vncmux.console.console import Console

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


def consoleSize(spec: ConsoleSpec) -> tuple[int, int]:
    """cols×rows of the console ``spec`` asks for (``width``/``height`` are pixels)."""
    if spec.width or spec.height:
        from vncmux.console.console import console_size

        return console_size(spec.cols, spec.rows, spec.width, spec.height)
    return spec.cols, spec.rows


def makeConsole(
    spec: ConsoleSpec,
    hub: Hub,
    reactor: Any,
    *,
    encoding: str = "utf-8",
    name: str = "vncmux",
    on_resize: Callable[[int, int], None] | None = None,
) -> Console:
    """One console on ``hub``, sized as ``spec`` says; ``on_resize`` hears its new sizes
    (connect it to an ``exec:`` device so the program sees its window change)."""
    from vncmux.console.console import Console

    cols, rows = consoleSize(spec)
    return Console(
        hub, reactor, cols, rows, encoding=encoding, default_name=name, on_resize=on_resize
    )


def makeConsoleServices(
    config: Config, spec: ConsoleSpec, hub: Hub, reactor: Any, device: IService
) -> list[IService]:
    """The services of one console: the console on the hub, then its VNC server (unless
    ``--vnc none``)."""
    from vncmux.console.console import ConsoleService

    console = makeConsole(
        spec,
        hub,
        reactor,
        encoding=config.encoding,
        name=f"vncmux: {config.device.label}",
        on_resize=getattr(device, "resize", None),  # an exec: device resizes its pty
    )
    services: list[IService] = [ConsoleService(console)]
    if config.vnc.kind != "none":
        from vncmux.rfb.service import makeVncService

        services.append(
            makeVncService(
                console,
                config.vnc,
                reactor,
                stall_timeout=config.stall_timeout,
                password_file=config.password_file,
                view_password_file=config.view_password_file,
                users_file=config.users_file,
                generate_password=config.device.default_shell,
            )
        )
    return services


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
    cols, rows = consoleSize(config.console) if config.console else (80, 24)

    log.info("vncmux: device {device}", device=config.device.label)
    device = makeDeviceService(config.device, hub, reactor, cols, rows)
    children: list[IService] = [device]
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
        log.info(
            "vncmux: virtual console {cols}x{rows}; {vnc}",
            cols=cols,
            rows=rows,
            vnc=describeVnc(config),
        )
        children += makeConsoleServices(config, config.console, hub, reactor, device)
    else:
        log.info("vncmux: no virtual console (pure byte multiplexer)")
    for child in children:
        top.addService(child)
    return top
