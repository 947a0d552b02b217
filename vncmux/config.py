"""Command-line values → a ``Config``: ``--device``, ``--socket``, the serial options, and all
of them together (``build_config``); QEMU's ``--vnc``/``--chardev`` strings are read by
``vncmux.qemu_opts``.

Pure: no sockets, no files, no Twisted.  Every problem is a ``ConfigError`` whose message is
one line a person can act on; ``vncmux.tap`` turns it into an error message and exit status
2 before anything starts.  What needs a look at the machine (files that must exist, a tty, a
Twisted endpoint) is checked next, by ``vncmux.preflight``.

The dataclasses live in ``vncmux.specs`` and ``ConfigError`` in ``vncmux.errors``; both are
re-exported here so that ``from vncmux.config import Config, ConfigError`` keeps working.
"""

from __future__ import annotations

import codecs
import ipaddress
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, cast

from vncmux.addresses import check_addresses, split_endpoint
from vncmux.errors import ConfigError
from vncmux.font_opts import parse_font
from vncmux.qemu_opts import (
    check_rfc2217,
    host_port,
    parse_bool,
    parse_break_duration,
    parse_chardevs,
    parse_int,
    parse_net_device,
    parse_port,
    parse_size,
    parse_vnc,
)
from vncmux.specs import (
    ApiSpec,
    ByteClient,
    ByteServer,
    ChardevPlan,
    Config,
    ConsoleSpec,
    DeviceSpec,
    LogFile,
    PtyBackend,
    SerialSettings,
    Site,
    TlsSettings,
    VncSpec,
)
from vncmux.token_opts import build_tokens

__all__ = [
    "ApiSpec",
    "ByteClient",
    "ByteServer",
    "ChardevPlan",
    "Config",
    "ConfigError",
    "ConsoleSpec",
    "DeviceSpec",
    "LogFile",
    "PtyBackend",
    "SerialSettings",
    "Site",
    "TlsSettings",
    "VncSpec",
    "build_config",
    "build_site",
    "exposure_warnings",
    "parse_api",
    "parse_web",
    "parse_chardevs",
    "parse_device",
    "parse_encoding",
    "parse_serial",
    "parse_socket",
    "parse_vnc",
]


#: Most lines ``--scrollback`` may keep: a line costs about a pointer a column, so a
#: million 80-column lines is some 900 MB.
MAX_SCROLLBACK = 1_000_000


# --------------------------------------------------------------------------------------
# --device


def parse_device(
    value: str | None, serial: SerialSettings, shell: str | None, *, wait: bool = False
) -> DeviceSpec:
    """``--device``: a tty path, ``unix:PATH``, ``tcp:HOST:PORT`` or ``exec:COMMAND``.

    None (no ``--device``) means running ``shell`` (the caller passes ``$SHELL``), or
    ``/bin/sh``, in a pty.  Anything else without a prefix is a tty path; whether it names a
    character device is ``vncmux.preflight``'s question (unless ``wait``: it may appear
    later).  ``wait`` is ``--wait-device``.
    """
    if value is None:
        return DeviceSpec(
            kind="exec",
            command=(shell or "/bin/sh",),
            serial=serial,
            default_shell=True,
            wait=wait,
        )
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path:
            raise ConfigError("--device unix: needs a path (unix:/path/to/socket)")
        return DeviceSpec(kind="unix", path=path, serial=serial, wait=wait)
    if value.startswith("tcp:"):
        host, port = host_port("--device", value[len("tcp:") :])
        if not host:
            raise ConfigError(f"--device {value}: needs a host (tcp:HOST:PORT)")
        number = parse_port("--device port", port)
        return DeviceSpec(kind="tcp", host=host, port=number, serial=serial, wait=wait)
    net = parse_net_device(value)
    if net is not None:  # telnet:HOST:PORT, rfc2217://HOST:PORT
        kind = cast(Literal["telnet", "rfc2217"], net[0])
        return DeviceSpec(kind=kind, host=net[1], port=net[2], serial=serial, wait=wait)
    if value.startswith("exec:"):
        try:
            command = tuple(shlex.split(value[len("exec:") :]))
        except ValueError as e:
            raise ConfigError(f"--device {value}: {e}") from None
        if not command:
            raise ConfigError("--device exec: needs a command (exec:COMMAND ARGS...)")
        return DeviceSpec(kind="exec", command=command, serial=serial, wait=wait)
    if not value:
        raise ConfigError("--device: empty value")
    return DeviceSpec(kind="tty", path=value, serial=serial, wait=wait)


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
        return parse_bool(option, value)

    return SerialSettings(
        baud=parse_int("--baud", baud, 1),
        bytesize=parse_int("--bytesize", bytesize, 5, 8),
        parity=cast(Literal["N", "E", "O", "M", "S"], parityText),
        stopbits=stops[stopText],
        rtscts=bool(rtscts),
        xonxoff=bool(xonxoff),
        dtr=onOff("--dtr", dtr),
        rts=onOff("--rts", rts),
    )


