"""The display: render once, fold damage into every viewer, answer pulled requests, ring
bells at most once per frame interval, keep a bounded cache of shared crops."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from twisted.internet.testing import Clock

from tests.support.display_fakes import FakeRenderer, FakeTerminal, make_display
from tests.support.fakes import RecordingViewer
from vncmux.console.damage import Damage
from vncmux.console.display import Display

CLOCK = Clock()


def make(
    timer: Callable[[], float] | None = None,
    renderer: FakeRenderer | None = None,
) -> tuple[Display, FakeTerminal, FakeRenderer]:
    """A display on a fresh fake clock (``CLOCK`` is rebound for the test to advance)."""
    global CLOCK
    CLOCK = Clock()
    return make_display(CLOCK, timer, renderer)


def test_new_viewer_starts_all_dirty_and_is_answered_at_once() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    assert acc.rows == {0, 1, 2}
    display.requestUpdate(viewer)
    assert viewer.events == ["update"]


def test_incremental_request_waits_for_damage_then_fires_once() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    assert viewer.events == []
    term.pending.mark([1])
    display.changed()
    assert viewer.events == ["update"]
    assert acc.rows == {1}
    term.pending.mark([2])
    display.changed()
    CLOCK.advance(1)
    assert viewer.events == ["update"], "only one answer per request"
    display.requestUpdate(viewer)
    assert viewer.events == ["update", "update"]
    assert acc.rows == {1, 2}, "damage accumulates until the viewer takes it"


def test_nothing_is_rendered_while_nobody_waits() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    term.pending.mark([0])
    display.changed()
    assert rend.rendered == []
    display.requestUpdate(viewer)
    assert len(rend.rendered) == 1 and rend.rendered[0].rows == {0}
    assert viewer.events == ["update"]


def test_damage_is_rendered_once_for_many_viewers() -> None:
    display, term, rend = make()
    viewers = [RecordingViewer() for _ in range(5)]
    accs = [display.attach(v) for v in viewers]
    for acc in accs:
        acc.clear()
    for v in viewers:
        display.requestUpdate(v)
    term.pending.scrolled(0, 2, 1)
    display.changed()
    CLOCK.advance(display.min_interval)
    assert len(rend.rendered) == 1
    for v, acc in zip(viewers, accs):
        assert v.events == ["update"]
        assert acc.scroll is not None and acc.rows == {2}


def test_detached_viewer_hears_nothing() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    display.requestUpdate(viewer)
    display.detach(viewer)
    term.pending.mark([0])
    display.bell()
    display.changed()
    assert viewer.events == []


def test_bell_and_title() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    display.attach(viewer)
    assert display.name == "vncmux: test"
    term.title = "vim"
    display.titleChanged()
    display.bell()
    assert viewer.events == [("name", "vim"), "bell"]
    term.title = ""
    display.titleChanged()
    assert viewer.events[-1] == ("name", "vncmux: test"), "no title: the default name"


def test_a_run_of_bells_rings_at_most_once_per_frame_interval() -> None:
    """Issue 13 item 9: a flood of BEL with ten viewers cost one Bell message per BEL per
    viewer.  Now each viewer hears one at once and one more when the interval ends."""
    display, term, rend = make()
    viewers = [RecordingViewer() for _ in range(10)]
    for v in viewers:
        display.attach(v)
    for _ in range(10_000):
        display.bell()
    assert all(v.events == ["bell"] for v in viewers), "the first rings at once"
    CLOCK.advance(display.min_interval / 2)
    display.bell()
    assert all(v.events == ["bell"] for v in viewers)
    CLOCK.advance(display.min_interval / 2)
    assert all(v.events == ["bell", "bell"] for v in viewers), "the rest: one more, later"
    CLOCK.advance(1)
    assert all(v.events == ["bell", "bell"] for v in viewers), "nothing more without a BEL"
    display.bell()
    assert all(v.events == ["bell"] * 3 for v in viewers), "a lone later BEL rings at once"


def test_bells_follow_the_paced_frame_interval() -> None:
    """While frames are paced apart (the device floods), bells are not more frequent than
    frames."""
    now = [0.0]
    display, term, rend = make(timer=lambda: now[0])
    slow_render = rend.render

    def render(t: FakeTerminal, damage: Damage) -> None:
        now[0] += 0.5
        slow_render(t, damage)

    rend.render = render  # type: ignore[method-assign]
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()  # a frame that took 0.5 s: the next one is 0.5 s away
    display.bell()
    display.bell()
    CLOCK.advance(0.4)
    assert viewer.events.count("bell") == 1
    CLOCK.advance(0.1)
    assert viewer.events.count("bell") == 2


def test_close_cancels_pending_bells_and_frames() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    display.bell()
    display.bell()  # due later
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()  # a frame goes at once: the next must wait
    display.requestUpdate(viewer)
    term.pending.mark([1])
    display.changed()
    assert CLOCK.getDelayedCalls()
    display.close()
    assert CLOCK.getDelayedCalls() == []


def test_resize_keeps_the_accumulator_object_and_marks_it_all() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.resize(6, 5)
    assert (display.cols, display.rows, display.width, display.height) == (6, 5, 12, 15)
    assert acc.lines == 5 and acc.rows == set(range(5))
    assert viewer.events == [("size", 12, 15)]


def test_refreshes_are_paced_while_output_streams() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()
    assert viewer.events == ["update"], "the first frame goes at once (latency)"
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([1])
    display.changed()
    term.pending.mark([2])
    display.changed()
    assert viewer.events == ["update"], "the next one waits for the frame interval"
    CLOCK.advance(display.min_interval)
    assert viewer.events == ["update", "update"]
    assert acc.rows == {1, 2} and len(rend.rendered) == 2, "both changes in one frame"


def test_a_costly_refresh_stretches_the_interval() -> None:
    now = [0.0]
    display, term, rend = make(timer=lambda: now[0])
    slow_render = rend.render

    def render(t: FakeTerminal, damage: Damage) -> None:
        now[0] += 0.5  # this frame "takes" half a second
        slow_render(t, damage)

    rend.render = render  # type: ignore[method-assign]
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()
    assert viewer.events == ["update"]
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([1])
    display.changed()
    CLOCK.advance(0.4)
    assert viewer.events == ["update"], "the device gets as long as the frame took"
    CLOCK.advance(0.1)
    assert viewer.events == ["update", "update"]


def test_the_crop_cache_is_bounded_by_bytes_not_entries() -> None:
    """Issue 13 item 5: a viewer asking for many different small areas grew the cache to
    256 crops whatever their size (+116 MB at 80×24).  The cache now holds at most
    ``crop_frames`` frames' worth of pixels, and the newest crop is always kept."""
    import gc
    import weakref

    display, term, rend = make(renderer=FakeRenderer(80, 24, cell=(8, 16)))
    frame = rend.width * rend.height * 4
    assert display.crop_budget == display.crop_frames * frame
    alive: list[weakref.ref[Image.Image]] = []
    for top in range(0, rend.height - 160):  # 224 different bands, each 160 pixels high
        crop = display.crop((0, top, rend.width, top + 160))
        alive.append(weakref.ref(crop))
        del crop
    gc.collect()
    kept = [r() for r in alive if r() is not None]
    held = sum(image.width * image.height * 4 for image in kept if image is not None)
    assert held <= display.crop_budget <= 8 * frame
    assert alive[-1]() is not None, "the newest crop stays cached"
    newest = (0, rend.height - 161, rend.width, rend.height - 1)
    assert display.crop(newest) is alive[-1]()


