"""Wiring: a validated ``Site`` → the service tree that runs vncmux.

The top is a ``SiteService`` (``vncmux.site``): one ``ConsoleInstance`` per console, a
``MultiService`` named ``console:NAME`` holding that console's ``Hub``, output history,
device service, byte backends (listening sockets, outgoing sockets, log files, ptys) and,
unless it is a pure byte multiplexer, its virtual console with its VNC server
(``vncmux.rfb.service``) and API; then the site-wide services (``makeSiteServices``).  The
modules that do the work are imported here, at call time, so that the byte-only mode never
imports the console stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from vncmux.config import Config, ConsoleSpec
from vncmux.errors import ConfigError
from vncmux.history import HistoryBackend, OutputHistory, replayer
from vncmux.hub import Hub
from vncmux.site import SiteService
from vncmux.specs import FontSpec, Site

if TYPE_CHECKING:
    from vncmux.console.console import Console
    from vncmux.rfb.factory import RFBFactory
    from vncmux.rfb.service import VncService

log = Logger()


def describeVnc(config: Config) -> str:
    """One phrase for the log: where viewers connect, or why there is no VNC server."""
    vnc = config.vnc
    if vnc.kind == "none":
        return "no VNC server" + (" (console without viewers)" if config.console else "")
    if vnc.kind == "unix":
        where = f"unix:{vnc.path}"
    elif vnc.kind == "systemd":
        where = f"systemd socket {vnc.path}"
    else:
        host = vnc.host or "all interfaces"
        if ":" in host:
            host = f"[{host}]"
        where = f"{host}:{vnc.port} (display {vnc.port - 5900})"
    extra = f", websocket port {vnc.websocket}" if vnc.websocket is not None else ""
    return f"VNC on {where}, share={vnc.share}, connections={vnc.connections}{extra}"


def rendererFactory(font: FontSpec) -> Callable[[int, int], Any]:
    """``make_renderer(cols, rows)`` for a console drawn as ``--font``, ``--font-size``,
    ``--scale`` and ``--palette`` say (one palette shared by all its renderers)."""
    from functools import partial

    from vncmux import fonts
    from vncmux.console.render import Renderer

    return partial(
        Renderer,
        font_path=font.path,
        font_size=font.size,
        scale=font.scale,
        palette=fonts.load_palette(font.palette),
    )


def consoleSize(spec: ConsoleSpec, font: FontSpec | None = None) -> tuple[int, int]:
    """cols×rows of the console ``spec`` asks for (``width``/``height`` are pixels of
    ``font``'s cells)."""
    if spec.width or spec.height:
        from vncmux.console.console import console_size

        return console_size(
            spec.cols, spec.rows, spec.width, spec.height, rendererFactory(font or FontSpec())
        )
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
    status_line: bool = False,
    viewer_resize: bool = False,
    font: FontSpec | None = None,
) -> Console:
    """One console on ``hub``, sized as ``spec`` says; ``on_resize`` hears its new sizes
    (connect it to an ``exec:`` device so the program sees its window change)."""
    from vncmux.console.console import Console

    cols, rows = consoleSize(spec, font)
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
        status_line=status_line,
        viewer_resize=viewer_resize,
        make_renderer=rendererFactory(font or FontSpec()),
    )


def viewerResize(policy: str, device: object) -> bool:
    """``--viewer-resize``: ``auto`` lets viewers resize the console when the device can
    be told of its new size (it has ``resize``: an ``exec:`` pty); ``on``/``off`` always."""
    if policy == "auto":
        return callable(getattr(device, "resize", None))
    return policy == "on"


def makeHistory(config: Config, hub: Hub, reactor: Any, prefix: str = "") -> OutputHistory:
    """The device's output history (``--history``), recording from now on: attached to
    ``hub`` before any other backend, so each one attached later can be replayed to from it
    without a gap.  One per hub, so one per console: it is what ``makeService`` hands to
    ``makeConsoleServices`` (``history=``) and to the byte backends with ``replay=``."""
    history = OutputHistory(config.history, reactor.seconds)
    hub.attach(HistoryBackend(history))
    log.info("vncmux: {prefix}output history of {size} bytes", prefix=prefix, size=config.history)
    return history


def describeReplay(size: int, history: int) -> str:
    """The end of a byte socket's log line: how much history its clients get first (never
    more than the history holds, whatever was asked)."""
    if not size:
        return ""
    if size > history:
        return (
            f", replaying up to {history} bytes of history to each client"
            f" (asked {size}; --history holds {history})"
        )
    return f", replaying up to {size} bytes of history to each client"


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
        status_line=config.status_line,
        viewer_resize=viewerResize(config.viewer_resize, device),
        font=config.font,
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


