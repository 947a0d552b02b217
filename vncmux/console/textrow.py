"""A row scrolled off the top, kept the way the fast path wrote it.

The fast path writes a log line as one run of ASCII text with one attribute set.  When such
a row leaves the screen, a scrollback needs it kept, but nobody looks at it unless a viewer
scrolls back: building its 80 cells right away cost the console two thirds of its feed
rate.  A ``TextRow`` holds the text, the attribute set and the padding cell, and makes a
cell only when one is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload


class TextRow(Sequence[Any]):
    """``cols`` cells: ``attrs[ch]`` for each character of ``text`` from column 0, then
    ``base``.  Only for ASCII ``text`` (one cell a character, nothing wide to tidy)."""

    __slots__ = ("text", "attrs", "base", "cols")

    def __init__(self, text: str, attrs: Mapping[str, Any], base: Any, cols: int) -> None:
        self.text = text[:cols]
        self.attrs = attrs
        self.base = base
        self.cols = cols

    def __len__(self) -> int:
        return self.cols

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.cols))]
        if index < 0:
            index += self.cols
        if not 0 <= index < self.cols:
            raise IndexError(index)
        text = self.text
        return self.attrs[text[index]] if index < len(text) else self.base

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same cells (the differential tests compare the
        fast path's rows with the slow path's lists)."""
        if isinstance(other, (list, tuple, TextRow)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        return f"TextRow({self.text!r}, cols={self.cols})"

    def plain(self) -> str:
        """The row as text, trailing blanks removed (what ``row_text`` gives), without
        making a cell."""
        return (self.text + self.base.data * (self.cols - len(self.text))).rstrip()
