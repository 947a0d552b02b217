"""QEMU's option strings → specs: ``-vnc`` and ``-chardev``, and the value spellings they share.

QEMU's rules, so its command lines run verbatim: ``key=value`` pairs split on commas, ``,,``
for a literal comma, a bare ``key`` meaning ``key=on``, booleans spelt on/off, yes/no,
true/false, y/n.  Pure: strings in, ``vncmux.specs`` dataclasses or a one-line
``ConfigError`` out; no file is looked at (``vncmux.preflight`` does that at start-up).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from vncmux.errors import ConfigError
from vncmux.specs import (
    ByteClient,
    ByteServer,
    ChardevPlan,
    ConsoleSpec,
    LogFile,
    PtyBackend,
    ShareMode,
    TlsSettings,
    VncSpec,
)

# --------------------------------------------------------------------------------------
# Small value parsers.  Each names the option in its message so the user knows what to fix.


def parse_int(option: str, value: str | int, low: int, high: int | None = None) -> int:
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


def parse_bool(option: str, value: str) -> bool:
    """QEMU's boolean spellings: on/off, yes/no, true/false, y/n."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{option}: {value!r} is not on or off")


_SIZE = re.compile(r"\s*(\d+)\s*(?:([KMGT])(?:iB)?|B)?\s*\Z", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MAX_SIZE = 1 << 30  # a bound on in-memory sizes: a typo must not eat the machine


def parse_size(option: str, value: str | int, high: int = MAX_SIZE) -> int:
    """A byte count as QEMU spells sizes: ``65536``, ``64K``, ``1M``, ``1G`` (binary
    units, any case, ``KiB`` and a ``B`` suffix accepted too); 0 up to ``high``."""
    match = _SIZE.match(str(value))
    if match is None:
        raise ConfigError(f"{option}: {value!r} is not a size (bytes, or 64K, 1M, 1G)")
    number = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").upper()]
    if number > high:
        raise ConfigError(f"{option}: {value} is too large (at most {high >> 20}M)")
    return number


def parse_port(option: str, value: str | int, allowZero: bool = False) -> int:
    """A TCP port number, 1-65535 (0 too with ``allowZero``: 'any free port')."""
    return parse_int(option, value, 0 if allowZero else 1, 65535)


def escape_endpoint(value: str) -> str:
    """Quote a value for a Twisted endpoint string (``:``, ``=`` and ``\\`` are special)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def split_options(value: str) -> list[str]:
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


def host_port(option: str, value: str) -> tuple[str, str]:
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
_NO_MONITOR = (
    "--vnc password=on: QEMU takes that password later through its monitor, and vncmux has "
    "no monitor; give the password with --password-file FILE instead"
)


def _vncOptions(options: list[str]) -> dict[str, str]:
    """``key=value`` options → a dict, refusing unknown keys, repeats and empty values."""
    values: dict[str, str] = {}
    for option in options:
        key, sep, val = option.partition("=")
        if not sep:
            val = "on"  # QEMU: a bare key is key=on
        if key not in _VNC_OPTION_KEYS:
            raise ConfigError(
                f"--vnc: unknown option {key!r} (known: {', '.join(_VNC_OPTION_KEYS)})"
            )
        if key in values:
            raise ConfigError(f"--vnc: option {key!r} given twice")
        if not val:
            raise ConfigError(f"--vnc {key}= needs a value")
        values[key] = val
    return values


def parse_tls(values: dict[str, str]) -> TlsSettings | None:
    """The TLS settings among the ``--vnc`` options; None when TLS is not asked for.

    ``tls-cert=FILE[,tls-key=FILE][,tls-ca=FILE][,x509verify=on]``: ``tls-key`` defaults to
    the cert file (one PEM holding both); ``x509verify=on`` needs ``tls-ca``.  QEMU's older
    ``x509verify=DIR`` also works: DIR holds ``server-cert.pem``, ``server-key.pem`` and
    ``ca-cert.pem``, and client certificates are verified.  ``tls-ca``/``tls-key`` without a
    certificate is an error rather than TLS silently off."""
    cert = values.get("tls-cert")
    key = values.get("tls-key")
    ca = values.get("tls-ca")
    verifyText = values.get("x509verify", "off")
    if verifyText.strip().lower() in _TRUE | _FALSE:
        verify = parse_bool("--vnc x509verify", verifyText)
    else:  # QEMU's x509verify=DIR
        directory = verifyText.rstrip("/")
        verify = True
        cert = cert or f"{directory}/server-cert.pem"
        key = key or f"{directory}/server-key.pem"
        ca = ca or f"{directory}/ca-cert.pem"
    if cert is None:
        for name in ("tls-key", "tls-ca", "x509verify"):
            if name in values:
                raise ConfigError(f"--vnc {name}= needs tls-cert= as well")
        return None
    if verify and ca is None:
        raise ConfigError("--vnc x509verify=on needs tls-ca=FILE (the CA that signs clients)")
    return TlsSettings(cert=cert, key=key or cert, ca=ca, verify=verify)


def parse_vnc(value: str) -> VncSpec:
    """``--vnc`` in QEMU's ``-vnc`` syntax.

    ``[HOST]:N`` listens on TCP port 5900+N; an empty HOST (``:0``) means every interface,
    as in QEMU; ``[::1]:N`` is IPv6; ``unix:PATH``; ``none``.  Then ``,key=value`` options:
    ``share``, ``connections``, ``websocket`` (a port, or ``on`` for 5700+N), the TLS ones
    (``parse_tls``) and ``cleartext``.  ``password=on`` is refused: QEMU means "a password
    set later through the monitor", which vncmux does not have.  Any other key is an error
    rather than silently ignored.
    """
    parts = split_options(value.strip())
    display, options = parts[0], parts[1:]
    if display == "none":
        if options:
            raise ConfigError("--vnc none takes no options")
        return VncSpec(kind="none")
    host, port, path, number = "", 0, "", 0
    systemd = ""
    if display.startswith("systemd:"):
        # socket activation: the INDEXth listening socket systemd passed (or its name)
        systemd = display[len("systemd:") :]
        if not re.fullmatch(r"[0-9]+|[A-Za-z0-9_.:-]{1,255}", systemd):
            raise ConfigError("--vnc systemd: needs a socket index (systemd:0) or name")
    elif display.startswith("unix:"):
        path = display[len("unix:") :]
        if not path:
            raise ConfigError("--vnc unix: needs a path (unix:/path/to/socket)")
    else:
        try:
            host, numberText = host_port("--vnc", display)
        except ConfigError:
            raise ConfigError(
                f"--vnc {display!r}: expected [HOST]:DISPLAY, [IPV6]:DISPLAY, unix:PATH or none"
            ) from None
        number = parse_int("--vnc display number", numberText, 0, 65535 - 5900)
        port = 5900 + number

    values = _vncOptions(options)
    share = values.get("share", "force-shared")
    if share not in _SHARE:
        raise ConfigError(f"--vnc share={share}: must be one of {', '.join(_SHARE)}")
    connections = parse_int("--vnc connections", values.get("connections", "64"), 1)
    websocket: int | None = None
    if "websocket" in values:
        if values["websocket"] == "on":
            if path or systemd:
                raise ConfigError("--vnc websocket=on needs a TCP display; give a port")
            websocket = 5700 + number
        else:
            websocket = parse_port("--vnc websocket", values["websocket"])
    if parse_bool("--vnc password", values.get("password", "off")):
        raise ConfigError(_NO_MONITOR)
    tls = parse_tls(values)
    cleartext = parse_bool("--vnc cleartext", values.get("cleartext", "off"))
    if cleartext and tls is None:
        raise ConfigError("--vnc cleartext=on only makes sense with tls-cert=")
    if systemd:
        where = VncSpec(kind="systemd", host="", port=0, path=systemd)
    elif path:
        where = VncSpec(kind="unix", path=path)
    else:
        where = VncSpec(kind="tcp", host=host, port=port)
    return replace(
        where,
        share=cast(ShareMode, share),
        connections=connections,
        websocket=websocket,
        tls=tls,
        cleartext=cleartext,
    )


# --------------------------------------------------------------------------------------
# --chardev

_MUX_TYPES = ("mux-be", "hub")
_CHARDEV_KEYS: dict[str, frozenset[str]] = {
    "socket": frozenset(
        {"path", "host", "port", "server", "wait", "telnet", "nodelay", "mode", "replay"}
        | {"rfc2217"}
    ),
    "vc": frozenset({"cols", "rows", "width", "height"}),
    "file": frozenset({"path", "append"}),
    "pty": frozenset(),
    "mux-be": frozenset(),
    "hub": frozenset(),  # plus chardevs.N
}
_BOOL_KEYS = frozenset({"server", "wait", "telnet", "nodelay", "append", "rfc2217"})
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
    parts = split_options(spec)
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
    if "nodelay" in o:
        parse_bool(f"{where} nodelay", o["nodelay"])
    server = parse_bool(f"{where} server", o.get("server", "off"))
    replay = parse_size(f"{where} replay", o.get("replay", "0"))
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
            return ByteClient(
                endpoint="unix:path=" + escape_endpoint(path), label=cd.id, replay=replay
            )
        host = o.get("host", "").strip("[]") or "127.0.0.1"
        port = parse_port(f"{where} port", o["port"])
        return ByteClient(
            endpoint=f"tcp:host={escape_endpoint(host)}:port={port}", label=cd.id, replay=replay
        )
    if "wait" in o:
        parse_bool(f"{where} wait", o["wait"])  # accepted; vncmux never waits for a client
    if path is not None:
        mode = o.get("mode", "600")
        try:
            int(mode, 8)
        except ValueError:
            raise ConfigError(f"{where}: mode={mode} is not an octal file mode") from None
        return ByteServer(
            endpoint=f"unix:{escape_endpoint(path)}:mode={mode}", label=cd.id, replay=replay
        )
    if "mode" in o:
        raise ConfigError(f"{where}: mode= only applies to UNIX sockets")
    port = parse_port(f"{where} port", o["port"], allowZero=True)
    host = o.get("host", "").strip("[]")
    if not host:
        return ByteServer(endpoint=f"tcp:{port}", label=cd.id, replay=replay)
    kind = "tcp6" if ":" in host else "tcp"
    return ByteServer(
        endpoint=f"{kind}:{port}:interface={escape_endpoint(host)}", label=cd.id, replay=replay
    )


def _vcConsole(cd: _Chardev, cols: int, rows: int) -> ConsoleSpec:
    """A ``vc`` chardev's size: cols/rows (default: the ``--cols``/``--rows`` given) and
    width/height in pixels."""

    def size(key: str, high: int) -> int | None:
        return parse_int(f"{cd.name()} {key}", cd.opts[key], 1, high) if key in cd.opts else None

    return ConsoleSpec(
        cols=size("cols", 1000) or cols,
        rows=size("rows", 1000) or rows,
        width=size("width", 16384),
        height=size("height", 16384),
    )


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
                servers.append(_withTelnet(cd, backend))
            elif "telnet" in o or "rfc2217" in o:
                _withTelnet(cd, ByteServer(endpoint=""))  # the values checked, then:
                raise ConfigError(f"{cd.name()}: telnet= is supported on server=on sockets only")
            else:
                clients.append(backend)
        elif cd.kind == "file":
            path = o.get("path")
            if not path:
                raise ConfigError(f"{cd.name()}: a file chardev needs path=")
            if not parse_bool(f"{cd.name()} append", o.get("append", "on")):
                raise ConfigError(f"{cd.name()}: append=off is not supported (vncmux appends)")
            logfiles.append(LogFile(path=path, label=cd.id))
        elif cd.kind == "pty":
            ptys.append(PtyBackend(label=cd.id))
        elif cd.kind == "vc":
            console = _vcConsole(cd, cols, rows)
    return ChardevPlan(
        servers=tuple(servers),
        clients=tuple(clients),
        logfiles=tuple(logfiles),
        ptys=tuple(ptys),
        console=console,
        mux=mux.id if mux else None,
    )


# --------------------------------------------------------------------------------------
# Telnet, RFC 2217, BREAK


def _withTelnet(cd: _Chardev, server: ByteServer) -> ByteServer:
    """``telnet=on`` (QEMU's) and ``rfc2217=on`` (vncmux's: telnet clients may set the tty's
    line) on a listening socket chardev."""
    telnet = parse_bool(f"{cd.name()} telnet", cd.opts.get("telnet", "off"))
    rfc2217 = parse_bool(f"{cd.name()} rfc2217", cd.opts.get("rfc2217", "off"))
    if rfc2217 and not telnet:
        raise ConfigError(f"{cd.name()}: rfc2217=on needs telnet=on (RFC 2217 is telnet)")
    return replace(server, telnet=telnet, rfc2217=rfc2217)


def parse_net_device(value: str) -> tuple[str, str, int] | None:
    """``telnet:HOST:PORT`` or ``rfc2217://HOST:PORT`` → (kind, host, port); None for any
    other ``--device`` value."""
    for prefix, kind in (("telnet:", "telnet"), ("rfc2217://", "rfc2217")):
        if value.startswith(prefix):
            host, port = host_port("--device", value[len(prefix) :].rstrip("/"))
            if not host:
                raise ConfigError(f"--device {value}: needs a host ({prefix}HOST:PORT)")
            return kind, host, parse_port("--device port", port)
    return None


#: Longest ``--break-duration``: a BREAK of seconds is already a line held down.
MAX_BREAK = 10.0


def parse_break_duration(value: str | float) -> float:
    """``--break-duration SECONDS``: more than 0, at most ``MAX_BREAK``."""
    try:
        seconds = float(str(value))
    except ValueError:
        raise ConfigError(f"--break-duration: {value!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_BREAK:  # also refuses NaN
        raise ConfigError(f"--break-duration: {value} is out of range (0 < S <= {MAX_BREAK:g})")
    return seconds


def check_rfc2217(device_kind: str, servers: Sequence[ByteServer]) -> None:
    """RFC 2217 changes a tty's line: refused on any other kind of device."""
    asking = [s.label or s.endpoint for s in servers if s.rfc2217]
    if asking and device_kind != "tty":
        raise ConfigError(
            f"RFC 2217 on {asking[0]} needs a tty --device (the device is {device_kind}:): "
            "only a serial line has settings to change"
        )
