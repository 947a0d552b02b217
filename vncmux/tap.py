"""The twistd face of vncmux: the command-line ``Options`` and ``makeService``.

Nothing is decided here: values go to ``vncmux.config.build_config`` (parsing, validation),
the result to ``vncmux.preflight.check`` (the files and devices it names) and then to
``vncmux.service.makeService`` (wiring).  What this module adds is the contract for
mistakes: one line ``vncmux: error: ...`` on stderr and exit status 2, before anything
listens; and warnings (log and stderr) for what runs but is unsafe.  It deliberately does not raise ``UsageError``, because twistd answers that
by printing the whole usage text, which buries the one line that matters.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

from twisted.application.service import MultiService
from twisted.python import usage

from vncmux import preflight
from vncmux.config import Config, Site, build_config, build_site, exposure_warnings
from vncmux.errors import ConfigError
from vncmux.site_config import console_keys, parse_site


def fail(error: ConfigError) -> NoReturn:
    """Report a configuration error the way every vncmux error is reported, and exit 2."""
    sys.stderr.write(f"vncmux: error: {error}\n")
    sys.stderr.flush()
    raise SystemExit(2)


_SOCKET_HELP = (
    "A raw byte endpoint, as a Twisted server endpoint string: tcp:4555, "
    "tcp:4555:interface=127.0.0.1, unix:/run/console.sock (UNIX sockets default to "
    "mode=600).  Each accepts many clients.  Repeatable."
)
_CHARDEV_HELP = (
    "A QEMU -chardev: socket,id=ID,path=P|host=H,port=N[,server=on|off][,wait=on|off]"
    "[,replay=SIZE][,telnet=on[,rfc2217=on]]; vc,id=ID[,cols=C,rows=R|width=PX,height=PX]; file,id=ID,path=P; pty,id=ID; "
    "mux-be,id=ID with mux-be-id=ID on the others; hub,id=ID,chardevs.0=ID,chardevs.1=ID. "
    "Repeatable."
)


class Options(usage.Options):
    """``twistd vncmux`` options.  After parsing, ``self.config`` is the validated Config."""

    synopsis = "[options]"  # twistd prefixes "Usage: twistd [options] vncmux"
    longdesc = (
        "Multiplex one console device (serial port, QEMU serial socket, or a command in a "
        "pty) onto a VNC virtual console and any number of raw TCP/UNIX socket clients, log "
        "files and ptys.  Input from every client goes to the device.  --chardev takes "
        "QEMU's -chardev syntax, so a QEMU mux-be/hub command line runs verbatim."
    )

    optParameters: ClassVar[list[list[Any]]] = [
        [
            "config",
            None,
            None,
            (
                "A TOML file describing many consoles (one [[console]] table each, with a "
                "name) and the settings they share; SIGHUP re-reads it.  With it, the "
                "console options (--device, --vnc, --socket...) go in the file."
            ),
        ],
        [
            "device",
            None,
            None,
            (
                "The console device: a tty path such as /dev/ttyS0 (serial), unix:PATH or "
                "tcp:HOST:PORT (connect, e.g. to QEMU's -serial unix:PATH,server=on,wait=off), or "
                "exec:COMMAND (run in a new pty).  Default: exec: of $SHELL, or /bin/sh."
            ),
        ],
        [
            "vnc",
            None,
            "127.0.0.1:0",
            (
                "VNC server in QEMU -vnc syntax: [HOST]:N listens on TCP port 5900+N (empty HOST, "
                "as in :0, means all interfaces; [::1]:N for IPv6), unix:PATH, systemd:INDEX (a "
                "socket systemd passes: socket activation), or none.  Options: "
                ",share=allow-exclusive|force-shared|ignore (default force-shared), "
                ",connections=N (default 64), ,websocket=PORT|on, ,tls-cert=FILE,tls-key=FILE "
                "for VeNCrypt (TLS) only, with ,tls-ca=FILE,x509verify=on for client "
                "certificates and ,cleartext=on to also offer unencrypted types.  'none' with no "
                "vc chardev: a pure byte multiplexer."
            ),
        ],
        ["cols", None, "80", "Terminal columns of the virtual console (1-1000)."],
        ["rows", None, "24", "Terminal rows of the virtual console (1-1000)."],
        ["baud", None, "115200", "Serial speed in bits per second (tty devices)."],
        ["bytesize", None, "8", "Serial data bits: 5, 6, 7 or 8."],
        ["parity", None, "N", "Serial parity: N, E, O, M or S."],
        ["stopbits", None, "1", "Serial stop bits: 1, 1.5 or 2."],
        ["dtr", None, None, "Set the serial DTR line on or off (default: leave it as it is)."],
        ["rts", None, None, "Set the serial RTS line on or off (default: leave it as it is)."],
        [
            "stall-timeout",
            None,
            "10",
            (
                "Disconnect a byte client that has blocked the device for more than this many "
                "seconds (0 = never)."
            ),
        ],
        ["max-clients", None, "64", "Most clients at once on each --socket/chardev endpoint."],
        [
            "history",
            None,
            "1M",
            (
                "Bytes of the device's recent output kept in memory (e.g. 64K, 1M; 0 = none), "
                "for replay to late byte clients and for reading back."
            ),
        ],
        [
            "scrollback",
            None,
            "10000",
            (
                "Lines scrolled off the top of the virtual console kept for VNC viewers to "
                "scroll back to (Shift+PgUp/PgDn, the mouse wheel); 0 = none."
            ),
        ],
        [
            "font",
            None,
            None,
            (
                "The console's font: a BDF, PCF, OTB, TTF or OTF file (default: the bundled "
                "Terminus); characters it lacks come from the bundled GNU Unifont."
            ),
        ],
        [
            "font-size",
            None,
            "16",
            "Font size in pixels (the bundled Terminus: 12, 14, 16, 18, 20, 24, 28 or 32).",
        ],
        [
            "scale",
            None,
            "1",
            "Draw every font pixel as a scale x scale square (1-4; 2 for high-DPI viewers).",
        ],
        [
            "palette",
            None,
            "default",
            (
                "The 16 base colours: default, xterm, linux, vga, or a file of 16 lines "
                "#rrggbb (colours 0-15)."
            ),
        ],
        [
            "socket-replay",
            None,
            "0",
            (
                "Each client of a --socket/--socket-ro endpoint first gets up to this many of "
                "the most recent bytes of output (from a line start), then the live stream "
                "(e.g. 64K; default 0: live only).  For chardev sockets: replay=SIZE."
            ),
        ],
        [
            "encoding",
            None,
            "utf-8",
            (
                "Character encoding of the device's output for the virtual console (any Python "
                "codec, e.g. utf-8, latin-1, cp437)."
            ),
        ],
        [
            "password-file",
            None,
            None,
            (
                "VNC password file: first line, at most 8 characters.  With the default shell "
                "and no password file, a random password is generated and printed at start."
            ),
        ],
        [
            "view-password-file",
            None,
            None,
            (
                "A second VNC password file: a viewer that authenticates with this password is "
                "view-only (its keys, pointer and pastes are ignored)."
            ),
        ],
        [
            "api",
            None,
            None,
            (
                "Serve the HTTP/JSON API (/api/v1/: screen, output, input, keys, wait, "
                "status) on this Twisted server endpoint: unix:/run/vncmux.api (mode 600 "
                "unless :mode= says otherwise) or tcp:8700:interface=127.0.0.1 (needs "
                "--api-token-file).  Default: off."
            ),
        ],
        [
            "web",
            None,
            None,
            (
                "One web entry for every console, on this Twisted server endpoint (a bare "
                "port: tcp:PORT on 127.0.0.1): / lists the consoles, /c/NAME/ is a console's "
                "noVNC page (its WebSocket /c/NAME/websockify, its API /c/NAME/api/v1/), "
                "/healthz and /metrics (Prometheus).  Default: off."
            ),
        ],
        [
            "api-token-file",
            None,
            None,
            "A file whose first line is the API's bearer token (full access).",
        ],
        [
            "audit-log",
            None,
            None,
            (
                "Append a JSON line per event to this file (mode 600): start, attach, "
                "detach, input (byte count), device-up/down, break, lock, unlock, takeover, "
                "auth-failure, with the client's kind, address and credential.  Reopened "
                "on SIGHUP (logrotate)."
            ),
        ],
        [
            "record",
            None,
            None,
            (
                "Record the device's output to this file as an asciicast v2 recording "
                "(asciinema play FILE), with markers for attach/detach, device up/down, "
                "BREAK and keyboard lock changes, and resizes."
            ),
        ],
        [
            "api-view-token-file",
            None,
            None,
            (
                "A file whose first line is a second API token that may only read (screen, "
                "output, wait, status): input and keys answer 403."
            ),
        ],
        [
            "input-policy",
            None,
            "shared",
            (
                "Who may type: shared (every client's input is merged, as QEMU's hub does) "
                "or exclusive (the first client to type holds the keyboard until it is idle "
                "for --lock-idle seconds or leaves; others' input is dropped; Ctrl+Alt+T in "
                "a VNC viewer, POST /api/v1/takeover or Ctrl+E c f on a telnet socket takes "
                "it over)."
            ),
        ],
        [
            "break-duration",
            None,
            "0.25",
            (
                "Seconds a serial BREAK holds the line (tty devices; RFC 2217 devices), "
                "more than 0, at most 10."
            ),
        ],
        [
            "lock-idle",
            None,
            "30",
            "Seconds without input after which the keyboard's holder loses it (exclusive).",
        ],
        [
            "viewer-resize",
            None,
            "auto",
            (
                "auto|on|off: may a VNC viewer resize the console to its window "
                "(SetDesktopSize, noVNC's remote resizing)?  auto: only for exec: devices, "
                "whose program is told (SIGWINCH); on: for every device (then run resize or "
                "stty on the machine); off: never."
            ),
        ],
        [
            "status-line",
            None,
            None,
            (
                "on|off: a line below the terminal shows VNC viewers who has the keyboard "
                "and the device's state (default: on with --input-policy exclusive, else off)."
            ),
        ],
        [
            "users-file",
            None,
            None,
            (
                "user:password[:view] lines for VeNCrypt X509Plain (needs --vnc ...,tls-cert=); "
                "':view' makes that user view-only."
            ),
        ],
        [
            "websockify-tokens",
            None,
            None,
            (
                "Register each console with websockify's TokenFile plugin: one file per "
                "console in this directory ('TOKEN: HOST:PORT', written atomically, removed "
                "on stop).  Run websockify with --token-plugin TokenFile --token-source DIR."
            ),
        ],
        [
            "redis",
            None,
            None,
            (
                "Register each console with websockify's TokenRedis plugin: the key TOKEN "
                'holds {"host": "HOST:PORT"} with a 30 s TTL renewed every 10 s, deleted on '
                "stop.  URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]."
            ),
        ],
        [
            "token-prefix",
            None,
            None,
            "websockify token = this prefix + the console's name (default: the name alone).",
        ],
        [
            "advertise",
            None,
            None,
            (
                "The host name or IPv4 address websockify should connect to for this host's "
                "VNC ports (default: the VNC listening address; this host's name when VNC "
                "listens on every interface)."
            ),
        ],
    ]

    optFlags: ClassVar[list[list[Any]]] = [
        ["rtscts", None, "Serial hardware flow control (RTS/CTS)."],
        [
            "rfc2217",
            None,
            (
                "Clients of the --telnet endpoints may set the tty device's line with RFC 2217 "
                "(baud, data bits, parity, stop bits, flow control, DTR/RTS, BREAK, purge): "
                "it changes the line for everybody."
            ),
        ],
        [
            "audit-input",
            None,
            (
                "The audit log holds what was typed too (escaped), not just how many bytes: "
                "passwords typed on the console end up in it."
            ),
        ],
        ["record-input", None, 'The recording holds the input too (asciicast "i" events).'],
        ["xonxoff", None, "Serial software flow control (XON/XOFF)."],
        [
            "wait-device",
            None,
            (
                "The device may appear later (a USB adapter not plugged in yet, a VM not "
                "started): start anyway and keep retrying instead of failing at start."
            ),
        ],
        [
            "osc52",
            None,
            (
                "Let the program on the device set the VNC viewers' clipboard (OSC 52).  Off "
                "by default: anything printed on the console could fill your clipboard."
            ),
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["socket"] = []
        self["chardev"] = []
        self["socket-ro"] = []
        self["telnet"] = []
        self.docs["telnet"] = (
            "Like --socket, but its clients speak telnet: negotiated as a serial console "
            "(character mode, remote echo, binary), IAC escaping both ways, IAC BREAK sent "
            "to the device as a serial BREAK.  Repeatable."
        )
        self.config: Config | None = None  # the one console of the command line
        self.site: Site | None = None  # every console: the command line's, or --config's
        # usage.Options takes help from opt_* docstrings, indentation and all; say it here.
        self.docs["socket"] = _SOCKET_HELP
        self.docs["chardev"] = _CHARDEV_HELP
        self.docs["socket-ro"] = (
            "Like --socket, but read-only: clients get every byte of output and whatever "
            "they send is dropped.  Repeatable."
        )

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """As usage.Options, but a mistyped option is one line and exit status 2 too,
        not twistd's whole usage text followed by the error."""
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            fail(ConfigError(f"{e} (see twistd -n vncmux --help)"))

    def opt_socket(self, value: str) -> None:
        """A raw byte endpoint (repeatable); see _SOCKET_HELP."""
        self["socket"].append(value)

    def opt_socket_ro(self, value: str) -> None:
        """A read-only raw byte endpoint (repeatable)."""
        self["socket-ro"].append(value)

    def opt_telnet(self, value: str) -> None:
        """A telnet endpoint (repeatable); see docs["telnet"]."""
        self["telnet"].append(value)

    def opt_chardev(self, value: str) -> None:
        """A QEMU -chardev (repeatable); see _CHARDEV_HELP."""
        self["chardev"].append(value)

    def postOptions(self) -> None:
        """Build and validate the Config, then check what it names on this machine; a
        mistake ends the process with one line."""
        try:
            if self["config"]:
                self.refuseConsoleOptions()
                self.site = self.loadSite()
                return
            self.config = build_config(
                device=self["device"],
                vnc=self["vnc"],
                sockets=self["socket"],
                chardevs=self["chardev"],
                cols=self["cols"],
                rows=self["rows"],
                baud=self["baud"],
                bytesize=self["bytesize"],
                parity=self["parity"],
                stopbits=self["stopbits"],
                rtscts=bool(self["rtscts"]),
                xonxoff=bool(self["xonxoff"]),
                dtr=self["dtr"],
                rts=self["rts"],
                stall_timeout=self["stall-timeout"],
                max_clients=self["max-clients"],
                encoding=self["encoding"],
                password_file=self["password-file"],
                shell=os.environ.get("SHELL") or None,
                sockets_ro=self["socket-ro"],
                view_password_file=self["view-password-file"],
                users_file=self["users-file"],
                wait_device=bool(self["wait-device"]),
                history=self["history"],
                scrollback=self["scrollback"],
                osc52=bool(self["osc52"]),
                socket_replay=self["socket-replay"],
                api=self["api"],
                api_token_file=self["api-token-file"],
                api_view_token_file=self["api-view-token-file"],
                input_policy=self["input-policy"],
                lock_idle=self["lock-idle"],
                status_line=self["status-line"],
                viewer_resize=self["viewer-resize"],
                telnets=self["telnet"],
                rfc2217=bool(self["rfc2217"]),
                break_duration=self["break-duration"],
                font=self["font"],
                font_size=self["font-size"],
                scale=self["scale"],
                palette=self["palette"],
                audit_log=self["audit-log"],
                audit_input=bool(self["audit-input"]),
                record=self["record"],
                record_input=bool(self["record-input"]),
            )
            preflight.check(self.config)
            self.site = build_site((self.config,), **self.siteOptions())
            preflight.check_tokens(self.site.tokens)
        except ConfigError as e:
            fail(e)

    def siteOptions(self) -> dict[str, Any]:
        """The site-wide options given on the command line, as ``build_site`` takes them
        (with ``--config``, a value given here wins over the file's)."""
        given: dict[str, Any] = {}
        for option in ("websockify-tokens", "redis", "token-prefix", "advertise", "web"):
            if self[option] is not None:
                given[option.replace("-", "_")] = self[option]
        return given

    def loadSite(self) -> Site:
        """Read, parse and check the ``--config`` file (at start and on each SIGHUP);
        ``ConfigError`` naming the file, the console and the key."""
        path = self["config"]
        site = parse_site(
            preflight.read_config_file(path),
            path,
            overrides=self.siteOptions(),
            shell=os.environ.get("SHELL") or None,
        )
        preflight.check_site(site)
        preflight.check_tokens(site.tokens)
        return site

    def refuseConsoleOptions(self) -> None:
        """With ``--config`` the consoles are the file's: a console option on the command
        line (``--device``, ``--vnc``...) would be silently ignored, so it is an error."""
        keys = console_keys()
        given = [o for o, default in self.defaults.items() if self[o] != default]
        given += [o for o in ("socket", "socket-ro", "chardev", "telnet") if self[o]]
        for option in given:
            key = {
                "socket": "sockets",
                "socket-ro": "sockets_ro",
                "chardev": "chardevs",
                "telnet": "telnets",
            }.get(option, option.replace("-", "_"))
            if key in keys:
                raise ConfigError(
                    f"--{option} describes a console: with --config {self['config']}, put it "
                    "in the file (a [[console]] table, or the top level for every console)"
                )


def makeService(options: Options) -> MultiService:
    """The service tree for ``options``; a resource that cannot be had (a port in use)
    is reported like any option mistake: one line, exit 2."""
    from twisted.internet import reactor

    from vncmux import service

    if options.site is None:  # parseOptions was not run (a programming error)
        options.postOptions()
    site = options.site
    assert site is not None
    load = options.loadSite if site.source is not None else None
    try:
        top = service.makeService(site, reactor, load=load)
    except ConfigError as e:
        fail(e)
    for config in site.consoles:
        lines = exposure_warnings(config) + preflight.warnings(config)
        if site.source is not None:
            lines = [f"console {config.name!r}: {line}" for line in lines]
        warn(lines)
    return top


def warn(lines: Sequence[str]) -> None:
    """Say loudly, in the log and on stderr, what runs but is unsafe (anyone on the network
    gets the console; a password file other users can read)."""
    from twisted.logger import Logger

    log = Logger()
    for line in lines:
        log.warn("WARNING: {line}", line=line)
        sys.stderr.write(f"vncmux: WARNING: {line}\n")
        sys.stderr.flush()
