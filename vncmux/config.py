"""Command-line values → plain dataclasses: ``--device``, ``--vnc``, ``--socket``, ``--chardev``.

Pure: no sockets, no files opened (checking that a tty path exists is the one look at the
filesystem).  Every problem is a ``ConfigError`` whose message is one line a person can act
on; ``vncmux.tap`` turns it into an error message and a non-zero exit before anything starts.
"""

from __future__ import annotations

import codecs
import ipaddress
import math
import os
import re
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from twisted.internet.endpoints import serverFromString


class ConfigError(Exception):
    """A bad option value; ``str()`` is the one-line message shown to the user."""


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
    tty → path + serial; unix → path; tcp → host + port; exec → command (argv list)."""

    kind: Literal["tty", "unix", "tcp", "exec"]
    path: str = ""
    host: str = ""
    port: int = 0
    command: tuple[str, ...] = ()
    serial: SerialSettings = field(default_factory=SerialSettings)
    default_shell: bool = False  # True when no --device was given (the embedded default)

    @property
    def label(self) -> str:
        if self.kind == "tty":
            return self.path
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "tcp":
            return f"tcp:{self.host}:{self.port}"
        return "exec:" + " ".join(self.command)


@dataclass(frozen=True)
class VncSpec:
    """``--vnc``: where the RFB server listens and QEMU-style options.  kind 'none' = no VNC."""

    kind: Literal["tcp", "unix", "none"]
    host: str = "127.0.0.1"  # '' = all interfaces
    port: int = 5900
    path: str = ""
    share: Literal["allow-exclusive", "force-shared", "ignore"] = "force-shared"
    connections: int = 64
    websocket: int | None = None
    options: tuple[tuple[str, str], ...] = ()  # every other key=value as given, for later issues


@dataclass(frozen=True)
class ConsoleSpec:
    """The virtual console (a ``vc`` chardev, or implied by ``--vnc``)."""

    cols: int = 80
    rows: int = 24
    width: int | None = None  # pixels, from vc,width= (QEMU semantics); cols derived from the font
    height: int | None = None


@dataclass(frozen=True)
class ByteServer:
    """A listening raw byte endpoint (``--socket`` or ``-chardev socket,server=on``):
    a Twisted server endpoint string, e.g. 'tcp:4555:interface=127.0.0.1', 'unix:/x:mode=600'."""

    endpoint: str
    label: str = ""
    readonly: bool = False  # --socket-ro: clients see the output, their input is dropped


@dataclass(frozen=True)
class ByteClient:
    """``-chardev socket,server=off``: vncmux connects out and reconnects with backoff.
    A Twisted client endpoint string, e.g. 'tcp:host=127.0.0.1:port=4555', 'unix:path=/x'."""

    endpoint: str
    label: str = ""


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


# --------------------------------------------------------------------------------------
# Small value parsers.  Each names the option in its message so the user knows what to fix.


def _int(option: str, value: str | int, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high], or a ConfigError naming ``option``."""
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise ConfigError(f"{option}: {value!r} is not a whole number") from None
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{option}: {number} is out of range (must be {bounds})")
    return number


_TRUE = {"on", "yes", "true", "y"}
_FALSE = {"off", "no", "false", "n"}


def _bool(option: str, value: str) -> bool:
    """QEMU's boolean spellings: on/off, yes/no, true/false, y/n."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{option}: {value!r} is not on or off")


def _port(option: str, value: str | int, allowZero: bool = False) -> int:
    return _int(option, value, 0 if allowZero else 1, 65535)


def _escape(value: str) -> str:
    """Quote a value for a Twisted endpoint string (``:``, ``=`` and ``\\`` are special)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _splitEndpoint(description: str) -> list[str]:
    """Split an endpoint string on unescaped colons, keeping the escapes in the parts."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(char)
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _splitOpts(value: str) -> list[str]:
    """Split a QEMU option string on commas; ``,,`` stands for a literal comma."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == ",":
            if value[index + 1 : index + 2] == ",":
                current.append(",")
                index += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _hostPort(option: str, value: str) -> tuple[str, str]:
    """'HOST:PORT' or '[V6]:PORT' → (host without brackets, port text)."""
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1 : close + 2] != ":":
            raise ConfigError(f"{option}: {value!r} is not [ADDRESS]:PORT")
        return value[1:close], value[close + 2 :]
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ConfigError(f"{option}: {value!r} is not HOST:PORT")
    return host, port