class ConsoleInstance(MultiService):
    """One running console of a site: a ``MultiService`` (``name``: the console's name; the
    site's tree knows it as ``console:NAME``) whose children are its device, byte backends,
    console, VNC server and API, all on one ``Hub``.

    Built (and bound: its ports listen) by the constructor, which raises ``ConfigError``
    with nothing left listening when a port is taken.  What the site-wide services read:
    ``name``, ``config``, ``hub``, ``history``, ``device``, ``console`` (None for a pure
    byte multiplexer), ``vnc``/``vnc_factory``/``vnc_address``, ``api``, ``byte_services``
    and ``deviceState``."""

    def __init__(self, config: Config, reactor: Any, *, named: bool = False) -> None:
        super().__init__()
        self.setName(config.name)  # in the site's tree: console:NAME (vncmux.site)
        self.config = config
        self.reactor = reactor
        # Log lines say which console when there can be several (a config file).
        self.prefix = f"console {config.name}: " if named else ""
        self.console: Console | None = None
        self.vnc: VncService | None = None
        self.api: IService | None = None
        self.byte_services: list[IService] = []
        self._why: str | None = None  # set by farewell: why the console goes away
        self.hub = Hub(reactor, config.stall_timeout, breakDuration=config.break_duration)
        self.hub.keyboard.configure(exclusive=config.exclusive_input, idle=config.lock_idle)
        self.history = makeHistory(config, self.hub, reactor, self.prefix)
        try:
            self._build()
        except BaseException:
            self.unbind()
            raise

    def _build(self) -> None:
        from vncmux.devices import makeDeviceService
        from vncmux.sockets import (
            makeByteClientService,
            makeByteServerService,
            makeLogFileService,
            makePtyService,
        )

        config, hub, reactor, history = self.config, self.hub, self.reactor, self.history
        prefix = self.prefix
        cols, rows = consoleSize(config.console, config.font) if config.console else (80, 24)
        log.info("vncmux: {prefix}device {device}", prefix=prefix, device=config.device.label)
        self.device = makeDeviceService(config.device, hub, reactor, cols, rows)
        from vncmux.record import makeTraceServices  # audit log, recording: before the device

        for trace in makeTraceServices(config, hub, reactor, lambda: self.console):
            self.addService(trace)
        self.addService(self.device)
        for server in config.servers:
            label = server.label or server.endpoint
            log.info(
                "vncmux: {prefix}{kind} {label}on {endpoint}{replay}",
                prefix=prefix,
                kind="telnet socket" if server.telnet else "byte socket",
                label="" if label == server.endpoint else f"(chardev {label}) ",
                endpoint=server.endpoint,
                replay=describeReplay(server.replay, config.history),
            )
            self._addByte(
                makeByteServerService(
                    server.endpoint,
                    hub,
                    reactor,
                    config.max_clients,
                    label,
                    server.readonly,
                    replay=replayer(history, server.replay),
                    telnet=server.telnet,
                    rfc2217=server.rfc2217,
                )
            )
        for client in config.clients:
            label = client.label or client.endpoint
            log.info(
                "vncmux: {prefix}byte socket {label} connecting to {endpoint}{replay}",
                prefix=prefix,
                label=label,
                endpoint=client.endpoint,
                replay=describeReplay(client.replay, config.history),
            )
            self._addByte(
                makeByteClientService(
                    client.endpoint, hub, reactor, label, replay=replayer(history, client.replay)
                )
            )
        for logfile in config.logfiles:
            log.info(
                "vncmux: {prefix}logging device output to {path}", prefix=prefix, path=logfile.path
            )
            self._addByte(makeLogFileService(logfile.path, hub))
        for pty in config.ptys:
            self._addByte(makePtyService(hub, reactor, label=pty.label or "pty"))
        if config.console is not None:
            log.info(
                "vncmux: {prefix}virtual console {cols}x{rows}; {vnc}",
                prefix=prefix,
                cols=cols,
                rows=rows,
                vnc=describeVnc(config),
            )
            for child in makeConsoleServices(
                config, config.console, hub, reactor, self.device, history=history
            ):
                if child.name == "console":
                    self.console = getattr(child, "console", None)
                elif child.name == "vnc":
                    self.vnc = child  # type: ignore[assignment]
                self.addService(child)
        else:
            log.info("vncmux: {prefix}no virtual console (pure byte multiplexer)", prefix=prefix)
        if config.api is not None:
            from vncmux.api.service import makeApiService

            self.api = makeApiService(
                config.api, hub, reactor, self.console, history, config.encoding
            )
            self.addService(self.api)

    def _addByte(self, service: IService) -> None:
        self.byte_services.append(service)
        self.addService(service)

    # -- what the site-wide services read

    @property
    def vnc_factory(self) -> RFBFactory | None:
        return self.vnc.factory if self.vnc is not None else None

    @property
    def vnc_address(self) -> tuple[str, int] | None:
        """(host, port) of the VNC server's TCP port (the first one), or None."""
        if self.vnc is None:
            return None
        for port in self.vnc.ports:
            address = port.getHost()
            if hasattr(address, "port"):
                return (str(getattr(address, "host", "")), int(address.port))
        return None

    @property
    def deviceState(self) -> str:
        """'up' (open), 'reconnecting' (the device service is retrying) or 'down' (not
        running)."""
        if self.hub.device is not None:
            return "up"
        return "reconnecting" if self.device.running else "down"

    # -- going away

    def farewell(self, why: str) -> None:
        """Tell everyone attached why the console is going away: one line through the hub
        (it shows on the console's screen, reaches every byte client, pty and log file)
        and byte clients are asked to close once it is written.  ``stopService`` follows,
        after the caller's grace, which gives viewers a frame to show the line."""
        line = f"\r\n[vncmux: console {self.name} {why}]\r\n"
        log.info("vncmux: console {name} {why}", name=self.name, why=why)
        self.hub.deviceOutput(line.encode("ascii", "replace"))
        for service in self.byte_services:
            clients = getattr(service, "clients", None)
            for client in list(getattr(clients, "members", ())):
                client.transport.loseConnection()
        self._why = why

    def stopService(self) -> Deferred[Any]:
        factory = self.vnc_factory
        if factory is not None and self._why is not None:  # not at shutdown: as before
            for viewer in list(factory.clients):
                viewer.close(f"console {self.name} {self._why}")
        self.hub.keyboard.stop()  # its idle timer
        return cast("Deferred[Any]", super().stopService())

    def unbind(self) -> None:
        """Close what a build that failed half-way had bound (ports, files, ptys)."""
        for child in list(self):
            try:
                child.stopService()
            except Exception:
                log.failure("vncmux: {prefix}cleaning up {child}", prefix=self.prefix, child=child)