def test_viewers_share_one_crop_per_frame() -> None:
    display, term, rend = make()
    box = (0, 3, 8, 6)
    first = display.crop(box)
    assert display.crop(box) is first, "same rows of the same frame: the same object"
    assert first.size == (8, 3)
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    display.requestUpdate(viewer)
    term.pending.mark([1])
    display.changed()
    assert display.crop(box) is not first, "a new frame gets a new crop"


def test_many_viewers_send_in_slices_and_all_get_their_frame() -> None:
    now = [0.0]

    def timer() -> float:
        now[0] += 0.004  # every look at the clock: 4 ms of "work"
        return now[0]

    display, term, rend = make(timer=timer)
    viewers = [RecordingViewer() for _ in range(10)]
    for v in viewers:
        display.attach(v).clear()
        display.requestUpdate(v)
    term.pending.mark([0])
    display.changed()
    done = sum(1 for v in viewers if v.events == ["update"])
    assert 0 < done < 10, "the first slice ends before every viewer sent"
    for _ in range(10):
        CLOCK.advance(0)
    assert all(v.events == ["update"] for v in viewers)
    assert len(rend.rendered) == 1, "rendered once for all of them"


def test_a_request_arriving_during_slices_is_not_forgotten() -> None:
    now = [0.0]

    def timer() -> float:
        now[0] += 0.004
        return now[0]

    display, term, rend = make(timer=timer)
    viewers = [RecordingViewer() for _ in range(6)]
    for v in viewers:
        display.attach(v).clear()
        display.requestUpdate(v)
    term.pending.mark([0])
    display.changed()
    late = RecordingViewer()
    late_acc = display.attach(late)
    late_acc.clear()  # as if it had just been sent everything
    display.requestUpdate(late)  # slices still running: it waits
    term.pending.mark([2])
    for _ in range(20):
        CLOCK.advance(0.01)
    assert late.events == ["update"]
    assert 2 in late_acc.rows