# --------------------------------------------------------------------------------------
# --device


def parse_device(value: str | None, serial: SerialSettings, shell: str | None) -> DeviceSpec:
    """``--device``: a tty path, ``unix:PATH``, ``tcp:HOST:PORT`` or ``exec:COMMAND``.

    None (no ``--device``) means running ``shell`` (the caller passes ``$SHELL``), or
    ``/bin/sh``, in a pty.  A tty path must name an existing character device: that ``stat``
    is the one look at the filesystem this module takes, so a typo fails before anything
    listens rather than as an endless reconnect loop.
    """
    if value is None:
        return DeviceSpec(
            kind="exec", command=(shell or "/bin/sh",), serial=serial, default_shell=True
        )
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path:
            raise ConfigError("--device unix: needs a path (unix:/path/to/socket)")
        return DeviceSpec(kind="unix", path=path, serial=serial)
    if value.startswith("tcp:"):
        host, port = _hostPort("--device", value[len("tcp:") :])
        if not host:
            raise ConfigError(f"--device {value}: needs a host (tcp:HOST:PORT)")
        return DeviceSpec(kind="tcp", host=host, port=_port("--device port", port), serial=serial)
    if value.startswith("exec:"):
        try:
            command = tuple(shlex.split(value[len("exec:") :]))
        except ValueError as e:
            raise ConfigError(f"--device {value}: {e}") from None
        if not command:
            raise ConfigError("--device exec: needs a command (exec:COMMAND ARGS...)")
        return DeviceSpec(kind="exec", command=command, serial=serial)
    if not value:
        raise ConfigError("--device: empty value")
    try:
        mode = os.stat(value).st_mode
    except FileNotFoundError:
        raise ConfigError(f"device {value} does not exist") from None
    except OSError as e:
        raise ConfigError(f"device {value}: {e.strerror}") from None
    if not stat.S_ISCHR(mode):
        raise ConfigError(f"device {value} is not a character device (a tty)")
    return DeviceSpec(kind="tty", path=value, serial=serial)


def parse_serial(
    baud: str | int = 115200,
    bytesize: str | int = 8,
    parity: str = "N",
    stopbits: str | float = 1,
    rtscts: bool = False,
    xonxoff: bool = False,
    dtr: str | bool | None = None,
    rts: str | bool | None = None,
) -> SerialSettings:
    """Validate the serial options (strings as typed, or already-typed values)."""
    parityText = str(parity).strip().upper()
    if parityText not in ("N", "E", "O", "M", "S"):
        raise ConfigError(f"--parity: {parity!r} is not one of N, E, O, M, S")
    stopText = str(stopbits).strip()
    stops = {"1": 1.0, "1.0": 1.0, "1.5": 1.5, "2": 2.0, "2.0": 2.0}
    if stopText not in stops:
        raise ConfigError(f"--stopbits: {stopbits!r} is not 1, 1.5 or 2")

    def onOff(option: str, value: str | bool | None) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        return _bool(option, value)

    return SerialSettings(
        baud=_int("--baud", baud, 1),
        bytesize=_int("--bytesize", bytesize, 5, 8),
        parity=cast(Literal["N", "E", "O", "M", "S"], parityText),
        stopbits=stops[stopText],
        rtscts=bool(rtscts),
        xonxoff=bool(xonxoff),
        dtr=onOff("--dtr", dtr),
        rts=onOff("--rts", rts),
    )


# --------------------------------------------------------------------------------------
# --vnc

_VNC_OPTION_KEYS = (
    "share",
    "connections",
    "websocket",
    "password",
    "tls-cert",
    "tls-key",
    "tls-ca",
    "x509verify",
    "cleartext",
)
_SHARE = ("allow-exclusive", "force-shared", "ignore")