def makeService(
    site: Site | Config, reactor: Any, *, load: Callable[[], Site] | None = None
) -> SiteService:
    """Build (not start) every console ``site`` lists and the site-wide services; a bare
    ``Config`` is a site of that one console.

    Listening endpoints are bound while this runs, so a port in use raises ``ConfigError``
    from here, before twistd starts anything; ``vncmux.tap`` turns it into the one-line
    error.  ``load`` re-reads the site on SIGHUP (``vncmux.tap`` passes one that reads
    ``site.source`` with the command line's site-wide options); without a ``source`` there
    is nothing to reload.
    """
    if isinstance(site, Config):
        site = Site(consoles=(site,))
    named = site.source is not None

    def build(config: Config) -> ConsoleInstance:
        try:
            return ConsoleInstance(config, reactor, named=named)
        except ConfigError as e:
            if not named:
                raise
            raise ConfigError(f"{site.source}: console {config.name!r}: {e}") from None

    top = SiteService(site, reactor, build, load=load)
    for config in site.consoles:
        try:
            top.addConsole(build(config))
        except BaseException:
            for instance in top.instances():
                instance.unbind()
            raise
    makeSiteServices(site, top, reactor)
    _log_token_loop()
    return top


def _log_token_loop() -> None:
    """Say which token loop the terminals run: a missing C compiler at install time costs
    full-screen programs about half their speed, and this is where one notices."""
    from vncmux.console.compiled import LOOP

    log.info(
        "vncmux: terminal token loop: {which}",
        which="compiled"
        if LOOP is not None
        else "Python (the compiled one was not built, or VNCMUX_PURE_PYTHON is set)",
    )


def makeSiteServices(site: Site, top: SiteService, reactor: Any) -> None:
    """The services every console shares (the web entry, token registration, systemd
    notification): built here, children of ``top``, reaching the consoles through it
    (``top.instances()``, ``top.get(name)``, ``top.subscribe``)."""
    from vncmux.systemd import NotifyService, describeSite

    if site.web is not None:  # --web: the index, /c/NAME/ viewers and APIs, health, metrics
        from vncmux.web.service import makeWebService

        makeWebService(site.web, top, reactor).setServiceParent(top)
    # systemd (Type=notify): READY=1 once running, STATUS= lines, STOPPING=1; a no-op
    # outside systemd.  Added after the consoles, so it starts last and stops first.
    NotifyService(
        reactor, lambda: describeSite([i.deviceState for i in top.instances()])
    ).setServiceParent(top)
    if site.tokens.enabled:
        from vncmux.tokens import TokenRegistrar

        TokenRegistrar(top, site.tokens, reactor).setServiceParent(top)
