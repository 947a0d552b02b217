"""Where a console listens, and two consoles that would listen in the same place.

Pure: it reads the endpoint strings and ``VncSpec`` of parsed ``Config`` objects (nothing is
bound, no name is resolved), so a config file that puts two consoles on one port is refused
with both names before anything listens.
"""

from __future__ import annotations

from collections.abc import Sequence

from vncmux.errors import ConfigError
from vncmux.specs import Config


def split_endpoint(description: str) -> list[str]:
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


# (kind, host, port-or-path, what the user wrote): where one console listens.
_Address = tuple[str, str, str, str]


def listen_addresses(config: Config) -> list[_Address]:
    """Every address ``config`` listens on (TCP port 0, chosen by the kernel, is left out)."""
    found: list[_Address] = []
    vnc = config.vnc
    if vnc.kind == "tcp":
        found.append(("tcp", vnc.host, str(vnc.port), f"VNC display {vnc.port - 5900}"))
    elif vnc.kind == "unix":
        found.append(("unix", "", vnc.path, f"VNC socket {vnc.path}"))
    if vnc.kind != "none" and vnc.websocket:
        found.append(("tcp", vnc.host, str(vnc.websocket), f"websocket port {vnc.websocket}"))
    endpoints = [(s.endpoint, f"socket {s.label or s.endpoint}") for s in config.servers]
    if config.api is not None:
        endpoints.append((config.api.endpoint, f"api {config.api.endpoint}"))
    for endpoint, what in endpoints:
        address = _endpointAddress(endpoint)
        if address is not None:
            found.append((*address, what))
    return [a for a in found if a[2] != "0"]


def _endpointAddress(endpoint: str) -> tuple[str, str, str] | None:
    """(kind, host, port-or-path) of a Twisted server endpoint string, or None."""
    parts = split_endpoint(endpoint)
    positional = [p for p in parts[1:] if "=" not in p]
    keys = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    if parts[0] in ("tcp", "tcp6", "ssl"):
        port = keys.get("port") or (positional[0] if positional else "")
        return ("tcp", keys.get("interface", "").replace("\\", ""), port)
    if parts[0] == "unix":
        return ("unix", "", keys.get("address") or (positional[0] if positional else ""))
    return None


def _clash(a: _Address, b: _Address) -> bool:
    """Same port on the same host, or on a host and 'every interface' (''); same path."""
    if a[0] != b[0] or a[2] != b[2]:
        return False
    return a[0] == "unix" or a[1] == b[1] or not a[1] or not b[1]


def check_addresses(consoles: Sequence[Config]) -> None:
    """No two consoles (nor one console twice) listen on the same address."""
    taken: list[tuple[_Address, str]] = []
    for console in consoles:
        for address in listen_addresses(console):
            for other, owner in taken:
                if _clash(address, other):
                    mine = f"console {console.name!r}"
                    theirs = "the same console" if owner == console.name else f"console {owner!r}"
                    raise ConfigError(
                        f"{mine} and {theirs} both listen on {_where(address)} "
                        f"({address[3]}; {other[3]})"
                    )
            taken.append((address, console.name))


def _where(address: _Address) -> str:
    kind, host, port, _what = address
    if kind == "unix":
        return port
    return f"{host or '*'}:{port}"