def parse_vnc(value: str) -> VncSpec:
    """``--vnc`` in QEMU's ``-vnc`` syntax.

    ``[HOST]:N`` listens on TCP port 5900+N; an empty HOST (``:0``) means every interface,
    as in QEMU; ``[::1]:N`` is IPv6; ``unix:PATH``; ``none``.  Then ``,key=value`` options:
    ``share``, ``connections``, ``websocket`` (a port, or ``on`` for 5700+N), and the ones
    kept for later in ``options`` (``password``, ``tls-cert``, ``tls-key``, ``tls-ca``,
    ``x509verify``).  Any other key is an error rather than silently ignored.
    """
    parts = _splitOpts(value.strip())
    display, options = parts[0], parts[1:]
    if display == "none":
        if options:
            raise ConfigError("--vnc none takes no options")
        return VncSpec(kind="none")
    kind: Literal["tcp", "unix"]
    host, port, path, number = "", 0, "", 0
    if display.startswith("unix:"):
        kind, path = "unix", display[len("unix:") :]
        if not path:
            raise ConfigError("--vnc unix: needs a path (unix:/path/to/socket)")
    else:
        kind = "tcp"
        try:
            host, numberText = _hostPort("--vnc", display)
        except ConfigError:
            raise ConfigError(
                f"--vnc {display!r}: expected [HOST]:DISPLAY, [IPV6]:DISPLAY, unix:PATH or none"
            ) from None
        number = _int("--vnc display number", numberText, 0, 65535 - 5900)
        port = 5900 + number

    share: Literal["allow-exclusive", "force-shared", "ignore"] = "force-shared"
    connections = 64
    websocket: int | None = None
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for option in options:
        key, sep, val = option.partition("=")
        if not sep:
            val = "on"  # QEMU: a bare key is key=on
        if key not in _VNC_OPTION_KEYS:
            raise ConfigError(
                f"--vnc: unknown option {key!r} (known: {', '.join(_VNC_OPTION_KEYS)})"
            )
        if key in seen:
            raise ConfigError(f"--vnc: option {key!r} given twice")
        seen.add(key)
        if key == "share":
            if val not in _SHARE:
                raise ConfigError(f"--vnc share={val}: must be one of {', '.join(_SHARE)}")
            share = cast(Literal["allow-exclusive", "force-shared", "ignore"], val)
        elif key == "connections":
            connections = _int("--vnc connections", val, 1)
        elif key == "websocket":
            if val == "on":
                if kind != "tcp":
                    raise ConfigError("--vnc websocket=on needs a TCP display; give a port")
                websocket = 5700 + number
            else:
                websocket = _port("--vnc websocket", val)
        elif key in ("password", "cleartext"):
            kept.append((key, "on" if _bool(f"--vnc {key}", val) else "off"))
        else:
            if not val:
                raise ConfigError(f"--vnc {key}= needs a value")
            kept.append((key, val))
    if kind == "unix":
        return VncSpec(
            kind="unix",
            path=path,
            share=share,
            connections=connections,
            websocket=websocket,
            options=tuple(kept),
        )
    return VncSpec(
        kind="tcp",
        host=host,
        port=port,
        share=share,
        connections=connections,
        websocket=websocket,
        options=tuple(kept),
    )


# --------------------------------------------------------------------------------------
# --socket


_SOCKET_TYPES = ("tcp", "tcp6", "unix", "ssl")


def parse_socket(value: str, label: str = "", readonly: bool = False) -> ByteServer:
    """``--socket``: a Twisted server endpoint string, checked by building (not listening
    on) the endpoint.  A UNIX socket without ``mode=`` gets ``mode=600``: the console is a
    root shell often enough that other local users must not reach it by default."""
    parts = _splitEndpoint(value)
    kind = parts[0]
    if kind not in _SOCKET_TYPES or len(parts) < 2 or not parts[1]:
        raise ConfigError(
            f"--socket {value}: expected tcp:PORT[:interface=ADDR], unix:PATH[:mode=600] "
            "or ssl:PORT:privateKey=...:certKey=..."
        )
    if kind in ("tcp", "tcp6", "ssl") and "=" not in parts[1]:
        _port(f"--socket {value} port", parts[1], allowZero=True)
    endpoint = value
    if kind == "unix" and not any(p.startswith("mode=") for p in parts[2:]):
        endpoint = value + ":mode=600"
    try:
        serverFromString(object(), endpoint)  # builds the endpoint object; nothing listens
    except (ValueError, TypeError, KeyError, OSError, ImportError) as e:
        raise ConfigError(f"--socket {value}: {e}") from None
    return ByteServer(endpoint=endpoint, label=label or value, readonly=readonly)