# --------------------------------------------------------------------------------------
# --socket


_SOCKET_TYPES = ("tcp", "tcp6", "unix", "ssl", "systemd")
# The keyword arguments Twisted's parser takes for each endpoint type.
_SOCKET_KEYS: dict[str, frozenset[str]] = {
    "tcp": frozenset({"port", "interface", "backlog"}),
    "tcp6": frozenset({"port", "interface", "backlog"}),
    "unix": frozenset({"address", "mode", "backlog", "lockfile"}),
    "systemd": frozenset({"domain", "index", "name"}),  # socket activation
    "ssl": frozenset(
        {
            "port",
            "privateKey",
            "certKey",
            "sslmethod",
            "interface",
            "backlog",
            "extraCertChain",
            "dhParameters",
        }
    ),
}


def parse_socket(
    value: str, label: str = "", readonly: bool = False, replay: int = 0
) -> ByteServer:
    """``--socket``: a Twisted server endpoint string, its syntax checked here (type, port,
    keyword names, ``mode=``); ``vncmux.preflight`` then has Twisted build the endpoint.  A
    UNIX socket without ``mode=`` gets ``mode=600``: the console is a root shell often
    enough that other local users must not reach it by default."""
    parts = split_endpoint(value)
    kind = parts[0]
    if kind not in _SOCKET_TYPES or len(parts) < 2 or not parts[1]:
        raise ConfigError(
            f"--socket {value}: expected tcp:PORT[:interface=ADDR], unix:PATH[:mode=600] "
            "or ssl:PORT:privateKey=...:certKey=..."
        )
    if kind in ("tcp", "tcp6", "ssl") and "=" not in parts[1]:
        parse_port(f"--socket {value} port", parts[1], allowZero=True)
    for part in parts[1:]:
        key, sep, val = part.partition("=")
        if not sep:
            continue  # a positional argument
        if key not in _SOCKET_KEYS[kind]:
            known = ", ".join(sorted(_SOCKET_KEYS[kind]))
            raise ConfigError(f"--socket {value}: unknown key {key!r} (known: {known})")
        if key == "mode":
            try:
                int(val, 8)
            except ValueError:
                raise ConfigError(
                    f"--socket {value}: mode={val} is not an octal file mode"
                ) from None
    endpoint = value
    if kind == "unix" and not any(p.startswith("mode=") for p in parts[2:]):
        endpoint = value + ":mode=600"
    return ByteServer(endpoint=endpoint, label=label or value, readonly=readonly, replay=replay)


def parse_api(
    value: str, token_file: str | None = None, view_token_file: str | None = None
) -> ApiSpec:
    """``--api``: a server endpoint string checked as ``--socket``'s (a UNIX socket gets
    ``mode=600``), with its token files.  Without a token the API is open to whoever
    reaches it: allowed only on a UNIX socket, whose mode says who that is."""
    try:
        endpoint = parse_socket(value).endpoint
    except ConfigError as e:
        raise ConfigError(str(e).replace("--socket", "--api", 1)) from None
    if token_file is None and view_token_file is None and split_endpoint(value)[0] != "unix":
        raise ConfigError(
            f"--api {value}: a TCP endpoint needs --api-token-file (or "
            "--api-view-token-file); only a unix: socket may go without a token"
        )
    return ApiSpec(endpoint=endpoint, token_file=token_file, view_token_file=view_token_file)


