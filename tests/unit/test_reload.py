"""Reload: what a new config file changes (diff_sites, pure) and how the running site applies
it (SiteService with fake console instances on a fake clock); SIGHUP's shared handler."""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import Any

import pytest
from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock

from vncmux import sighup
from vncmux.config import ConfigError, build_config, build_site
from vncmux.site import FAREWELL_GRACE, SiteService
from vncmux.site_config import diff_sites
from vncmux.specs import Config, Site


def console(name: str, display: int, **kw: Any) -> Config:
    return build_config(name=name, device=f"/dev/tty{name}", vnc=f"127.0.0.1:{display}", **kw)


def site(*consoles: Config, source: str | None = "/c.toml") -> Site:
    return build_site(list(consoles), source=source)


# -- diff_sites (pure) ------------------------------------------------------------------------


def test_diff_by_name_and_value() -> None:
    old = site(console("a", 1), console("b", 2), console("c", 3))
    new = site(console("a", 1), console("c", 3, baud="9600"), console("d", 4))
    diff = diff_sites(old, new)
    assert diff.added == ("d",)
    assert diff.removed == ("b",)
    assert diff.changed == ("c",)
    assert diff.unchanged == ("a",)
    assert not diff.empty and diff.site_settings == ()


def test_the_same_file_again_changes_nothing() -> None:
    old = site(console("a", 1), console("b", 2))
    again = site(console("a", 1), console("b", 2))
    assert old is not again
    diff = diff_sites(old, again)
    assert diff.empty and diff.unchanged == ("a", "b")


def test_site_wide_settings_are_reported() -> None:
    old = site(console("a", 1))
    new = dataclasses.replace(old, web="tcp:8080:interface=127.0.0.1")
    assert diff_sites(old, new).site_settings == ("web",)


# -- SiteService.apply / reload with fake instances ------------------------------------------


class FakeInstance(MultiService):
    """What SiteService needs of a console instance: a named service, ``farewell``."""

    def __init__(self, config: Config, log: list[str]) -> None:
        super().__init__()
        self.setName(config.name)
        self.config = config
        self.log = log
        self.farewells: list[str] = []

    def startService(self) -> None:
        super().startService()
        self.log.append(f"start {self.name}")

    def stopService(self) -> Any:
        self.log.append(f"stop {self.name}")
        return super().stopService()

    def farewell(self, why: str) -> None:
        self.farewells.append(why)
        self.log.append(f"farewell {self.name}")


class Harness:
    def __init__(self, initial: Site) -> None:
        self.clock = MemoryReactorClock()
        self.log: list[str] = []
        self.next: Site | Exception = initial
        self.failBuild: set[str] = set()
        self.top = SiteService(initial, self.clock, self.build, load=self.load)
        for config in initial.consoles:
            self.top.addConsole(self.build(config))
        self.top.startService()
        self.log.clear()

    def build(self, config: Config) -> FakeInstance:
        if config.name in self.failBuild:
            raise ConfigError(f"cannot listen on {config.vnc.port}: address already in use")
        return FakeInstance(config, self.log)

    def load(self) -> Site:
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def reload(self) -> list[Any]:
        results: list[Any] = []
        self.top.reload().addBoth(results.append)
        return results


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Harness:
    # startService registers for SIGHUP: keep the test's registrations out of the process.
    monkeypatch.setattr(sighup, "_callbacks", [])
    monkeypatch.setattr(sighup, "_installed", {"reactor": object()})
    return Harness(site(console("a", 1), console("b", 2), console("c", 3)))


def test_unchanged_consoles_are_not_touched(harness: Harness) -> None:
    before = dict(harness.top.consoles)
    harness.next = site(console("a", 1), console("b", 2), console("c", 3))
    results = harness.reload()
    assert results and results[0].empty
    assert harness.log == []
    assert harness.top.consoles == before
    assert all(harness.top.consoles[n] is before[n] for n in before)


def test_added_removed_and_changed(harness: Harness) -> None:
    a, b, c = (harness.top.consoles[n] for n in "abc")
    heard: list[str] = []
    harness.top.subscribe(
        lambda i: heard.append(f"+{i.name}"), lambda i: heard.append(f"-{i.name}")
    )
    harness.next = site(console("a", 1), console("c", 3, cols="100"), console("d", 4))
    results = harness.reload()
    # Clients of the consoles going away are told first, then given a grace.
    assert harness.log == ["farewell b", "farewell c"]
    assert b.farewells == ["removed"] and c.farewells == ["restarting (configuration changed)"]
    assert heard == ["-b", "-c"] and not results
    harness.clock.advance(FAREWELL_GRACE)
    assert harness.log[2:] == ["stop b", "stop c", "start c", "start d"]
    assert heard == ["-b", "-c", "+c", "+d"]
    assert list(harness.top.consoles) == ["a", "c", "d"]
    assert harness.top.consoles["a"] is a and a.running and not a.farewells
    assert harness.top.consoles["c"] is not c and not b.running and not c.running
    assert b.parent is None and harness.top.getServiceNamed("console:d").running
    assert results[0].added == ("d",)
    assert harness.top.site.consoles == harness.next.consoles  # type: ignore[union-attr]


