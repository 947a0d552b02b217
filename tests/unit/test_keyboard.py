"""Who has the keyboard: the lock's policy on a fake clock, the telnet takeover escape, the
check in the hub's input path, the status line's text, and the console's side (keys
dropped while another viewer holds the keyboard, Ctrl+Alt+T, the status line's pixels)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import Clock
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer

from tests.support.fakes import FakeDevice
from vncmux.config import build_config, parse_input_policy
from vncmux.console.console import Console, ViewerSession
from vncmux.console.damage import Damage
from vncmux.console.interfaces import IViewer
from vncmux.console.keys import XK_Alt_L, XK_Control_L, XK_Prior, XK_Shift_L
from vncmux.console.render import Renderer
from vncmux.console.statusline import (
    StatusLine,
    device_text,
    keyboard_text,
    layout,
    refused_notice,
    status_cells,
    takeover_notice,
)
from vncmux.errors import ConfigError
from vncmux.events import LOCK, TAKEOVER, UNLOCK, Client, EventRecorder
from vncmux.hub import Hub
from vncmux.keyboard import TELNET_TAKEOVER, KeyboardLock, TakeoverEscape, describe, host_of

A = Client.of("vnc", "10.0.0.1:5001")
B = Client.of("socket", "10.0.0.2:6002")
WATCHER = Client.of("vnc", "10.0.0.3:7003", view_only=True)


class Watcher:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def keyboardChanged(self) -> None:
        self.calls.append("changed")

    def inputRefused(self, client: Client) -> None:
        self.calls.append(("refused", client))

    def takenOver(self, client: Client, previous: Client | None) -> None:
        self.calls.append(("takeover", client, previous))


def exclusive(idle: float = 30.0) -> tuple[KeyboardLock, Clock, EventRecorder]:
    clock = Clock()
    hub = Hub(clock)
    recorder = EventRecorder()
    hub.events.subscribe(recorder)
    hub.keyboard.configure(exclusive=True, idle=idle)
    return hub.keyboard, clock, recorder


# -- the lock ------------------------------------------------------------------------------


def test_shared_policy_lets_everybody_type_and_reports_nothing() -> None:
    clock = Clock()
    hub = Hub(clock)
    recorder = EventRecorder()
    hub.events.subscribe(recorder)
    lock = hub.keyboard
    assert lock.policy == "shared"
    assert lock.allow(A, 3) and lock.allow(B, 3)
    assert lock.holder is None and lock.refused == 0
    assert lock.takeover(A) is False, "nothing to take under the shared policy"
    assert recorder.events == []


def test_the_first_typist_holds_the_keyboard_and_the_others_are_dropped_and_counted() -> None:
    lock, _clock, recorder = exclusive()
    watcher = Watcher()
    lock.watch(watcher)
    assert lock.allow(A, 1)
    assert lock.holder == A
    assert lock.allow(A, 1), "the holder keeps typing"
    assert not lock.allow(B, 5)
    assert not lock.allow(B, 2)
    assert (lock.refused, lock.dropped) == (2, 7)
    assert not lock.permits(B) and lock.permits(A)
    assert [(e.name, e.client) for e in recorder.events] == [(LOCK, A)]
    assert watcher.calls == ["changed", ("refused", B), ("refused", B)]


def test_a_refused_client_is_logged_once_per_holder() -> None:
    lock, _clock, _recorder = exclusive()
    with capturedLogs() as events:
        lock.allow(A)
        for _ in range(3):
            lock.allow(B, 1)
        lock.takeover(Client.of("vnc", "10.0.0.4:1"))
        lock.allow(B, 1)
    dropped = [formatEvent(e) for e in events if "dropped" in formatEvent(e)]
    assert len(dropped) == 2, dropped
    assert "socket 10.0.0.2:6002" in dropped[0] and "vnc 10.0.0.1:5001 holds" in dropped[0]


def test_the_holder_loses_the_keyboard_after_being_idle_for_lock_idle_seconds() -> None:
    lock, clock, recorder = exclusive(idle=30)
    lock.allow(A, 1)
    clock.advance(20)
    lock.allow(A, 1)  # typing keeps it: idle counts from the last input
    clock.advance(29)
    assert lock.holder == A and not lock.allow(B, 1)
    clock.advance(1)
    assert lock.holder is None
    assert recorder.events[-1].name == UNLOCK and recorder.events[-1].detail == "idle"
    assert lock.allow(B, 1) and lock.holder == B, "after the idle time the next typist holds it"
    assert len(clock.getDelayedCalls()) == 1, "one idle timer, not one per key"


def test_a_holder_that_leaves_frees_the_keyboard() -> None:
    lock, _clock, recorder = exclusive()
    lock.allow(A, 1)
    lock.release(B)  # not the holder: nothing happens
    assert lock.holder == A
    lock.release(A)
    assert lock.holder is None
    assert [(e.name, e.detail) for e in recorder.events] == [(LOCK, ""), (UNLOCK, "left")]
    assert lock.allow(B, 1)


def test_takeover_by_a_full_control_client_names_the_previous_holder() -> None:
    lock, _clock, recorder = exclusive()
    watcher = Watcher()
    lock.watch(watcher)
    lock.allow(A, 1)
    assert lock.takeover(B) is True
    assert lock.holder == B
    event = recorder.events[-1]
    assert (event.name, event.client, event.previous) == (TAKEOVER, B, A)
    assert ("takeover", B, A) in watcher.calls
    assert not lock.allow(A, 1), "the previous holder is now refused"
    assert lock.takeover(B) is False, "already the holder"
    assert lock.takeover(WATCHER) is False, "a view-only client cannot take the keyboard"
    assert lock.holder == B


def test_takeover_of_a_free_keyboard_has_no_previous_holder() -> None:
    lock, _clock, recorder = exclusive()
    assert lock.takeover(A)
    assert (recorder.events[-1].name, recorder.events[-1].previous) == (TAKEOVER, None)


def test_a_view_only_client_never_holds_the_keyboard() -> None:
    lock, _clock, _recorder = exclusive()
    assert not lock.allow(WATCHER, 1)
    assert lock.holder is None


def test_an_api_client_is_its_host_and_credential_whatever_its_connection() -> None:
    lock, _clock, _recorder = exclusive()
    first = Client.of("api", "127.0.0.1:40001")
    assert lock.allow(first, 1)
    assert lock.allow(Client.of("api", "127.0.0.1:40002"), 1), "a new HTTP connection"
    assert not lock.allow(Client.of("api", "127.0.0.2:40003"), 1), "another host"
    assert describe(first) == "api 127.0.0.1"
    assert describe(A) == "vnc 10.0.0.1:5001"
    assert host_of("[::1]:80") == "[::1]" and host_of("/run/api.sock") == "/run/api.sock"


def test_back_to_the_shared_policy_frees_the_keyboard() -> None:
    lock, _clock, recorder = exclusive()
    lock.allow(A, 1)
    lock.configure(exclusive=False)
    assert lock.holder is None and lock.allow(B, 1)
    assert (recorder.events[-1].name, recorder.events[-1].detail) == (UNLOCK, "policy")


def test_a_failing_watcher_does_not_stop_the_input_path() -> None:
    lock, _clock, _recorder = exclusive()

    class Broken(Watcher):
        def keyboardChanged(self) -> None:
            raise RuntimeError("boom")

    lock.watch(Broken())
    with capturedLogs() as events:
        assert lock.allow(A, 1)
    assert any(e.get("log_failure") is not None for e in events)


# -- the hub's input path ------------------------------------------------------------------


def test_the_hub_drops_input_from_clients_the_lock_refuses() -> None:
    clock = Clock()
    hub = Hub(clock)
    device = FakeDevice()
    hub.deviceConnected(device)
    hub.keyboard.configure(exclusive=True, idle=10)
    assert hub.input(b"a", client=A)
    assert hub.input(b"b", client=B) is False
    assert hub.input(b"\x1b[1;1R") is True, "terminal replies have no client: never gated"
    assert device.written == [b"a", b"\x1b[1;1R"]
    clock.advance(10)
    assert hub.input(b"c", client=B)
    assert device.written[-1] == b"c"


# -- the telnet escape ----------------------------------------------------------------------


def test_the_telnet_escape_is_removed_and_reported() -> None:
    scanner = TakeoverEscape()
    assert TELNET_TAKEOVER == b"\x05cf"
    assert scanner.feed(b"ls\x05cf\r") == (b"ls\r", True)
    assert scanner.feed(b"plain") == (b"plain", False)


def test_the_telnet_escape_may_be_split_across_reads() -> None:
    scanner = TakeoverEscape()
    assert scanner.feed(b"x\x05") == (b"x", False)
    assert scanner.held == b"\x05"
    assert scanner.feed(b"c") == (b"", False)
    assert scanner.feed(b"fy") == (b"y", True)


def test_bytes_that_only_begin_the_escape_pass_on_unchanged() -> None:
    scanner = TakeoverEscape()
    assert scanner.feed(b"\x05a") == (b"\x05a", False), "Ctrl+E then another key"
    assert scanner.feed(b"\x05cx") == (b"\x05cx", False)
    assert scanner.feed(b"\x05\x05cf") == (b"\x05", True), "the escape starts on the second ^E"


# -- options --------------------------------------------------------------------------------


def test_input_policy_options() -> None:
    assert parse_input_policy("shared", "30", None) == (False, 30.0, False)
    assert parse_input_policy("Exclusive", "2.5", None) == (True, 2.5, True)
    assert parse_input_policy("exclusive", 30, "off") == (True, 30.0, False)
    assert parse_input_policy("shared", 30, "on") == (False, 30.0, True)
    config = build_config(device="exec:true", input_policy="exclusive", lock_idle="5")
    assert (config.exclusive_input, config.lock_idle, config.status_line) == (True, 5.0, True)
    for bad in (("mine", "30", None), ("shared", "0", None), ("shared", "nan", None)):
        with pytest.raises(ConfigError, match="--input-policy|--lock-idle"):
            parse_input_policy(*bad)
    with pytest.raises(ConfigError, match="--status-line"):
        parse_input_policy("shared", "30", "maybe")


# -- the status line's text ----------------------------------------------------------------


def test_the_status_line_text() -> None:
    assert keyboard_text(False, None) == "keyboard: shared"
    assert "free" in keyboard_text(True, None)
    assert keyboard_text(True, A) == "keyboard: vnc 10.0.0.1:5001 (Ctrl+Alt+T takes it)"
    assert device_text(True) == "device: connected"
    assert device_text(False) == "device: reconnecting"
    assert refused_notice(B, A) == (
        "vnc 10.0.0.1:5001 has the keyboard: input from socket 10.0.0.2:6002 dropped"
    )
    assert takeover_notice(B, A) == "socket 10.0.0.2:6002 took the keyboard from vnc 10.0.0.1:5001"
    line = layout("left", "right", 20)
    assert line == " left" + " " * 9 + "right " and len(line) == 20
    assert layout("a long left part", "right", 12) == " a long left"
    assert layout("x\x1by", "r", 10).startswith(" x?y"), "no control character reaches the line"
    assert [c.data for c in status_cells("ab")] == ["a", "b"]


def test_the_status_line_follows_the_lock_the_device_and_notices_expire() -> None:
    clock = Clock()
    hub = Hub(clock)
    hub.keyboard.configure(exclusive=True, idle=100)
    shown: list[tuple[str, str, bool]] = []
    status = StatusLine(hub, clock, lambda *line: shown.append(line), notice_seconds=5)
    assert shown == [(keyboard_text(True, None), "device: reconnecting", False)]
    hub.deviceConnected(FakeDevice())
    status.update()
    assert shown[-1][1] == "device: connected"
    hub.input(b"a", client=A)
    assert shown[-1] == (keyboard_text(True, A), "device: connected", False)
    hub.input(b"b", client=B)
    assert shown[-1] == (refused_notice(B, A), "device: connected", True)
    count = len(shown)
    clock.advance(3)
    hub.input(b"b", client=B)  # the same notice again: renewed, not redrawn
    assert len(shown) == count
    clock.advance(4)
    assert shown[-1][2] is True, "renewed: 5 s from the last refusal"
    clock.advance(1)
    assert shown[-1] == (keyboard_text(True, A), "device: connected", False)
    hub.keyboard.takeover(B)
    assert shown[-1] == (takeover_notice(B, A), "device: connected", True)
    status.stop()
    count = len(shown)
    hub.keyboard.takeover(A)
    clock.advance(10)
    assert len(shown) == count, "a stopped status line follows nothing"


# -- the console ----------------------------------------------------------------------------


@implementer(IViewer)
class FakeViewer:
    def __init__(self) -> None:
        self.updates = 0
        self.sizes: list[tuple[int, int]] = []

    def updateAvailable(self) -> None:
        self.updates += 1

    def bell(self) -> None:
        pass

    def nameChanged(self, name: str) -> None:
        pass

    def sizeChanged(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def cutText(self, text: str) -> None:
        pass


class Setup:
    """An exclusive-policy console with a status line on a real hub and a fake device."""

    def __init__(self, status_line: bool = True, exclusive: bool = True, **kw: Any) -> None:
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.hub.keyboard.configure(exclusive=exclusive, idle=30)
        self.device = FakeDevice()
        self.hub.deviceConnected(self.device, "fake connected")
        self.console = Console(self.hub, self.clock, 80, 4, status_line=status_line, **kw)
        self.console.start()

    def attach(self, peer: str, view_only: bool = False) -> tuple[FakeViewer, ViewerSession]:
        viewer = FakeViewer()
        return viewer, self.console.attach(viewer, view_only=view_only, peer=peer)

    def typed(self) -> bytes:
        data = b"".join(self.device.written)
        self.device.written.clear()
        return data

    def band(self) -> Any:
        c = self.console
        x, y, w, h = c.row_box(c.rows, 1)
        return c.crop((x, y, x + w, y + h))


def press(session: ViewerSession, *keysyms: int) -> None:
    for k in keysyms:
        session.key(k, True)
    for k in reversed(keysyms):
        session.key(k, False)


def expected_band(cols: int, left: str, right: str, notice: bool) -> Any:
    """The status line as the console's own renderer draws it."""
    renderer = Renderer(cols, 1)
    renderer.set_status_rows(1)
    renderer.draw_status(status_cells(layout(left, right, cols), notice))
    x, y, w, h = renderer.row_box(1, 1)
    return renderer.image.crop((x, y, x + w, y + h))