# --------------------------------------------------------------------------------------
# --chardev

_MUX_TYPES = ("mux-be", "hub")
_CHARDEV_KEYS: dict[str, frozenset[str]] = {
    "socket": frozenset({"path", "host", "port", "server", "wait", "telnet", "nodelay", "mode"}),
    "vc": frozenset({"cols", "rows", "width", "height"}),
    "file": frozenset({"path", "append"}),
    "pty": frozenset(),
    "mux-be": frozenset(),
    "hub": frozenset(),  # plus chardevs.N
}
_BOOL_KEYS = frozenset({"server", "wait", "telnet", "nodelay", "append"})
_COMMON_KEYS = frozenset({"id", "mux-be-id"})
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")
_HUB_MEMBER = re.compile(r"chardevs\.(\d+)\Z")


@dataclass
class _Chardev:
    """One ``--chardev`` as written: its type, id and key=value pairs."""

    kind: str
    id: str
    opts: dict[str, str]
    members: list[tuple[int, str]] = field(default_factory=list)  # hub chardevs.N, by N

    def name(self) -> str:
        return f"chardev {self.id}"


def _parseOneChardev(spec: str) -> _Chardev:
    parts = _splitOpts(spec)
    kind = parts[0].strip()
    if not kind or "=" in kind:
        raise ConfigError(
            f"--chardev {spec}: must start with the type "
            f"({', '.join(_CHARDEV_KEYS)}), e.g. socket,id=sock0,path=/tmp/sock,server=on"
        )
    opts: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, val = part.partition("=")
        if not sep:
            # QEMU's legacy flags: a bare 'server' is server=on, 'nowait' is wait=off.
            if key in _BOOL_KEYS:
                val = "on"
            elif key.startswith("no") and key[2:] in _BOOL_KEYS:
                key, val = key[2:], "off"
        if key in opts:
            raise ConfigError(f"--chardev {spec}: {key}= given twice")
        opts[key] = val
    if kind not in _CHARDEV_KEYS:
        raise ConfigError(
            f"--chardev {spec}: unknown chardev type {kind!r} (known: {', '.join(_CHARDEV_KEYS)})"
        )
    ident = opts.get("id")
    if not ident:
        raise ConfigError(f"--chardev {spec}: missing id= (every chardev needs one)")
    if not _ID.match(ident):
        raise ConfigError(
            f"--chardev {spec}: id {ident!r} is not valid (a letter, then letters, digits, "
            "'-', '.', '_')"
        )
    chardev = _Chardev(kind=kind, id=ident, opts=opts)
    allowed = _CHARDEV_KEYS[kind] | _COMMON_KEYS
    for key, val in opts.items():
        member = _HUB_MEMBER.match(key)
        if kind == "hub" and member:
            if not val:
                raise ConfigError(f"chardev {ident}: {key}= needs a chardev id")
            chardev.members.append((int(member.group(1)), val))
        elif key not in allowed:
            raise ConfigError(
                f"chardev {ident}: unknown key {key!r} for a {kind} chardev"
                + (f" (known: {', '.join(sorted(allowed))})" if allowed else "")
            )
        elif not val:
            raise ConfigError(f"chardev {ident}: {key} needs a value ({key}=...)")
    chardev.members.sort()
    if kind == "hub" and not chardev.members:
        raise ConfigError(f"chardev {ident}: a hub needs chardevs.0=ID, chardevs.1=ID, ...")
    return chardev


