"""``RFBFactory``: makes the viewer sessions of one console and holds what they share.

Shared per console: the security settings (passwords, users, TLS context), the share
policy, the connection limits, the per-host authentication blacklist and the encoders'
``SharedWork`` (work done once for all viewers of this console's frames).

Only live viewers count: one that is being closed has given its place back (its connection
is gone within ``close_grace`` seconds).  Per-host limits use ``blacklist.host_key``: a flood
of handshakes from one host evicts that host's own oldest, not another host's user who is
still typing a password.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.protocol import Factory
from twisted.logger import Logger

from vncmux.rfb import vencrypt
from vncmux.rfb.blacklist import Blacklist
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.security.settings import SecuritySettings
from vncmux.rfb.session import RFBServerProtocol, State

log = Logger()

MAX_CUT_TEXT = 1 << 20
HANDSHAKE_TIMEOUT = 30.0
# At most this many connections may be in the handshake at once; a new one evicts the oldest
# of the host holding the most (a slow-handshake flood cannot lock everyone out, and evicts
# only its own: see ``eviction_victim``).
MAX_PENDING = 16
# A connection still open this long after the server closed it is aborted: a peer that does
# not read (or never answers the TLS close) cannot keep it, or a viewer slot, open.
CLOSE_GRACE = 2.0
# Every failed authentication is answered after this delay (TigerVNC's 100 ms), so guessing
# costs time even before the blacklist.  RFBFactory's default is 0; the service passes this.
AUTH_FAILURE_DELAY = 0.1
# Output queued for a viewer whose transport is full (fence replies, colour maps, clipboard
# notes) beyond this drops the viewer: memory per viewer stays bounded (QEMU CVE-2017-15124).
MAX_OUTPUT = 4 << 20
STALL_TIMEOUT = 30.0

SHARE_POLICIES = ("allow-exclusive", "force-shared", "ignore")


@dataclass
class RfbStats:
    """Totals over the life of one console's VNC server, for metrics (``vncmux.web``):
    FramebufferUpdates sent, seconds spent encoding them, failed authentications, viewers
    dropped because they stopped reading (stall timeout or output cap)."""

    frames: int = 0
    encode_seconds: float = 0.0
    auth_failures: int = 0
    stalled: int = 0


def eviction_victim(hosts: Sequence[str], newcomer: str) -> int:
    """Which handshake in progress to evict for a new one from host ``newcomer``.

    ``hosts`` are the host keys of the handshakes in progress, oldest first; the answer is
    an index into it: the oldest of the host holding the most handshakes (the newcomer
    counted with its host), and among hosts holding as many, the one whose oldest is the
    oldest.  So a host opening connections faster than others finish evicts its own, and
    when every host holds one, the oldest overall goes."""
    if not hosts:
        raise ValueError("no handshake in progress to evict")
    counts = Counter(hosts)
    counts[newcomer] += 1
    most = max(counts[h] for h in hosts)
    return next(i for i, h in enumerate(hosts) if counts[h] == most)


class RFBFactory(Factory):
    """Makes viewer sessions on one console (an ``IConsole``) and holds what they share.

    ``tls`` (an IOpenSSLServerConnectionCreator, see ``vncmux.rfb.tls``) turns VeNCrypt on;
    then only VeNCrypt is offered unless ``cleartext`` asks for None/VNC auth as well.
    ``view_password`` is a second VNC password for view-only viewers; ``users`` (see
    ``vncmux.rfb.vencrypt.read_users_file``) enables X509Plain."""

    protocol = RFBServerProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        console: Any,  # IConsole; Any: no mypy-zope to check providedBy
        *,
        password: bytes | None = None,
        share: str = "force-shared",
        connections: int = 64,
        clock: Any = None,  # IReactorTime; Any: no mypy-zope to see Clock provides it
        name: str | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        stall_timeout: float = STALL_TIMEOUT,
        max_cut_text: int = MAX_CUT_TEXT,
        view_password: bytes | None = None,
        tls: Any = None,
        users: vencrypt.Users | None = None,
        cleartext: bool = False,
        auth_failure_delay: float = 0.0,
        max_pending: int = MAX_PENDING,
        max_output: int = MAX_OUTPUT,
        close_grace: float = CLOSE_GRACE,
    ) -> None:
        if share not in SHARE_POLICIES:
            raise ValueError(f"share policy must be one of {', '.join(SHARE_POLICIES)}")
        self.console = console
        self.share = share
        self.connections = connections
        if clock is None:
            # Imported here, not at module import: twistd must choose the reactor first.
            from twisted.internet import reactor as clock
        self.clock: Any = clock
        self.name = name
        self.handshake_timeout = handshake_timeout
        self.stall_timeout = stall_timeout
        self.max_cut_text = max_cut_text
        self.security = SecuritySettings(
            password=password,
            view_password=view_password,
            users=users,
            tls=tls,
            cleartext=cleartext,
        )
        self.auth_failure_delay = auth_failure_delay
        self.max_pending = max_pending
        self.max_output = max_output
        self.close_grace = close_grace
        self.clients: list[RFBServerProtocol] = []
        self.blacklist = Blacklist(clock)
        self.work = SharedWork()
        self.stats = RfbStats()

    @property
    def tls(self) -> Any:
        return self.security.tls

    def buildProtocol(self, addr: Any) -> RFBServerProtocol:  # type: ignore[override]
        return RFBServerProtocol(self)

    def desktopName(self) -> str:
        return self.name or str(self.console.name)

    # -- admission -----------------------------------------------------------------------

    def live(self) -> list[RFBServerProtocol]:
        """The connections that count against ``connections=``: every one not being closed."""
        return [c for c in self.clients if c.state is not State.CLOSED]

    def admit(self, proto: RFBServerProtocol) -> bool:
        """Count a new connection, or refuse it (logged; the caller closes it) past the
        limit.  Connections being closed do not count: they are gone within the grace."""
        if len(self.live()) >= self.connections:
            log.warn(
                "VNC connection from {peer} refused: limit of {n} connections reached",
                peer=proto.peer,
                n=self.connections,
            )
            return False
        self.clients.append(proto)
        return True

    def limitPending(self, proto: RFBServerProtocol) -> None:
        """Keep at most ``max_pending`` connections in the handshake: evict the oldest of
        the host holding the most (``eviction_victim``)."""
        pending = [
            c
            for c in self.clients
            if c is not proto and c.state not in (State.NORMAL, State.CLOSED)
        ]
        while pending and len(pending) >= self.max_pending:
            hosts = [c.host for c in pending]
            victim = pending.pop(eviction_victim(hosts, proto.host))
            held = hosts.count(victim.host)
            victim.close(
                f"evicted: {len(hosts)} handshakes in progress, the most ({held}) from host "
                f"{victim.host}, and {proto.peer} arrived",
                abort=True,
            )

    def forget(self, proto: RFBServerProtocol) -> bool:
        if proto in self.clients:
            self.clients.remove(proto)
            return True
        return False

    def applySharePolicy(self, proto: RFBServerProtocol) -> bool:
        """Apply the ClientInit shared flag; False if ``proto`` was refused (and closed)."""
        if self.share != "allow-exclusive":
            if not proto.shared:
                log.info(
                    "VNC viewer {peer} asked for exclusive access; treated as shared ({policy})",
                    peer=proto.peer,
                    policy=self.share,
                )
            proto.shared = True
            return True
        if not proto.shared and proto.view_only:
            # Exclusive access would lock full-control viewers out: view only means view only.
            log.info(
                "VNC viewer {peer} is view-only: its request for exclusive access is "
                "treated as shared",
                peer=proto.peer,
            )
            proto.shared = True
        others = [c for c in self.clients if c is not proto]
        if not proto.shared:
            proto.exclusive = True
            for other in others:
                other.close(f"disconnected: viewer {proto.peer} asked for exclusive access")
            return True
        holder = next((c for c in others if c.exclusive and c.state is State.NORMAL), None)
        if holder is not None:
            proto.close(f"refused: viewer {holder.peer} has exclusive access")
            return False
        return True

    # -- authentication blacklist (per host, as TigerVNC) ----------------------------------

    def blockedFor(self, address: Any) -> float:
        """Seconds ``address``'s host must still wait before trying again (0 = may try)."""
        return self.blacklist.blockedFor(address)

    def authFailed(self, address: Any) -> None:
        self.blacklist.failed(address)

    def authSucceeded(self, address: Any) -> None:
        self.blacklist.succeeded(address)
