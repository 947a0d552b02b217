"""Turning a ``--vnc`` spec into listening ports, synchronously, with one-line errors.

Binding happens while the service is being built, before anything else starts, so a port
in use or a socket path that cannot be created stops start-up with a ``ConfigError`` that
names the address, instead of a traceback in the log after the daemon is up.

``VncSpec.port`` is the TCP port itself (display N is port 5900 + N: the config parser does
that arithmetic).  An empty host listens on every IPv4 interface; a host name is resolved
once here and every address it has is bound.  A UNIX socket gets mode 0600: whoever can
open it gets the console, so only the owner may.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from vncmux.errors import ConfigError
from vncmux.specs import VncSpec

log = Logger()


def _addresses(host: str, port: int) -> list[str]:
    """The interface addresses to bind for ``host`` ('' = all IPv4, brackets allowed)."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "":
        return [""]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return [host]
        except OSError:
            pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--vnc: cannot resolve host {host!r}: {e.strerror}") from None
    found: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    if not found:
        raise ConfigError(f"--vnc: host {host!r} has no address")
    return found


def _describe(address: str, port: int) -> str:
    if address == "":
        return f"*:{port}"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _clear_stale_socket(path: str) -> None:
    """Remove a UNIX socket file left behind by a dead server; refuse a live one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"--vnc unix:{path}: {e.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"--vnc unix:{path}: exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise ConfigError(f"--vnc unix:{path}: {e.strerror}") from None
    finally:
        probe.close()
    raise ConfigError(f"--vnc unix:{path}: address already in use (another server listens there)")


def listenVNC(spec: VncSpec, factory: Factory, reactor: Any) -> list[IListeningPort]:
    """Listen for VNC viewers as ``spec`` says; every port is bound when this returns.

    Raises ConfigError (and closes whatever it had opened) if any address cannot be bound;
    returns [] for ``--vnc none``."""
    if spec.kind == "none":
        return []
    ports: list[Any] = []
    try:
        if spec.kind == "unix":
            if not spec.path:
                raise ConfigError("--vnc unix: needs a path")
            _clear_stale_socket(spec.path)
            try:
                ports.append(reactor.listenUNIX(spec.path, factory, mode=0o600))
            except CannotListenError as e:
                raise ConfigError(f"--vnc unix:{spec.path}: {_reason(e)}") from None
            log.info("VNC server listening on unix:{path}", path=spec.path)
        elif spec.kind == "tcp":
            if not 0 < spec.port < 65536:
                raise ConfigError(f"--vnc: TCP port {spec.port} is out of range")
            for address in _addresses(spec.host, spec.port):
                where = _describe(address, spec.port)
                try:
                    ports.append(reactor.listenTCP(spec.port, factory, interface=address))
                except CannotListenError as e:
                    raise ConfigError(f"--vnc: cannot listen on {where}: {_reason(e)}") from None
                log.info("VNC server listening on {where}", where=where)
        elif spec.kind == "systemd":
            ports.append(adoptSystemdSocket(spec.path, factory, reactor))
        else:
            raise ConfigError(f"--vnc: unknown kind {spec.kind!r}")
    except BaseException:
        for port in ports:
            port.stopListening()
        raise
    return ports


def adoptSystemdSocket(which: str, factory: Factory, reactor: Any) -> IListeningPort:
    """``--vnc systemd:INDEX|NAME``: take over a listening socket systemd passed
    (``LISTEN_FDS``, socket activation), whatever its address family.

    Twisted's ``systemd:`` endpoint parser is asked for the descriptor: it is the one
    reader of ``LISTEN_FDS`` in the process (reading it removes it from the environment),
    shared with the byte sockets' and the API's ``systemd:`` endpoints."""
    from twisted.internet.endpoints import serverFromString

    key = f"index={which}" if which.isdigit() else f"name={which}"
    try:
        fd = int(serverFromString(reactor, f"systemd:domain=INET:{key}").fileno)
    except (IndexError, KeyError):
        raise ConfigError(
            f"--vnc systemd:{which}: systemd passed no such socket (is the unit socket-activated?)"
        ) from None
    probe = socket.socket(fileno=os.dup(fd))
    try:
        family = probe.family
        where = probe.getsockname()
    finally:
        probe.close()
    os.set_blocking(fd, False)  # systemd passes blocking sockets: accept() must not wait
    port = reactor.adoptStreamPort(fd, family, factory)
    os.close(fd)  # the port holds its own copy
    log.info("VNC server listening on {where} (from systemd)", where=where)
    return port  # type: ignore[no-any-return]


def _reason(error: CannotListenError) -> str:
    """The OS reason inside a CannotListenError, e.g. 'address already in use'."""
    inner = error.socketError
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror[0].lower() + inner.strerror[1:]
    return str(inner)