def parse_web(value: str) -> str:
    """``--web``: the site's HTTP entry, a server endpoint string checked as ``--socket``'s
    (a UNIX socket gets ``mode=600``); a bare port number means ``tcp:PORT`` on loopback."""
    value = value.strip()
    if value.isdigit():
        value = f"tcp:{value}:interface=127.0.0.1"
    try:
        return parse_socket(value).endpoint
    except ConfigError as e:
        raise ConfigError(str(e).replace("--socket", "--web", 1)) from None


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
    wait_device: bool = False,
    history: str | int = "1M",
    scrollback: str | int = 10_000,
    osc52: bool = False,
    socket_replay: str | int = 0,
    api: str | None = None,
    api_token_file: str | None = None,
    api_view_token_file: str | None = None,
    name: str = "console",
    audit_log: str | None = None,
    audit_input: bool = False,
    record: str | None = None,
    record_input: bool = False,
    input_policy: str = "shared",
    lock_idle: str | float = 30.0,
    status_line: str | None = None,
    viewer_resize: str = "auto",
    telnets: Sequence[str] = (),
    rfc2217: bool = False,
    break_duration: str | float = 0.25,
    font: str | None = None,
    font_size: str | int = 16,
    scale: str | int = 1,
    palette: str = "default",
) -> Config:
    """Every option, validated, into one ``Config``.  Values may be the strings as typed.

    The console exists when a ``vc`` chardev is declared or ``--vnc`` is not ``none``;
    ``--vnc none`` without a ``vc`` makes vncmux a pure byte multiplexer.  The files named
    (password, users, TLS, a tty) are not looked at here: ``vncmux.preflight.check`` does
    that next.
    """
    colsN = parse_int("--cols", cols, 1, 1000)
    rowsN = parse_int("--rows", rows, 1, 1000)
    serial = parse_serial(baud, bytesize, parity, stopbits, rtscts, xonxoff, dtr, rts)
    vncSpec = parse_vnc(vnc)
    historySize = parse_size("--history", history)
    scrollbackLines = parse_int("--scrollback", scrollback, 0, MAX_SCROLLBACK)
    replay = parse_size("--socket-replay", socket_replay)
    servers = [parse_socket(s, replay=replay) for s in sockets]
    servers += [parse_socket(s, readonly=True, replay=replay) for s in sockets_ro]
    if rfc2217 and not telnets:
        raise ConfigError("--rfc2217 applies to --telnet endpoints: give one")
    servers += [
        replace(parse_socket(t, replay=replay), telnet=True, rfc2217=rfc2217) for t in telnets
    ]
    plan = parse_chardevs(chardevs, cols=colsN, rows=rowsN)
    if historySize == 0:
        check_replay_without_history(servers, plan)
    try:
        stall = float(str(stall_timeout))
    except ValueError:
        raise ConfigError(f"--stall-timeout: {stall_timeout!r} is not a number") from None
    if not math.isfinite(stall) or stall < 0:
        raise ConfigError(f"--stall-timeout: {stall_timeout} must be 0 (never) or more seconds")
    maxClients = parse_int("--max-clients", max_clients, 1)
    codec = parse_encoding(encoding)
    if users_file is not None and vncSpec.tls is None:
        raise ConfigError(
            "--users-file needs TLS (--vnc ...,tls-cert=FILE): user passwords "
            "are never sent in clear text"
        )
    if api is None and (api_token_file is not None or api_view_token_file is not None):
        raise ConfigError("--api-token-file and --api-view-token-file need --api ENDPOINT")
    apiSpec = parse_api(api, api_token_file, api_view_token_file) if api is not None else None
    check_audit_record(audit_log, audit_input, record, record_input)
    exclusive, idle, statusLine = parse_input_policy(input_policy, lock_idle, status_line)
    console = plan.console
    if console is None and vncSpec.kind != "none":
        console = ConsoleSpec(cols=colsN, rows=rowsN)
    deviceSpec = parse_device(device, serial, shell, wait=wait_device)
    check_rfc2217(deviceSpec.kind, [*servers, *plan.servers])
    return Config(
        break_duration=parse_break_duration(break_duration),
        device=deviceSpec,
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
        history=historySize,
        scrollback=scrollbackLines,
        osc52=osc52,
        api=apiSpec,
        name=parse_name(name),
        audit_log=audit_log,
        audit_input=bool(audit_input),
        record=record,
        record_input=bool(record_input),
        exclusive_input=exclusive,
        lock_idle=idle,
        status_line=statusLine,
        viewer_resize=parse_viewer_resize(viewer_resize),
        font=parse_font(font, font_size, scale, palette),
    )


#: ``--viewer-resize``: auto (only when the device can be told: an ``exec:`` pty), on, off.
VIEWER_RESIZE = ("auto", "on", "off")


def parse_viewer_resize(value: str) -> str:
    """``--viewer-resize auto|on|off`` (what a VNC viewer's SetDesktopSize may do)."""
    if value not in VIEWER_RESIZE:
        raise ConfigError(f"--viewer-resize: {value!r} is not one of auto, on, off")
    return value


