"""The running site: the consoles of one process by name, and reloading them on SIGHUP.

``SiteService`` is the top of the service tree (``vncmux.service.makeService`` builds it):
one child per console (a ``ConsoleInstance``, named ``console:NAME``) and the site-wide
services.  ``reload`` re-reads the config file and applies the difference
(``vncmux.site_config.diff_sites``): consoles added are started, removed ones told why and
stopped, changed ones told and restarted; an unchanged console is not touched, so its device
stays open and every client stays connected.  A file that does not parse or check changes
nothing.  How a console is built is handed in (``build``), so this module knows no device,
socket or protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger

from vncmux.errors import ConfigError
from vncmux.site_config import SiteDiff, diff_sites
from vncmux.specs import Config, Site

log = Logger()

#: Seconds between telling a console's clients it goes away and closing them: time for
#: viewers to get a frame showing the line.
FAREWELL_GRACE = 0.5

Observer = Callable[[Any], object]


class SiteService(MultiService):
    """The consoles of one process (``consoles``: name → instance, in the site's order) and
    the site-wide services; reloads on SIGHUP when the site came from a file."""

    def __init__(
        self,
        site: Site,
        reactor: Any,
        build: Callable[[Config], Any],
        *,
        load: Callable[[], Site] | None = None,
        grace: float = FAREWELL_GRACE,
    ) -> None:
        super().__init__()
        self.site = site
        self.reactor = reactor
        self.build = build
        self.load = load
        self.grace = grace
        self.consoles: dict[str, Any] = {}
        self._observers: list[tuple[Observer, Observer]] = []
        self._unhook: Callable[[], None] | None = None
        self._busy: Deferred[SiteDiff | None] | None = None
        self._again = False

    # -- what others read

    def instances(self) -> list[Any]:
        """The running console instances, in the site's order."""
        return list(self.consoles.values())

    def get(self, name: str) -> Any:
        """The running console named ``name``, or None."""
        return self.consoles.get(name)

    def subscribe(self, added: Observer, removed: Observer) -> Callable[[], None]:
        """Hear of consoles started (``added(instance)``, after it started) and stopped
        (``removed(instance)``, before it stops) by a reload; a restart is both.  Those
        running already are in ``instances()``.  Returns the unsubscribe function."""
        pair = (added, removed)
        self._observers.append(pair)

        def unsubscribe() -> None:
            if pair in self._observers:
                self._observers.remove(pair)

        return unsubscribe

    def addConsole(self, instance: Any) -> None:
        """Make ``instance`` one of the site's consoles (started at once if we run)."""
        self.consoles[instance.name] = instance
        instance.setServiceParent(self)

    # A console's ``name`` is its own (what URLs, tokens and logs use), but in the tree it is
    # ``console:NAME``, so that a console called "web" never clashes with a site service.

    def _key(self, service: Any) -> str | None:
        if service.name is not None and any(i is service for i in self.consoles.values()):
            return f"console:{service.name}"
        return service.name  # type: ignore[no-any-return]

    def addService(self, service: Any) -> None:
        key = self._key(service)
        if key is not None:
            if key in self.namedServices:
                raise RuntimeError(f"cannot have two services named {key!r}")
            self.namedServices[key] = service
        self.services.append(service)
        if self.running:
            service.privilegedStartService()
            service.startService()

    def removeService(self, service: Any) -> Any:
        key = self._key(service)
        if key is not None:
            del self.namedServices[key]
        self.services.remove(service)
        return service.stopService() if self.running else None

    # -- life cycle

    def startService(self) -> None:
        # The handler goes in before the consoles start: once anything is visible outside
        # (a listening port, a token file), a SIGHUP must reload, not kill (its default).
        if self.site.source is not None and self.load is not None:
            from vncmux.sighup import onSighup

            self._unhook = onSighup(self.reload, self.reactor)
            log.info("vncmux: SIGHUP reloads {path}", path=self.site.source)
        super().startService()

    def stopService(self) -> Deferred[Any]:
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        return super().stopService()  # type: ignore[no-any-return]

    # -- reload

    def reload(self) -> Deferred[SiteDiff | None]:
        """Re-read the site and apply what changed; fires with the diff applied (None when
        the new site was refused).  A reload asked for while one runs follows it."""
        if self._busy is not None:
            self._again = True
            return self._busy
        d = self._reload()
        self._busy = d

        def done(result: SiteDiff | None) -> Any:
            self._busy = None
            if self._again:
                self._again = False
                self.reload()
            return result

        return d.addBoth(done)

    def _reload(self) -> Deferred[SiteDiff | None]:
        if self.load is None:
            log.warn("vncmux: reload: there is no config file to re-read")
            return succeed(None)
        try:
            new = self.load()
        except ConfigError as e:
            log.error("vncmux: reload refused, nothing changed: {error}", error=str(e))
            return succeed(None)
        except Exception:
            log.failure("vncmux: reload refused, nothing changed")
            return succeed(None)
        return self.apply(new)

    def apply(self, new: Site) -> Deferred[SiteDiff | None]:
        """Move from the running site to ``new`` (already parsed and checked)."""
        diff = diff_sites(self.site, new)
        if diff.site_settings:
            log.warn(
                "vncmux: reload: site-wide settings changed ({names}); they take effect when "
                "vncmux is restarted",
                names=", ".join(diff.site_settings),
            )
        log.info(
            "vncmux: reload: added {added}, removed {removed}, restarted {changed}, "
            "unchanged {unchanged}",
            added=_names(diff.added),
            removed=_names(diff.removed),
            changed=_names(diff.changed),
            unchanged=_names(diff.unchanged),
        )
        # The consoles the site now wants; a build that fails below is dropped from it, so
        # the next reload tries it again.
        wanted = {c.name: c for c in new.consoles}
        self.site = dataclasses.replace(self.site, consoles=new.consoles)
        going = [(name, "removed") for name in diff.removed]
        going += [(name, "restarting (configuration changed)") for name in diff.changed]
        stopping = [(self.consoles[n], why) for n, why in going if n in self.consoles]
        for instance, why in stopping:
            self._tell(1, instance)
            instance.farewell(why)
        d: Deferred[Any] = (
            deferLater(self.reactor, self.grace, lambda: None) if stopping else succeed(None)
        )

        def stop(_: Any) -> Deferred[Any]:
            stops = []
            for instance, _why in stopping:
                d = maybeDeferred(instance.disownServiceParent).addErrback(_failed, instance)
                del self.consoles[instance.name]
                stops.append(d)
            return DeferredList(stops)

        def start(_: Any) -> SiteDiff:
            starting = set(diff.added + diff.changed)
            for name in [c.name for c in new.consoles if c.name in starting]:
                try:
                    instance = self.build(wanted[name])
                except Exception as e:
                    why = str(e) if isinstance(e, ConfigError) else repr(e)
                    log.error(
                        "vncmux: reload: console {name} not started: {why}", name=name, why=why
                    )
                    self.site = dataclasses.replace(
                        self.site, consoles=tuple(c for c in self.site.consoles if c.name != name)
                    )
                    continue
                self.addConsole(instance)
                self._tell(0, instance)
            order = [c.name for c in self.site.consoles]
            self.consoles = {n: self.consoles[n] for n in order if n in self.consoles}
            return diff

        return d.addCallback(stop).addCallback(start)

    def _tell(self, which: int, instance: Any) -> None:
        for pair in list(self._observers):
            try:
                pair[which](instance)
            except Exception:
                log.failure("vncmux: a console observer failed on {name}", name=instance.name)


def _failed(reason: Any, instance: Any) -> None:
    log.failure("vncmux: stopping console {name}", reason, name=instance.name)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"
