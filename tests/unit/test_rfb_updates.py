"""Update scheduling without a transport: the parked request, held damage, owed
pseudo-rectangles, and the plan ``take`` makes of them."""

from __future__ import annotations

from vncmux.console.damage import Damage
from vncmux.rfb.updates import UpdateScheduler, bands


class Geometry:
    """Rows of 16 pixels over the whole 80-pixel width, plus ``margin`` pixels below."""

    def __init__(self, rows: int = 4) -> None:
        self.rows = rows

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return (0, first_row * 16, 80, count * 16)


def make(rows: int = 4, margin: int = 0) -> tuple[UpdateScheduler, Damage]:
    damage = Damage(rows)
    damage.mark_all()
    return UpdateScheduler(damage, Geometry(rows), 80, rows * 16 + margin), damage


def test_bands() -> None:
    assert bands({0, 1, 3, 5, 6, 7}) == [(0, 2), (3, 1), (5, 3)]
    assert bands(set()) == []


def test_nothing_without_a_request_and_incremental_waits() -> None:
    s, damage = make()
    assert not s.requested and not s.ready()
    damage.clear()
    s.request(True, 0, 0, 80, 64)
    assert s.requested and not s.ready()
    assert s.take(80, 64) is None and s.requested  # empty: the request stays parked
    damage.mark([2])
    update = s.take(80, 64)
    assert update is not None and update.rects == [(0, 32, 80, 16)]
    assert not s.requested and not damage


def test_non_incremental_is_whole_area_with_margin() -> None:
    s, damage = make(margin=5)
    damage.clear()
    s.request(False, 0, 0, 80, 69)
    assert s.ready()
    update = s.take(80, 69)
    assert update is not None
    assert update.rects == [(0, 0, 80, 64), (0, 64, 80, 5)]


def test_damage_outside_the_request_is_held_for_later() -> None:
    s, damage = make()
    damage.clear()
    s.request(True, 0, 0, 80, 16)
    damage.mark([3])
    assert s.take(80, 64) is None
    assert not damage  # moved into the held damage
    s.request(True, 0, 0, 80, 64)
    assert s.ready()  # held damage answers a wider request at once
    update = s.take(80, 64)
    assert update is not None and update.rects == [(0, 48, 80, 16)]


def test_scroll_becomes_copyrect_only_when_announced() -> None:
    for copyrect, expected in ((True, (0, 0, 80, 48, 0, 16)), (False, None)):
        s, damage = make()
        s.copyrect = copyrect
        damage.clear()
        damage.scrolled(0, 3, 1)
        damage.mark([3])
        s.request(True, 0, 0, 80, 64)
        update = s.take(80, 64)
        assert update is not None and update.copy == expected
        assert update.rects == ([(0, 48, 80, 16)] if copyrect else [(0, 0, 80, 64)])


def test_overflowing_request_is_clipped() -> None:
    s, damage = make()
    s.request(False, 10, 20, 65535, 65535)
    update = s.take(80, 64)
    assert update is not None
    assert all(x + w <= 80 and y + h <= 64 for x, y, w, h in update.rects)


def test_pseudo_rectangles_owed_and_collapsed() -> None:
    s, damage = make()
    s.ext_desktop_size = True
    damage.clear()
    for _ in range(100):
        s.queueExtDesktopSize(1, 1)
    s.nameChanged()
    assert not s.ready()  # nothing is sent unasked
    s.request(True, 0, 0, 80, 64)
    assert s.ready()
    update = s.take(80, 64)
    assert update is not None
    assert update.ext_sizes == [(1, 1)] and update.name and update.rects == []


def test_resize_announced_covers_the_new_framebuffer() -> None:
    s, damage = make()
    s.ext_desktop_size = True
    s.request(False, 0, 0, 80, 64)  # also owes ExtendedDesktopSize (0, 0)
    s.take(80, 64)
    s.request(True, 0, 0, 80, 64)
    s.geometry = Geometry(5)  # the console grew a row: 80x80
    s.resized(5, announce=True)
    assert damage.lines == 5
    update = s.take(80, 80)
    assert update is not None
    assert update.resize == (80, 80) and (s.width, s.height) == (80, 80)
    assert update.ext_sizes == []  # the resize rectangle is the (0, 0) answer
    assert update.rects == [(0, 0, 80, 80)]


def test_resize_unannounced_keeps_the_old_size() -> None:
    s, damage = make()
    s.resized(5, announce=False)
    s.request(True, 0, 0, 96, 80)
    update = s.take(96, 80)
    assert update is not None and update.resize is None and (s.width, s.height) == (80, 64)
    assert all(y + h <= 64 for _x, y, _w, h in update.rects)
