"""The damage algebra: applying recorded damage to an old picture yields the new one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vncmux.console.damage import Damage, Scroll

LINES = 8


def apply_scroll(rows: list[str], top: int, bottom: int, count: int) -> list[str]:
    """What a scroll does to a screen: the region moves, exposed rows become blank."""
    out = list(rows)
    region = rows[top : bottom + 1]
    blank = ["~"] * min(abs(count), len(region))
    if count > 0:
        region = region[count:] + blank
    else:
        region = blank + region[: len(region) + count]
    out[top : bottom + 1] = region[: bottom - top + 1]
    return out


def catch_up(old: list[str], new: list[str], damage: Damage) -> list[str]:
    """What a viewer does with an update: CopyRect the survivors, then redraw dirty rows."""
    pic = list(old)
    if damage.scroll is not None:
        s = damage.scroll
        src, n = s.source_rows()
        block = old[src : src + n]
        dest = s.dest_top()
        pic[dest : dest + n] = block
    for r in damage.rows:
        pic[r] = new[r]
    return pic


ops = st.one_of(
    st.tuples(st.just("write"), st.integers(0, LINES - 1), st.text("abc", min_size=1, max_size=3)),
    st.tuples(
        st.just("scroll"),
        st.integers(0, LINES - 1),
        st.integers(0, LINES - 1),
        st.integers(-LINES - 1, LINES + 1),
    ),
)


def run(screen: list[str], op: tuple, damage: Damage) -> list[str]:
    if op[0] == "write":
        _, row, text = op
        screen = list(screen)
        screen[row] = text
        damage.mark([row])
        return screen
    _, a, b, count = op
    top, bottom = min(a, b), max(a, b)
    screen = apply_scroll(screen, top, bottom, count)
    damage.scrolled(top, bottom, count)
    return screen


@settings(max_examples=400, deadline=None)
@given(st.lists(ops, max_size=20))
def test_damage_brings_old_picture_up_to_date(sequence: list[tuple]) -> None:
    old = [f"r{i}" for i in range(LINES)]
    screen = list(old)
    damage = Damage(LINES)
    for op in sequence:
        screen = run(screen, op, damage)
    assert catch_up(old, screen, damage) == screen


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=12), st.lists(ops, max_size=12))
def test_merge_equals_recording_both(first: list[tuple], second: list[tuple]) -> None:
    old = [f"r{i}" for i in range(LINES)]
    screen = list(old)
    a, b = Damage(LINES), Damage(LINES)
    for op in first:
        screen = run(screen, op, a)
    for op in second:
        screen = run(screen, op, b)
    a.merge(b)
    assert catch_up(old, screen, a) == screen


def test_single_line_feed_is_one_scroll_and_one_row() -> None:
    d = Damage(24)
    d.scrolled(0, 23, 1)
    assert d.scroll == Scroll(0, 23, 1)
    assert d.rows == {23}


def test_scrolls_of_one_region_add_up() -> None:
    d = Damage(24)
    for _ in range(5):
        d.scrolled(0, 23, 1)
    assert d.scroll == Scroll(0, 23, 5)
    assert d.rows == set(range(19, 24))


def test_scrolling_a_whole_screen_away_is_a_full_redraw() -> None:
    d = Damage(24)
    for _ in range(24):
        d.scrolled(0, 23, 1)
    assert d.scroll is None
    assert d.rows == set(range(24))


def test_second_region_is_redrawn_not_copied() -> None:
    d = Damage(24)
    d.scrolled(0, 23, 1)
    d.scrolled(5, 10, 1)
    assert d.scroll == Scroll(0, 23, 1)
    assert set(range(5, 11)) <= d.rows


def test_bands_group_adjacent_rows() -> None:
    d = Damage(24)
    d.mark([1, 2, 3, 7, 9, 10])
    assert list(d.bands()) == [(1, 3), (7, 1), (9, 2)]
    assert not Damage(3)
    d.clear()
    assert not d


def test_scroll_of_a_wholly_dirty_region_keeps_the_rows_and_adds_up() -> None:
    d = Damage(24)
    d.mark([2, 3])
    d.scrolled(5, 10, 1)
    d.mark(range(5, 11))
    before = set(d.rows)
    for _ in range(3):
        d.scrolled(5, 10, 1)
    assert d.rows == before
    assert d.scroll == Scroll(5, 10, 4)
    d.scrolled(5, 10, 2)
    assert d.scroll is None
    assert d.rows == before


def test_rows_outside_the_region_stay_and_inside_ones_move() -> None:
    d = Damage(24)
    d.mark([1, 6, 7, 12])
    d.scrolled(5, 10, 2)
    assert d.rows == {1, 5, 9, 10, 12}  # (6 -> 4 leaves the region, 7 -> 5 stays)
    d = Damage(24)
    d.mark([5, 9])
    d.scrolled(5, 10, -2)
    assert d.rows == {5, 6, 7}


def test_marks_off_the_screen_are_dropped() -> None:
    d = Damage(4)
    d.mark(r for r in (-1, 0, 3, 4))
    d.mark({7, 2})
    d.mark(range(-2, 1))
    assert d.rows == {0, 2, 3}