def test_the_status_line_is_one_cell_row_below_the_terminal() -> None:
    s = Setup()
    c = s.console
    assert c.height == (c.rows + 1) * c.display.cell_height
    assert c.display.lines == c.rows + 1
    _viewer, session = s.attach("10.0.0.1:5001")
    assert session.damage.rows == set(range(c.rows + 1)), "a new viewer gets the line too"
    plain = Setup(status_line=False)
    assert plain.console.height == plain.console.rows * plain.console.display.cell_height
    assert plain.console.display.status_text is None


def test_keys_of_another_viewer_are_dropped_while_one_holds_the_keyboard() -> None:
    s = Setup()
    _va, a = s.attach("10.0.0.1:5001")
    _vb, b = s.attach("10.0.0.2:5002")
    press(a, ord("x"))
    press(b, ord("y"))
    assert s.typed() == b"x"
    assert s.hub.keyboard.holder == a.client
    assert s.console.display.status_text is not None
    assert "vnc 10.0.0.1:5001 has the keyboard: input from vnc 10.0.0.2:5002 dropped" in (
        s.console.display.status_text
    )
    a.detach()
    press(b, ord("z"))
    assert s.typed() == b"z", "the holder left: the keyboard is free"


def test_ctrl_alt_t_takes_the_keyboard_and_is_not_sent() -> None:
    s = Setup()
    va, a = s.attach("10.0.0.1:5001")
    vb, b = s.attach("10.0.0.2:5002")
    press(a, ord("x"))
    s.typed()
    before = s.band()
    for session in (a, b):
        session.requestUpdate()  # answered at once: everything is new
        session.damage.clear()
        session.requestUpdate()  # now waiting
    va.updates = vb.updates = 0
    press(b, XK_Control_L, XK_Alt_L, ord("t"))
    assert s.typed() == b"", "the combination is not sent to the device"
    assert s.hub.keyboard.holder == b.client
    want = expected_band(80, takeover_notice(b.client, a.client), "device: connected", True)
    assert s.band().tobytes() == want.tobytes(), "both viewers see who took it from whom"
    assert s.band().tobytes() != before.tobytes()
    assert (va.updates, vb.updates) == (1, 1), "waiting viewers are told at once"
    assert a.damage.rows == b.damage.rows == {s.console.rows}
    press(a, ord("q"))
    press(b, ord("w"))
    assert s.typed() == b"w"


