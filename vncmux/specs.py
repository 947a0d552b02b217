"""What a vncmux configuration is: the frozen dataclasses the parsers produce.

Plain data, no behaviour beyond a label: ``vncmux.qemu_opts`` and ``vncmux.config`` build
them from the command line, ``vncmux.preflight`` looks at the files they name, and the
services (``devices``, ``sockets``, ``rfb.service``) are built from them.  Nothing here reads
a file or knows about Twisted, so every layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ShareMode = Literal["allow-exclusive", "force-shared", "ignore"]


@dataclass(frozen=True)
class SerialSettings:
    """pyserial settings for a tty device; dtr/rts None means 'leave as the driver has it'."""

    baud: int = 115200
    bytesize: int = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False
    dtr: bool | None = None
    rts: bool | None = None


@dataclass(frozen=True)
class DeviceSpec:
    """The one frontend.  ``kind`` decides which fields matter:
    tty → path + serial; unix → path; tcp → host + port; exec → command (argv list);
    telnet (a telnet serial port) → host + port; rfc2217 → host + port + serial.

    ``wait`` (``--wait-device``): the device may appear later (a USB adapter not plugged in
    yet, a VM not started), so start anyway and keep retrying instead of refusing to start.
    """

    kind: Literal["tty", "unix", "tcp", "exec", "telnet", "rfc2217"]
    path: str = ""
    host: str = ""
    port: int = 0
    command: tuple[str, ...] = ()
    serial: SerialSettings = field(default_factory=SerialSettings)
    default_shell: bool = False  # True when no --device was given (the embedded default)
    wait: bool = False

    @property
    def label(self) -> str:
        if self.kind == "tty":
            return self.path
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind in ("tcp", "telnet"):
            return f"{self.kind}:{self.host}:{self.port}"
        if self.kind == "rfc2217":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"rfc2217://{host}:{self.port}"
        return "exec:" + " ".join(self.command)


@dataclass(frozen=True)
class TlsSettings:
    """VeNCrypt's TLS, as the ``--vnc`` options name it: file paths, not yet read.

    ``key`` is the cert file when ``tls-key=`` is not given (one PEM holding both).
    ``verify``: a client certificate signed by ``ca`` is required (``x509verify=on``);
    ``ca`` is then always set."""

    cert: str
    key: str
    ca: str | None = None
    verify: bool = False


@dataclass(frozen=True)
class VncSpec:
    """``--vnc``: where the RFB server listens and how.  kind 'none' = no VNC server.

    ``tls`` None: no VeNCrypt.  ``cleartext``: with TLS, also offer the unencrypted security
    types (only ever True together with ``tls``)."""

    kind: Literal["tcp", "unix", "none", "systemd"]  # systemd: path = the fd index or name
    host: str = "127.0.0.1"  # '' = all interfaces
    port: int = 5900
    path: str = ""
    share: ShareMode = "force-shared"
    connections: int = 64
    websocket: int | None = None
    tls: TlsSettings | None = None
    cleartext: bool = False


@dataclass(frozen=True)
class ConsoleSpec:
    """The virtual console (a ``vc`` chardev, or implied by ``--vnc``)."""

    cols: int = 80
    rows: int = 24
    width: int | None = None  # pixels, from vc,width= (QEMU semantics); cols derived from the font
    height: int | None = None


@dataclass(frozen=True)
class FontSpec:
    """How the console's cells are drawn: ``--font`` (None: the bundled Terminus),
    ``--font-size`` pixels, ``--scale`` (each font pixel a scale×scale square) and
    ``--palette`` (a name of ``vncmux.console.palette.NAMED`` or a file of 16 colours)."""

    path: str | None = None
    size: int = 16
    scale: int = 1
    palette: str = "default"


@dataclass(frozen=True)
class ByteServer:
    """A listening raw byte endpoint (``--socket`` or ``-chardev socket,server=on``):
    a Twisted server endpoint string, e.g. 'tcp:4555:interface=127.0.0.1', 'unix:/x:mode=600'."""

    endpoint: str
    label: str = ""
    readonly: bool = False  # --socket-ro: clients see the output, their input is dropped
    replay: int = 0  # bytes of history a client gets on connect (replay=, --socket-replay)
    telnet: bool = False  # --telnet, chardev telnet=on: clients speak telnet (vncmux.telnet)
    rfc2217: bool = False  # --rfc2217, chardev rfc2217=on: telnet clients may set the tty


@dataclass(frozen=True)
class ByteClient:
    """``-chardev socket,server=off``: vncmux connects out and reconnects with backoff.
    A Twisted client endpoint string, e.g. 'tcp:host=127.0.0.1:port=4555', 'unix:path=/x'."""

    endpoint: str
    label: str = ""
    replay: int = 0  # bytes of history sent on each (re)connect, before the live stream


@dataclass(frozen=True)
class LogFile:
    """``-chardev file,path=``: every device byte appended to ``path``."""

    path: str
    label: str = ""


@dataclass(frozen=True)
class PtyBackend:
    """``-chardev pty``: a new pty whose slave path is logged for screen/tio/minicom."""

    label: str = ""


@dataclass(frozen=True)
class ChardevPlan:
    """What a list of ``--chardev`` options asks for, sorted into the backends we build.

    ``mux`` is the id of the declared ``mux-be``/``hub`` (None when there is none: then every
    chardev is simply a backend of the hub).  ``console`` is set when a ``vc`` was declared.
    """

    servers: tuple[ByteServer, ...] = ()
    clients: tuple[ByteClient, ...] = ()
    logfiles: tuple[LogFile, ...] = ()
    ptys: tuple[PtyBackend, ...] = ()
    console: ConsoleSpec | None = None
    mux: str | None = None


@dataclass(frozen=True)
class ApiSpec:
    """``--api``: where the HTTP/JSON API listens (a Twisted server endpoint string; a UNIX
    socket gets ``mode=600``) and the files holding its bearer tokens.  ``token_file``
    allows everything, ``view_token_file`` only reading; with neither, the API is open to
    whoever can reach it, which ``vncmux.config`` allows only on a UNIX socket."""

    endpoint: str
    token_file: str | None = None
    view_token_file: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything makeService needs, validated."""

    device: DeviceSpec
    vnc: VncSpec
    console: ConsoleSpec | None  # None: pure byte multiplexer, no terminal emulator
    servers: tuple[ByteServer, ...] = ()
    clients: tuple[ByteClient, ...] = ()
    logfiles: tuple[LogFile, ...] = ()
    ptys: tuple[PtyBackend, ...] = ()
    max_clients: int = 64
    stall_timeout: float = 10.0
    encoding: str = "utf-8"
    password_file: str | None = None
    view_password_file: str | None = None  # a second VNC password: view-only viewers
    users_file: str | None = None  # user:password[:view] lines for VeNCrypt X509Plain
    history: int = 1 << 20  # --history: bytes of output kept in memory (0: none)
    scrollback: int = 10_000  # --scrollback: lines viewers can scroll back to (0: none)
    osc52: bool = False  # --osc52: the application may set the viewers' clipboard
    api: ApiSpec | None = None  # --api: the HTTP/JSON API (None: off)
    audit_log: str | None = None  # --audit-log: JSON lines, one per client/device event
    audit_input: bool = False  # --audit-input: the audit log holds the input bytes too
    record: str | None = None  # --record: the device output as an asciicast v2 file
    record_input: bool = False  # --record-input: the recording holds "i" events too
    exclusive_input: bool = False  # --input-policy exclusive: one client types at a time
    lock_idle: float = 30.0  # --lock-idle: seconds of quiet after which the holder loses it
    status_line: bool = False  # --status-line: who has the keyboard, below the terminal
    viewer_resize: str = "auto"  # --viewer-resize auto|on|off: viewers may resize the console
    break_duration: float = 0.25  # --break-duration: seconds a serial BREAK lasts
    font: FontSpec = FontSpec()  # --font, --font-size, --scale, --palette
    name: str = "console"  # the console's name in a site (URL-safe; "console" on the command line)