#: Longest ``--lock-idle``: a day (a lock nobody can lose is what takeover is for).
MAX_LOCK_IDLE = 86400.0


def parse_input_policy(
    policy: str, lock_idle: str | float, status_line: str | None
) -> tuple[bool, float, bool]:
    """``--input-policy shared|exclusive``, ``--lock-idle SECONDS`` and ``--status-line
    on|off`` → (exclusive, idle seconds, status line shown).  The status line is on by
    default with the exclusive policy (viewers must see who holds the keyboard), off with
    the shared one (the framebuffer keeps its usual height)."""
    lowered = policy.strip().lower()
    if lowered not in ("shared", "exclusive"):
        raise ConfigError(f"--input-policy: {policy!r} is not shared or exclusive")
    try:
        idle = float(str(lock_idle))
    except ValueError:
        raise ConfigError(f"--lock-idle: {lock_idle!r} is not a number of seconds") from None
    if not math.isfinite(idle) or not 0 < idle <= MAX_LOCK_IDLE:
        raise ConfigError(
            f"--lock-idle: {lock_idle} is out of range (more than 0, at most {MAX_LOCK_IDLE:g})"
        )
    exclusive = lowered == "exclusive"
    shown = exclusive if status_line is None else parse_bool("--status-line", status_line)
    return exclusive, idle, shown


def check_audit_record(
    audit_log: str | None, audit_input: bool, record: str | None, record_input: bool
) -> None:
    """``--audit-input`` and ``--record-input`` refine a file that must be named; the files
    are two different, non-empty paths (what is at them: ``vncmux.preflight``)."""
    if audit_input and audit_log is None:
        raise ConfigError("--audit-input needs --audit-log FILE")
    if record_input and record is None:
        raise ConfigError("--record-input needs --record FILE")
    for option, path in (("--audit-log", audit_log), ("--record", record)):
        if path is not None and not path.strip():
            raise ConfigError(f"{option}: an empty file name")
    if audit_log is not None and audit_log == record:
        raise ConfigError(f"--audit-log and --record name the same file {audit_log!r}")


#: A console's name: it appears in URLs (``/c/NAME/``), token files and service names.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_name(value: str) -> str:
    """A console's name: URL-safe (letters, digits, ``_ . -``; starting with a letter or
    digit; at most 64 characters), so it needs no quoting in a URL, a file name or a log."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ConfigError(
            f"name {value!r}: a console name is 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def build_site(
    consoles: Sequence[Config],
    *,
    source: str | None = None,
    websockify_tokens: str | None = None,
    redis: str | None = None,
    token_prefix: str | None = None,
    advertise: str | None = None,
    web: str | None = None,
) -> Site:
    """The consoles of one process and their shared settings, validated together: names
    unique, and no two consoles on one listening address (VNC display, WebSocket port,
    byte socket, API endpoint) — the error names both.  Site-wide options are keyword
    parameters here (values as typed); each is also a top-level key of the config file
    (``vncmux.site_config`` reads this signature)."""
    if not consoles:
        raise ConfigError("no console configured")
    seen: dict[str, Config] = {}
    for console in consoles:
        if console.name in seen:
            raise ConfigError(f"two consoles are named {console.name!r}")
        seen[console.name] = console
    check_addresses(consoles)
    tokens = build_tokens(websockify_tokens, redis, token_prefix, advertise)
    webEndpoint = parse_web(web) if web is not None else None
    return Site(consoles=tuple(consoles), source=source, tokens=tokens, web=webEndpoint)


def check_replay_without_history(servers: Sequence[ByteServer], plan: ChardevPlan) -> None:
    """``--history 0`` keeps no output, so a replay would silently send nothing: refuse."""
    backends: list[ByteServer | ByteClient] = [*servers, *plan.servers, *plan.clients]
    for backend in backends:
        if backend.replay:
            where = "--socket-replay" if backend in servers else f"chardev {backend.label} replay="
            raise ConfigError(f"{where} needs the output history, which --history 0 turns off")


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
    parts = split_endpoint(endpoint)
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
        verify = vnc.tls is not None and vnc.tls.verify
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
    api = config.api
    if api is not None and api.endpoint.startswith("tcp") and _endpointExposed(api.endpoint):
        warnings.append(
            f"the API on {api.endpoint} listens beyond loopback over plain HTTP: its token "
            "travels in clear text (use an ssl: endpoint, or interface=127.0.0.1)"
        )
    return warnings