def test_ctrl_alt_t_is_an_ordinary_key_under_the_shared_policy() -> None:
    s = Setup(exclusive=False)
    _va, a = s.attach("10.0.0.1:5001")
    press(a, XK_Control_L, XK_Alt_L, ord("t"))
    assert s.typed() == b"\x1b\x14"


def test_a_view_only_viewer_cannot_take_the_keyboard() -> None:
    s = Setup()
    _va, a = s.attach("10.0.0.1:5001")
    _vw, w = s.attach("10.0.0.3:5003", view_only=True)
    press(a, ord("x"))
    press(w, XK_Control_L, XK_Alt_L, ord("t"))
    assert s.hub.keyboard.holder == a.client


def test_the_status_line_shows_the_device_state() -> None:
    s = Setup()
    assert s.console.display.status_text is not None
    assert s.console.display.status_text.rstrip().endswith("device: connected")
    s.hub.deviceLost("fake gone")
    s.clock.advance(0)
    assert s.console.display.status_text.rstrip().endswith("device: reconnecting")


def test_a_scrolled_back_viewer_still_sees_the_status_line() -> None:
    s = Setup()
    _va, a = s.attach("10.0.0.1:5001")
    s.hub.deviceOutput(b"".join(b"line %d\r\n" % i for i in range(20)))
    s.clock.advance(0)
    press(a, XK_Shift_L, XK_Prior)
    assert a.offset > 0
    a.requestUpdate()  # answered at once: everything is new to it
    a.damage.clear()
    a.requestUpdate()  # now it waits
    s.hub.keyboard.takeover(Client.of("api", "127.0.0.1:1"))
    assert s.console.rows in a.damage.rows, "the status line's damage reaches an own view"
    c = s.console
    x, y, w, h = c.row_box(0, c.rows + 1)
    own = a.crop((x, y, x + w, y + h))
    band_top = c.rows * c.display.cell_height
    assert own.crop((0, band_top, w, h)).tobytes() == s.band().tobytes()