def test_a_config_error_on_reload_changes_nothing(harness: Harness) -> None:
    before = dict(harness.top.consoles)
    old = harness.top.site
    harness.next = ConfigError("/c.toml: console 'b': key 'baud': 'x' is not a number")
    results = harness.reload()
    assert results == [None]
    assert harness.log == [] and harness.top.consoles == before and harness.top.site is old


def test_a_console_that_cannot_start_is_logged_and_retried_next_time(harness: Harness) -> None:
    harness.failBuild = {"d"}
    harness.next = site(console("a", 1), console("b", 2), console("c", 3), console("d", 4))
    results = harness.reload()
    assert results[0].added == ("d",)
    assert list(harness.top.consoles) == ["a", "b", "c"]
    assert [c.name for c in harness.top.site.consoles] == ["a", "b", "c"]
    harness.failBuild = set()
    results = harness.reload()
    assert results[-1].added == ("d",) and list(harness.top.consoles) == ["a", "b", "c", "d"]


def test_site_wide_changes_are_kept_for_a_restart(harness: Harness) -> None:
    old = harness.top.site
    assert isinstance(harness.next, Site)
    harness.next = dataclasses.replace(harness.next, web="tcp:8080:interface=127.0.0.1")
    harness.reload()
    assert harness.top.site.web == old.web


def test_a_reload_during_a_reload_follows_it(harness: Harness) -> None:
    harness.next = site(console("a", 1), console("b", 2))
    first = harness.reload()
    harness.next = site(console("a", 1))
    second = harness.reload()
    assert not first and not second
    harness.clock.advance(FAREWELL_GRACE)  # the first ends (c removed); the second begins
    harness.clock.advance(FAREWELL_GRACE)  # and ends (b removed)
    assert list(harness.top.consoles) == ["a"]
    assert harness.log.count("farewell b") == 1 and harness.log.count("farewell c") == 1


def test_sighup_reloads_before_any_console_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console's start makes the process visible (a port, a token file); a SIGHUP from
    then on must find the reload handler, not the default action, which kills."""
    monkeypatch.setattr(sighup, "_callbacks", [])
    monkeypatch.setattr(sighup, "_installed", {"reactor": object()})
    seen: list[list[Any]] = []

    class Watching(FakeInstance):
        def startService(self) -> None:
            seen.append(list(sighup._callbacks))
            super().startService()

    initial = site(console("a", 1), console("b", 2))
    top = SiteService(
        initial, MemoryReactorClock(), lambda c: Watching(c, []), load=lambda: initial
    )
    for config in initial.consoles:
        top.addConsole(Watching(config, []))
    top.startService()
    assert seen == [[top.reload], [top.reload]]


def test_stopping_the_site_unhooks_sighup(harness: Harness) -> None:
    assert sighup._callbacks == [harness.top.reload]
    harness.top.stopService()
    assert sighup._callbacks == []


# -- vncmux.sighup ------------------------------------------------------------------------------


def test_sighup_runs_every_callback_in_the_reactor(monkeypatch: pytest.MonkeyPatch) -> None:
    class Reactor:
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def callFromThread(self, f: Any, *a: Any) -> None:
            self.calls.append((f, a))

    monkeypatch.setattr(sighup, "_callbacks", [])
    monkeypatch.setattr(sighup, "_installed", {})
    previous = signal.getsignal(signal.SIGHUP)
    try:
        reactor = Reactor()
        ran: list[str] = []

        def broken() -> None:
            ran.append("broken")
            raise RuntimeError("boom")

        remove = sighup.onSighup(lambda: ran.append("reload"), reactor)
        sighup.onSighup(broken)
        sighup.onSighup(lambda: ran.append("reopen"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert ran == [] and reactor.calls == [(sighup.runCallbacks, ())]  # only scheduled
        reactor.calls[0][0]()
        assert ran == ["reload", "broken", "reopen"]  # one failing does not stop the rest
        remove()
        sighup.runCallbacks()
        assert ran[3:] == ["broken", "reopen"]
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- the real ConsoleInstance, on a memory reactor ----------------------------------------------


def test_console_instances_in_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    from vncmux.service import ConsoleInstance, makeService

    monkeypatch.setattr(sighup, "_callbacks", [])
    monkeypatch.setattr(sighup, "_installed", {"reactor": object()})
    consoles = [
        build_config(name=n, device=f"tcp:127.0.0.1:{p}", vnc="none", sockets=["tcp:0"])
        for n, p in (("web", 1), ("b", 2))
    ]
    top = makeService(build_site(consoles, source="/c.toml"), MemoryReactorClock())
    web = top.getServiceNamed("console:web")  # a console named like a site service
    assert isinstance(web, ConsoleInstance) and web.name == "web" and top.get("web") is web
    assert [i.name for i in top.instances()] == ["web", "b"]
    assert web.console is None and web.vnc_factory is None and web.vnc_address is None
    assert web.deviceState == "down"
    top.startService()
    assert web.deviceState == "reconnecting" and top.get("b").running
    web.farewell("removed")
    assert web.history.tail(100)[1].endswith(b"[vncmux: console web removed]\r\n")
    top.stopService()
    assert not web.running and web.deviceState == "down"