def test_a_new_viewer_gets_output_that_arrived_while_nobody_watched() -> None:
    display, term, rend = make()
    term.pending.mark([2])
    display.changed()  # nobody waits: nothing rendered yet
    assert rend.rendered == []
    viewer = RecordingViewer()
    display.attach(viewer)
    display.requestUpdate(viewer)
    assert [d.rows for d in rend.rendered] == [{2}], "rendered before the first frame"
    assert viewer.events == ["update"]


def _frame(
    display: Display,
    term: FakeTerminal,
    viewer: RecordingViewer,
    acc: Damage,
    change: Callable[[], None],
) -> None:
    """The viewer has taken its update and asks again; then the terminal changes."""
    acc.clear()
    display.requestUpdate(viewer)
    change()
    display.changed()


def test_streaming_output_gets_one_frame_per_stream_interval() -> None:
    """Issue 14 item 5: a frame that scrolled (or redrew most rows) means output streams;
    the next frame waits ``stream_interval`` and then shows everything since, so a flood
    costs one render and encode per interval instead of one per line."""
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    _frame(display, term, viewer, acc, lambda: term.pending.scrolled(0, 2, 1))
    assert viewer.events == ["update"], "the first frame after idle goes at once"
    _frame(display, term, viewer, acc, lambda: term.pending.scrolled(0, 2, 1))
    term.pending.mark([2])
    display.changed()
    CLOCK.advance(display.min_interval)
    assert viewer.events == ["update"], "a scrolled frame: the next waits longer"
    CLOCK.advance(display.stream_interval - display.min_interval)
    assert viewer.events == ["update", "update"]
    assert len(rend.rendered) == 2, "both changes in one frame"


def test_a_frame_redrawing_most_rows_counts_as_streaming() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    _frame(display, term, viewer, acc, lambda: term.pending.mark([0, 1]))
    _frame(display, term, viewer, acc, lambda: term.pending.mark([0]))
    CLOCK.advance(display.min_interval)
    assert viewer.events == ["update"]
    CLOCK.advance(display.stream_interval)
    assert viewer.events == ["update", "update"]


def test_small_changes_after_streaming_are_paced_by_min_interval_again() -> None:
    """An echoed key after the output stopped: no stream pacing (key -> pixel latency)."""
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    _frame(display, term, viewer, acc, lambda: term.pending.scrolled(0, 2, 1))
    CLOCK.advance(display.stream_interval)
    _frame(display, term, viewer, acc, lambda: term.pending.mark([1]))
    assert viewer.events == ["update", "update"], "after the interval: at once"
    _frame(display, term, viewer, acc, lambda: term.pending.mark([1]))
    assert viewer.events == ["update", "update"]
    CLOCK.advance(display.min_interval)
    assert viewer.events == ["update"] * 3, "a one-row frame: the short interval"


def test_the_stream_interval_counts_from_when_the_frame_began() -> None:
    """A frame's own rendering time is part of the interval, not added to it: a steady
    frame rate while output streams (the viewers' lag stays within one interval)."""
    display, term, rend = make()
    slow_render = rend.render

    def render(t: FakeTerminal, damage: Damage) -> None:
        CLOCK.advance(0.01)  # this frame takes 10 ms of wall time
        slow_render(t, damage)

    rend.render = render  # type: ignore[method-assign]
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    _frame(display, term, viewer, acc, lambda: term.pending.scrolled(0, 2, 1))
    _frame(display, term, viewer, acc, lambda: term.pending.scrolled(0, 2, 1))
    CLOCK.advance(display.stream_interval - 0.01 - 0.001)
    assert viewer.events == ["update"]
    CLOCK.advance(0.002)  # before 10 ms + stream_interval: counted from the start
    assert viewer.events == ["update", "update"]


# -- synchronized output (DEC mode 2026) --------------------------------------------------