def test_a_resize_keeps_the_status_line() -> None:
    s = Setup()
    viewer, session = s.attach("10.0.0.1:5001")
    s.console.resize(90, 6)
    c = s.console
    assert viewer.sizes == [(c.width, (6 + 1) * c.display.cell_height)]
    assert session.damage.lines == 7 and session.damage.rows == set(range(7))
    assert c.display.status_text is not None and len(c.display.status_text) == 90
    want = expected_band(90, keyboard_text(True, None), "device: connected", False)
    assert s.band().tobytes() == want.tobytes()


def test_the_framebuffer_damage_of_a_status_line_change_is_only_its_row() -> None:
    s = Setup()
    _va, a = s.attach("10.0.0.1:5001")
    a.requestUpdate()  # answered at once: everything is new to it
    a.damage.clear()
    a.requestUpdate()  # now it waits
    s.hub.keyboard.takeover(Client.of("api", "127.0.0.1:1"))
    assert a.damage.rows == {s.console.rows} and isinstance(a.damage, Damage)
    assert _va.updates == 2, "the waiting viewer was told"


def test_stop_cancels_the_idle_timer() -> None:
    lock, clock, _recorder = exclusive()
    lock.allow(A, 1)
    assert clock.getDelayedCalls()
    lock.stop()
    assert clock.getDelayedCalls() == []
