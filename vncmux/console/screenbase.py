"""The typed face of the emulated screen that its parts (mixins) share.

:class:`~vncmux.console.screen.TermScreen` is pyte's ``Screen`` plus mixins, one module
each (editing, reports, modes).  For the type checker each mixin derives from
:class:`ScreenBase`, which declares what the screen provides; at run time it is ``object``,
so the mixins add nothing but their methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections import defaultdict

    from pyte.screens import Cursor, Savepoint, Screen, StaticDefaultDict

    from vncmux.console.cells import Cell
    from vncmux.console.interfaces import ITerminalEvents
    from vncmux.console.modes import Modes

    class CellCursor(Cursor):
        attrs: Cell  # type: ignore[assignment]

    Box = tuple[int, int, int, int]

    class ScreenBase(Screen):
        """What every part of the screen may use (implemented by TermScreen and its mixins)."""

        buffer: defaultdict[int, StaticDefaultDict[int, Cell]]  # type: ignore[assignment]
        cursor: CellCursor  # type: ignore[assignment]
        events: ITerminalEvents
        modes: Modes
        title: str
        last_char: str
        in_alt: bool
        reverse_screen: bool
        declrmm: bool
        lr_margins: tuple[int, int] | None
        lr_wrap_at: tuple[int, int] | None
        reverse_wrap: bool
        iso_protection: bool
        protection_used: bool
        conformance: int
        cursor_style: int
        attr_change_extent: int
        title_hex: list[bool]
        sync_updates: int
        other_modes: dict[tuple[bool, int], bool]
        saved_modes: dict[int, bool]
        _saved: dict[bool, Savepoint]
        _alt_saved: Savepoint | None
        _main_buffer: defaultdict[int, StaticDefaultDict[int, Cell]] | None
        _alt_store: defaultdict[int, StaticDefaultDict[int, Cell]] | None

        @property
        def default_char(self) -> Cell: ...  # type: ignore[override]
        def _erase_cell(self) -> Cell: ...
        def _savepoint(self) -> Savepoint: ...
        def _restore(self, sp: Savepoint) -> None: ...
        def scroll_region(
            self, top: int, bottom: int, count: int, scrolls_off: bool = False
        ) -> None: ...
        def set_title(self, param: str) -> None: ...
        def lr_region(self) -> tuple[int, int] | None: ...
        def set_lrmm(self, on: bool) -> None: ...
        def _x(self) -> int: ...
        def rect_bounds(self, params: list[int] | tuple[int, ...]) -> Box | None: ...
        def mode_state(self, mode: int, private: bool) -> int: ...
        def note_mode(self, mode: int, private: bool, on: bool) -> None: ...
else:
    ScreenBase = object

__all__ = ["ScreenBase"]
