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
from vncmux.config import Config, build_config, exposure_warnings
from vncmux.errors import ConfigError


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
    "[,replay=SIZE]; vc,id=ID[,cols=C,rows=R|width=PX,height=PX]; file,id=ID,path=P; pty,id=ID; "
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
                "as in :0, means all interfaces; [::1]:N for IPv6), unix:PATH, or none.  Options: "
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
            "api-token-file",
            None,
            None,
            "A file whose first line is the API's bearer token (full access).",
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
            "users-file",
            None,
            None,
            (
                "user:password[:view] lines for VeNCrypt X509Plain (needs --vnc ...,tls-cert=); "
                "':view' makes that user view-only."
            ),
        ],
    ]

    optFlags: ClassVar[list[list[Any]]] = [
        ["rtscts", None, "Serial hardware flow control (RTS/CTS)."],
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
        self.config: Config | None = None
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

    def opt_chardev(self, value: str) -> None:
        """A QEMU -chardev (repeatable); see _CHARDEV_HELP."""
        self["chardev"].append(value)

    def postOptions(self) -> None:
        """Build and validate the Config, then check what it names on this machine; a
        mistake ends the process with one line."""
        try:
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
            )
            preflight.check(self.config)
        except ConfigError as e:
            fail(e)


def makeService(options: Options) -> MultiService:
    """The service tree for ``options``; a resource that cannot be had (a port in use)
    is reported like any option mistake: one line, exit 2."""
    from twisted.internet import reactor

    from vncmux import service

    if options.config is None:  # parseOptions was not run (a programming error)
        options.postOptions()
    assert options.config is not None
    try:
        top = service.makeService(options.config, reactor)
    except ConfigError as e:
        fail(e)
    warn(exposure_warnings(options.config) + preflight.warnings(options.config))
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