def waiting_viewer() -> tuple[Display, FakeTerminal, FakeRenderer, RecordingViewer, Damage]:
    """A display with one viewer that has seen everything and asks for the next update
    (its accumulator is returned: clear it to play the viewer sending what it holds)."""
    display, term, rend = make()
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    return display, term, rend, viewer, acc


def test_a_synchronized_update_is_shown_whole_when_it_ends() -> None:
    """While the program holds its update open, the rows it draws wait; its end shows
    them in one frame, at once."""
    display, term, rend, viewer, acc = waiting_viewer()
    term.open_update = 1
    term.pending.mark([0])
    display.changed()
    term.pending.mark([1])
    display.changed()
    CLOCK.advance(display.sync_timeout / 2)
    assert rend.rendered == [] and viewer.events == []
    term.open_update = 0
    term.pending.mark([2])
    display.changed()  # (the feed that ended the update)
    assert [d.rows for d in rend.rendered] == [{0, 1, 2}]
    assert viewer.events == ["update"]


def test_a_request_during_a_synchronized_update_is_answered_at_its_end() -> None:
    display, term, rend = make()
    viewer = RecordingViewer()
    display.attach(viewer).clear()
    term.open_update = 1
    term.pending.mark([0])
    display.requestUpdate(viewer)
    assert viewer.events == [] and rend.rendered == []
    term.open_update = 0
    display.changed()
    assert viewer.events == ["update"]


def test_a_synchronized_update_held_too_long_is_shown_and_holds_nothing_more() -> None:
    """A program that dies with the mode set: its frame comes at the timeout, and later
    output is not held while the mode stays set; the next update opened is held."""
    display, term, rend, viewer, acc = waiting_viewer()
    term.open_update = 1
    term.pending.mark([0])
    display.changed()
    CLOCK.advance(display.sync_timeout - 0.01)
    assert viewer.events == []
    CLOCK.advance(0.01)
    assert viewer.events == ["update"] and [d.rows for d in rend.rendered] == [{0}]

    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([1])
    CLOCK.advance(1)
    display.changed()
    assert viewer.events == ["update", "update"], "an expired hold holds nothing"

    term.open_update = 2  # (the program's next update; the display never saw the reset)
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([2])
    display.changed()
    CLOCK.advance(display.sync_timeout / 2)
    assert viewer.events == ["update", "update"], "a new update: held again"
    CLOCK.advance(display.sync_timeout / 2)
    assert viewer.events == ["update", "update", "update"]


def test_updates_opened_one_after_another_cannot_starve_the_viewers() -> None:
    """A program whose every read ends inside its next update (the display never sees the
    mode reset): a hold is timed from its start, not from each update, so a frame still
    comes every ``sync_timeout``."""
    display, term, rend, viewer, acc = waiting_viewer()
    step = display.sync_timeout / 4
    for update in range(1, 9):
        term.open_update = update
        term.pending.mark([update % 3])
        display.changed()
        CLOCK.advance(step)
        if viewer.events and acc:  # (the viewer sends what it was told of, then asks again)
            acc.clear()
            display.requestUpdate(viewer)
    CLOCK.advance(step / 10)  # (past the second hold's end, whatever the rounding)
    assert len(rend.rendered) == 2  # one frame per hold: at 4 steps and at 8


def test_an_update_opened_after_a_frame_was_timed_is_still_held() -> None:
    """A frame paced for later (output streams) and then an update opened: the paced
    frame does not show the half-drawn rows."""
    display, term, rend, viewer, acc = waiting_viewer()
    term.pending.mark_all()
    display.changed()  # a frame now; the next one paced ``stream_interval`` later
    assert viewer.events == ["update"]
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()  # (timed for the pace)
    term.open_update = 1
    term.pending.mark([1])
    display.changed()
    CLOCK.advance(display.stream_interval)
    assert viewer.events == ["update"], "held, not shown at the pace"
    term.open_update = 0
    display.changed()
    assert viewer.events == ["update", "update"]


def test_no_picture_is_taken_of_a_held_update() -> None:
    """A thumbnail or the API's PNG (``refresh`` from outside) during a held update
    renders nothing and gives no viewer the half-drawn rows."""
    display, term, rend, viewer, acc = waiting_viewer()
    term.open_update = 1
    term.pending.mark([0])
    assert display.refresh() is False
    assert rend.rendered == [] and not acc and viewer.events == []
    term.open_update = 0
    assert display.refresh() is True
    assert [d.rows for d in rend.rendered] == [{0}] and acc.rows == {0}
