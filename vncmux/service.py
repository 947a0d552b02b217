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
from vncmux.history import HistoryBackend, OutputHistory, replayer
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
    scrollback: int = 10_000,
    osc52: bool = False,
) -> Console:
    """One console on ``hub``, sized as ``spec`` says; ``on_resize`` hears its new sizes
    (connect it to an ``exec:`` device so the program sees its window change)."""
    from vncmux.console.console import Console

    cols, rows = consoleSize(spec)
    return Console(
        hub,
        reactor,
        cols,
        rows,
        encoding=encoding,
        default_name=name,
        on_resize=on_resize,
        scrollback=scrollback,
        osc52=osc52,
    )


def makeHistory(config: Config, hub: Hub, reactor: Any) -> OutputHistory:
    """The device's output history (``--history``), recording from now on: attached to
    ``hub`` before any other backend, so each one attached later can be replayed to from it
    without a gap.  One per hub, so one per console: it is what ``makeService`` hands to
    ``makeConsoleServices`` (``history=``) and to the byte backends with ``replay=``."""
    history = OutputHistory(config.history, reactor.seconds)
    hub.attach(HistoryBackend(history))
    log.info("vncmux: output history of {size} bytes", size=config.history)
    return history


def describeReplay(size: int) -> str:
    """The end of a byte socket's log line: how much history its clients get first."""
    return f", replaying up to {size} bytes of history to each client" if size else ""


def makeConsoleServices(
    config: Config,
    spec: ConsoleSpec,
    hub: Hub,
    reactor: Any,
    device: IService,
    history: OutputHistory | None = None,
) -> list[IService]:
    """The services of one console: the console on the hub, then its VNC server (unless
    ``--vnc none``).  ``history`` is the output history of the console's hub (what an API
    on this console reads)."""
    from vncmux.console.console import ConsoleService

    console = makeConsole(
        spec,
        hub,
        reactor,
        encoding=config.encoding,
        name=f"vncmux: {config.device.label}",
        on_resize=getattr(device, "resize", None),  # an exec: device resizes its pty
        scrollback=config.scrollback,
        osc52=config.osc52,
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
    history = makeHistory(config, hub, reactor)
    cols, rows = consoleSize(config.console) if config.console else (80, 24)

    log.info("vncmux: device {device}", device=config.device.label)
    device = makeDeviceService(config.device, hub, reactor, cols, rows)
    children: list[IService] = [device]
    for server in config.servers:
        label = server.label or server.endpoint
        log.info(
            "vncmux: byte socket {label} on {endpoint}{replay}",
            label="" if label == server.endpoint else f"(chardev {label})",
            endpoint=server.endpoint,
            replay=describeReplay(server.replay),
        )
        children.append(
            makeByteServerService(
                server.endpoint,
                hub,
                reactor,
                config.max_clients,
                label,
                server.readonly,
                replay=replayer(history, server.replay),
            )
        )
    for client in config.clients:
        label = client.label or client.endpoint
        log.info(
            "vncmux: byte socket {label} connecting to {endpoint}{replay}",
            label=label,
            endpoint=client.endpoint,
            replay=describeReplay(client.replay),
        )
        children.append(
            makeByteClientService(
                client.endpoint, hub, reactor, label, replay=replayer(history, client.replay)
            )
        )
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
        children += makeConsoleServices(
            config, config.console, hub, reactor, device, history=history
        )
    else:
        log.info("vncmux: no virtual console (pure byte multiplexer)")
    if config.api is not None:
        from vncmux.api.service import makeApiService

        consoles = [c for c in children if c.name == "console"]  # the ConsoleService
        console = consoles[0].console if consoles else None  # type: ignore[attr-defined]
        children.append(makeApiService(config.api, hub, reactor, console, history, config.encoding))
    for child in children:
        top.addService(child)
    return top