def _socketBackend(cd: _Chardev) -> ByteServer | ByteClient:
    """A socket chardev → the server endpoint we listen on or the client one we dial."""
    o = cd.opts
    where = cd.name()
    if _bool(f"{where} telnet", o.get("telnet", "off")):
        raise ConfigError(f"{where}: telnet=on is not supported (raw sockets only)")
    if "nodelay" in o:
        _bool(f"{where} nodelay", o["nodelay"])
    server = _bool(f"{where} server", o.get("server", "off"))
    path = o.get("path")
    if path is not None and ("host" in o or "port" in o):
        raise ConfigError(f"{where}: give either path= or host=/port=, not both")
    if path is None and "port" not in o:
        raise ConfigError(f"{where}: a socket needs path= (UNIX) or port= (TCP)")
    if not server:
        if "wait" in o:
            raise ConfigError(f"{where}: wait= only applies to server=on sockets")
        if "mode" in o:
            raise ConfigError(f"{where}: mode= only applies to server=on UNIX sockets")
        if path is not None:
            return ByteClient(endpoint="unix:path=" + _escape(path), label=cd.id)
        host = o.get("host", "").strip("[]") or "127.0.0.1"
        port = _port(f"{where} port", o["port"])
        return ByteClient(endpoint=f"tcp:host={_escape(host)}:port={port}", label=cd.id)
    if "wait" in o:
        _bool(f"{where} wait", o["wait"])  # accepted; vncmux never waits for a client
    if path is not None:
        mode = o.get("mode", "600")
        try:
            int(mode, 8)
        except ValueError:
            raise ConfigError(f"{where}: mode={mode} is not an octal file mode") from None
        return ByteServer(endpoint=f"unix:{_escape(path)}:mode={mode}", label=cd.id)
    if "mode" in o:
        raise ConfigError(f"{where}: mode= only applies to UNIX sockets")
    port = _port(f"{where} port", o["port"], allowZero=True)
    host = o.get("host", "").strip("[]")
    if not host:
        return ByteServer(endpoint=f"tcp:{port}", label=cd.id)
    kind = "tcp6" if ":" in host else "tcp"
    return ByteServer(endpoint=f"{kind}:{port}:interface={_escape(host)}", label=cd.id)


def parse_chardevs(specs: Sequence[str], *, cols: int = 80, rows: int = 24) -> ChardevPlan:
    """``--chardev`` options in QEMU syntax → the backends to build.

    The device is vncmux's one frontend, so at most one ``mux-be`` or ``hub`` may be
    declared; when one is, every other chardev must be attached to it (``mux-be-id=`` for a
    mux-be, ``chardevs.N=`` for a hub), exactly once.  Without one every chardev is simply a
    backend.  ``cols``/``rows`` size a ``vc`` that does not give its own.
    """
    chardevs = [_parseOneChardev(spec) for spec in specs]
    byId: dict[str, _Chardev] = {}
    for cd in chardevs:
        if cd.id in byId:
            raise ConfigError(f"duplicate chardev id {cd.id!r}")
        byId[cd.id] = cd

    attachedTo: dict[str, list[str]] = {}
    for cd in chardevs:
        target = cd.opts.get("mux-be-id")
        if target is None:
            continue
        if target not in byId:
            raise ConfigError(f"{cd.name()}: mux-be-id={target} names no chardev (dangling)")
        if byId[target].kind != "mux-be":
            raise ConfigError(
                f"{cd.name()}: mux-be-id={target} names a {byId[target].kind} chardev, "
                "not a mux-be (dangling)"
            )
        if cd.kind in _MUX_TYPES:
            raise ConfigError(
                f"{cd.name()} is a {cd.kind} attached to mux-be {target} (stacked mux: "
                "a mux cannot be a backend of another)"
            )
        attachedTo.setdefault(cd.id, []).append(target)
    for hub in chardevs:
        for index, member in hub.members:
            if member not in byId:
                raise ConfigError(
                    f"{hub.name()}: chardevs.{index}={member} names no chardev (dangling)"
                )
            if byId[member].kind in _MUX_TYPES:
                raise ConfigError(
                    f"{hub.name()}: chardevs.{index}={member} is a {byId[member].kind} "
                    "(stacked mux: a mux cannot be a backend of another)"
                )
            attachedTo.setdefault(member, []).append(hub.id)
    for ident, owners in attachedTo.items():
        if len(owners) > 1:
            if len(set(owners)) == 1:
                raise ConfigError(f"chardev {ident} is attached to {owners[0]} twice")
            raise ConfigError(
                f"chardev {ident} is attached to both {owners[0]} and {owners[1]} "
                "(a chardev can belong to one hub only)"
            )

    vcs = [cd for cd in chardevs if cd.kind == "vc"]
    if len(vcs) > 1:
        raise ConfigError(
            f"more than one vc chardev ({', '.join(cd.id for cd in vcs)}): "
            "vncmux has one virtual console"
        )
    muxes = [cd for cd in chardevs if cd.kind in _MUX_TYPES]
    if len(muxes) > 1:
        raise ConfigError(
            f"more than one mux-be/hub ({', '.join(cd.id for cd in muxes)}): "
            "vncmux has one device, so at most one"
        )
    mux = muxes[0] if muxes else None
    if mux is not None:
        for cd in chardevs:
            if cd.kind not in _MUX_TYPES and cd.id not in attachedTo:
                how = (
                    f"add mux-be-id={mux.id}"
                    if mux.kind == "mux-be"
                    else f"list it as chardevs.N={cd.id} in {mux.id}"
                )
                raise ConfigError(f"chardev {cd.id} is not attached to the hub {mux.id} ({how})")

    servers: list[ByteServer] = []
    clients: list[ByteClient] = []
    logfiles: list[LogFile] = []
    ptys: list[PtyBackend] = []
    console: ConsoleSpec | None = None
    for cd in chardevs:
        o = cd.opts
        if cd.kind == "socket":
            backend = _socketBackend(cd)
            if isinstance(backend, ByteServer):
                servers.append(backend)
            else:
                clients.append(backend)
        elif cd.kind == "file":
            path = o.get("path")
            if not path:
                raise ConfigError(f"{cd.name()}: a file chardev needs path=")
            if not _bool(f"{cd.name()} append", o.get("append", "on")):
                raise ConfigError(f"{cd.name()}: append=off is not supported (vncmux appends)")
            logfiles.append(LogFile(path=path, label=cd.id))
        elif cd.kind == "pty":
            ptys.append(PtyBackend(label=cd.id))
        elif cd.kind == "vc":
            console = ConsoleSpec(
                cols=_int(f"{cd.name()} cols", o["cols"], 1, 1000) if "cols" in o else cols,
                rows=_int(f"{cd.name()} rows", o["rows"], 1, 1000) if "rows" in o else rows,
                width=_int(f"{cd.name()} width", o["width"], 1, 16384) if "width" in o else None,
                height=(
                    _int(f"{cd.name()} height", o["height"], 1, 16384) if "height" in o else None
                ),
            )
    return ChardevPlan(
        servers=tuple(servers),
        clients=tuple(clients),
        logfiles=tuple(logfiles),
        ptys=tuple(ptys),
        console=console,
        mux=mux.id if mux else None,
    )


