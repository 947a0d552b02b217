"""The compiled token loop (``_fastloop_c/``) against its Python reference, where the two
are not already run side by side by ``test_fastpath`` (which runs every differential test
on both loops): its scanner token for token against the pattern, and its row builder
against the Python one.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import pytest
from pyte.screens import StaticDefaultDict

from vncmux.console import compiled
from vncmux.console.cells import DEFAULT_CELL
from vncmux.console.fastrows import Attrs
from vncmux.console.fasttokens import TOKEN
from vncmux.console.terminal import Terminal

LOOP: Any = compiled.LOOP
pytestmark = pytest.mark.skipif(
    LOOP is None, reason="the compiled token loop was not built (no C compiler at install time?)"
)

# The groups each kind of token reports (the pattern's groups that kind takes part in).
GROUPS = {
    1: (1,),
    2: (1, 2),
    4: (3, 4),
    6: (5, 6),
    7: (5, 7),
    8: (5, 8),
    9: (5, 9),
    10: (5, 10),
    11: (11,),
    13: (12, 13),
    17: (14, 15, 16, 17),
    18: (18,),
    19: (19,),
    20: (20,),
    21: (21,),
    22: (22,),
    23: (23,),
}

# Pieces that make every kind of token, and near misses of each: split sequences, wrong
# finals, the characters just outside each class.
PIECES = (
    ["\x1b", "[", "(", ")", "?", "25", "m", "H", "r", ";", ":", "1", "9", "0", "B", "P", "X"]
    + ["h", "l", "K", "J", "f", "b", "@", "t", "Z", "`", "d", "Q", "7", "8", "D", "E", "M"]
    + ["=", ">", "\r", "\n", "\x0b", "\x0c", "\x07", "\x08", "\t", "\x0e", "\x0f", "\x00"]
    + ["\x1a", "\x1c", "\x1f", "\x7f", "\x80", "\x9b", "\x9f", "\xa0", "a", "é", "中", "😀"]
)


def expected(text: str, pos: int) -> Any:
    m = TOKEN.match(text, pos)
    if m is None:
        return None
    k = m.lastindex
    assert k is not None
    return (k, m.end(), [(g, *m.span(g)) for g in GROUPS[k]])


def test_scanner_agrees_with_the_pattern_on_random_text() -> None:
    rng = random.Random(14)
    for _ in range(6000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 16)))
        for pos in range(len(text) + 1):
            assert LOOP.scan(text, pos) == expected(text, pos), (text, pos)


def test_scanner_agrees_with_the_pattern_on_recorded_programs() -> None:
    """At every position of the five recorded traces (not only token starts)."""
    for trace in sorted(Path(__file__).parents[2].joinpath("bench", "traces").glob("*.gz")):
        text = gzip.decompress(trace.read_bytes()).decode("utf-8", "replace")[:20000]
        for pos in range(len(text)):
            assert LOOP.scan(text, pos) == expected(text, pos), (trace.name, pos)


def random_row(rng: random.Random, cols: int, n: int, attrs: list[Attrs]) -> list[Any]:
    base: Any = rng.choice([DEFAULT_CELL, StaticDefaultDict(DEFAULT_CELL)])
    if isinstance(base, dict):
        base.update({x: attrs[0][rng.choice("xyz")] for x in rng.sample(range(cols), 5)})
    row = [base]
    for _ in range(n):
        x = rng.randrange(cols)
        text = "".join(rng.choice("ab─│ ") for _ in range(rng.randint(1, cols - x)))
        row.append((x, text, rng.choice(attrs)))
    return row


def test_rows_build_as_the_python_builder_builds_them() -> None:
    """The same line, keys in the same order, for rows of few operations (written in turn)
    and many (laid out, later ones over earlier ones), over a fresh or a stored line."""
    rng = random.Random(7)
    attrs = [Attrs(DEFAULT_CELL._replace(fg=fg)) for fg in ("red", "green", "default")]
    python = Terminal(12, 3)._parser.fast
    assert python is not None
    python.compiled = None
    for n in [1, 2, 4, 5, 8, 40, 100] * 30:
        row = random_row(rng, 12, n, attrs)
        base = row[0]
        if isinstance(base, StaticDefaultDict):
            base = StaticDefaultDict(base.default)
            base.update(row[0])
        copy = [base, *row[1:]]
        got = LOOP.build(12, StaticDefaultDict, row)
        want = python._build(copy)
        assert list(got.items()) == list(want.items())
        assert isinstance(got, StaticDefaultDict) and type(want) is StaticDefaultDict
        assert got.default == want.default


def test_an_operation_past_the_last_column_is_left_to_python() -> None:
    attrs = Attrs(DEFAULT_CELL)
    row = [DEFAULT_CELL] + [(0, "ab", attrs)] * 6 + [(3, "xyz", attrs)]
    assert LOOP.build(4, StaticDefaultDict, row) is None
    python = Terminal(4, 1)._parser.fast
    assert python is not None
    built = python._build(row)  # (compiled first, then Python's: a list that grows)
    assert "".join(built[x].data for x in range(6)) == "ab xyz"


class Meddling(dict[str, Any]):
    """Cells whose lookups change the row being built (no real caller does: the builder
    must still read only what it was given)."""

    runs: dict[str, Any] = {}

    def __init__(self, row: list[Any], meddle: Any) -> None:
        super().__init__()
        self.row, self.meddle = row, meddle

    def run(self, text: str) -> tuple[Any, ...]:
        self.meddle(self.row)
        return tuple(DEFAULT_CELL._replace(data=c) for c in text)

    def __missing__(self, ch: str) -> Any:
        self.meddle(self.row)
        return DEFAULT_CELL._replace(data=ch)


def test_a_row_changed_while_it_is_built_is_built_as_it_was() -> None:
    """The builder works on a snapshot of the row's operations: Python code it calls (a
    cell cache's lookups) cannot make it read past its buffer or a shrunk list."""
    attrs = Attrs(DEFAULT_CELL)
    many: list[Any] = [DEFAULT_CELL] + [(0, "ab", attrs)] * 6

    def far(row: list[Any]) -> None:
        row[1:7] = [(1 << 30, "abcdef", attrs)] * 6

    many[6] = (0, "zz", Meddling(many, far))
    built = LOOP.build(4, StaticDefaultDict, many)
    assert "".join(built[x].data for x in range(4)) == "zz  "
    few: list[Any] = [DEFAULT_CELL, None, (1, "b", attrs), (2, "c", attrs)]
    few[1] = (0, "a", Meddling(few, list.clear))
    built = LOOP.build(8, StaticDefaultDict, few)
    assert "".join(built[x].data for x in range(4)) == "abc "