#: One console's configuration, by the name the config file uses for it.
ConsoleConfig = Config


@dataclass(frozen=True)
class RedisTarget:
    """``--redis redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``: where routing entries go."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def label(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"  # never the password


@dataclass(frozen=True)
class TokenSettings:
    """websockify routing entries for the consoles (``vncmux.tokens``): one file per
    console in ``directory`` (TokenFile), and/or keys in ``redis`` (TokenRedis) with a TTL
    of ``ttl`` seconds; the token is ``prefix`` + the console's name; ``advertise`` is the
    host websockify should connect to (None: the VNC listening address, or this host's
    name when it listens on every interface)."""

    directory: str | None = None
    redis: RedisTarget | None = None
    prefix: str = ""
    advertise: str | None = None
    ttl: int = 30

    @property
    def enabled(self) -> bool:
        return self.directory is not None or self.redis is not None


@dataclass(frozen=True)
class Site:
    """Everything one vncmux process runs: its consoles, in order, with unique names, and
    the settings they share (added as fields with defaults).  ``source`` is the config file
    they were read from (None: the command line, one console named ``console``); a reload
    re-reads it and compares each console's ``Config`` by value."""

    consoles: tuple[Config, ...]
    source: str | None = None
    tokens: TokenSettings = field(default_factory=TokenSettings)  # websockify routing
    web: str | None = None  # --web: the site's HTTP entry (a server endpoint string), or off