# --------------------------------------------------------------------------------------
# Everything together


def parse_encoding(value: str) -> str:
    """A Python text codec name (utf-8, latin-1, cp437, ...), returned in canonical form."""
    try:
        info = codecs.lookup(value)
    except LookupError:
        raise ConfigError(f"--encoding: unknown encoding {value!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigError(f"--encoding: {value!r} is not a text encoding")
    return info.name


def build_config(
    *,
    device: str | None = None,
    vnc: str = "127.0.0.1:0",
    sockets: Sequence[str] = (),
    chardevs: Sequence[str] = (),
    cols: str | int = 80,
    rows: str | int = 24,
    baud: str | int = 115200,
    bytesize: str | int = 8,
    parity: str = "N",
    stopbits: str | float = 1,
    rtscts: bool = False,
    xonxoff: bool = False,
    dtr: str | bool | None = None,
    rts: str | bool | None = None,
    stall_timeout: str | float = 10.0,
    max_clients: str | int = 64,
    encoding: str = "utf-8",
    password_file: str | None = None,
    shell: str | None = None,
    sockets_ro: Sequence[str] = (),
    view_password_file: str | None = None,
    users_file: str | None = None,
) -> Config:
    """Every option, validated, into one ``Config``.  Values may be the strings as typed.

    The console exists when a ``vc`` chardev is declared or ``--vnc`` is not ``none``;
    ``--vnc none`` without a ``vc`` makes vncmux a pure byte multiplexer.
    """
    colsN = _int("--cols", cols, 1, 1000)
    rowsN = _int("--rows", rows, 1, 1000)
    serial = parse_serial(baud, bytesize, parity, stopbits, rtscts, xonxoff, dtr, rts)
    vncSpec = parse_vnc(vnc)
    servers = [parse_socket(s) for s in sockets]
    servers += [parse_socket(s, readonly=True) for s in sockets_ro]
    plan = parse_chardevs(chardevs, cols=colsN, rows=rowsN)
    try:
        stall = float(str(stall_timeout))
    except ValueError:
        raise ConfigError(f"--stall-timeout: {stall_timeout!r} is not a number") from None
    if not math.isfinite(stall) or stall < 0:
        raise ConfigError(f"--stall-timeout: {stall_timeout} must be 0 (never) or more seconds")
    maxClients = _int("--max-clients", max_clients, 1)
    codec = parse_encoding(encoding)
    for option, path in (
        ("--password-file", password_file),
        ("--view-password-file", view_password_file),
        ("--users-file", users_file),
    ):
        if path is not None:
            if not os.path.isfile(path):
                raise ConfigError(f"{option} {path} does not exist")
            if not os.access(path, os.R_OK):
                raise ConfigError(f"{option} {path} is not readable")
    # pure; checks the TLS option combos (imported here: vncmux.rfb.tls imports us)
    from vncmux.rfb.tls import settings_from_options

    tls = settings_from_options(vncSpec.options)
    if users_file is not None and tls is None:
        raise ConfigError(
            "--users-file needs TLS (--vnc ...,tls-cert=FILE): user passwords "
            "are never sent in clear text"
        )
    if ("cleartext", "on") in vncSpec.options and tls is None:
        raise ConfigError("--vnc cleartext=on only makes sense with tls-cert=")
    console = plan.console
    if console is None and vncSpec.kind != "none":
        console = ConsoleSpec(cols=colsN, rows=rowsN)
    return Config(
        device=parse_device(device, serial, shell),
        vnc=vncSpec,
        console=console,
        servers=tuple(servers) + plan.servers,
        clients=plan.clients,
        logfiles=plan.logfiles,
        ptys=plan.ptys,
        max_clients=maxClients,
        stall_timeout=stall,
        encoding=codec,
        password_file=password_file,
        view_password_file=view_password_file,
        users_file=users_file,
    )


# --------------------------------------------------------------------------------------
# Exposure: who can reach the console without proving anything


def _loopbackHost(host: str) -> bool:
    """True for an address only this machine can reach ('' = every interface is not)."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '' or a host name: assume reachable from elsewhere


def _endpointExposed(endpoint: str) -> bool:
    """Does a server endpoint string listen beyond loopback (UNIX sockets never do)?"""
    parts = _splitEndpoint(endpoint)
    if parts[0] not in ("tcp", "tcp6", "ssl"):
        return False
    for part in parts[2:]:
        key, _sep, val = part.partition("=")
        if key == "interface":
            return not _loopbackHost(val.replace("\\", ""))
    for part in parts[1:2]:
        key, _sep, val = part.partition("=")
        if key == "interface":
            return not _loopbackHost(val.replace("\\", ""))
    return True


def exposure_warnings(config: Config) -> list[str]:
    """One line per listener reachable from other machines with no authentication at all.

    A VNC server counts as authenticated with a password (given or generated for the
    default shell), a view password, a users file or verified client certificates.  Raw
    byte sockets have no authentication of their own: any TCP one beyond loopback is
    listed (TLS on an ``ssl:`` endpoint encrypts but does not authenticate)."""
    warnings: list[str] = []
    vnc = config.vnc
    if vnc.kind == "tcp" and not _loopbackHost(vnc.host):
        opts = dict(vnc.options)
        verify = opts.get("x509verify", "off").lower() not in ("off", "no", "false", "n")
        authenticated = bool(
            config.password_file
            or config.view_password_file
            or config.users_file
            or config.device.default_shell
            or verify
        )
        if not authenticated:
            where = vnc.host or "all interfaces"
            warnings.append(
                f"VNC listens on {where} port {vnc.port} WITHOUT AUTHENTICATION: anyone who "
                "can reach it gets the console (use --password-file, or listen on 127.0.0.1)"
            )
    for server in config.servers:
        if _endpointExposed(server.endpoint):
            warnings.append(
                f"byte socket {server.endpoint} listens beyond loopback WITHOUT "
                "AUTHENTICATION: anyone who can reach it gets the console (use "
                "interface=127.0.0.1 or a unix: socket)"
            )
    return warnings
