"""Update scheduling for one viewer: what the next FramebufferUpdate must hold (pure).

RFB updates are pulled: a FramebufferUpdateRequest is parked here (its region, whether it
was non-incremental) until there is something to answer it with.  The scheduler holds the
viewer's damage accumulator (shared with the console, which only adds to it), the damage
that fell outside earlier requests (held back, older than what the accumulator has), and
the pseudo-rectangles owed (a new size, ExtendedDesktopSize answers, a new name).
``take`` turns all that into an ``Update`` plan -- which pseudo-rectangles, a CopyRect for
the scroll, the rectangles to encode -- and forgets the request; the session encodes and
writes it.  No I/O, no encoding: geometry comes from the console's ``row_box``.

Promises: a plan is made only for a parked request; a non-incremental request is answered
at once with the whole requested area (rows and the margin no row covers); damage outside
the requested region is kept for a later request, never lost; repeated
ExtendedDesktopSize answers collapse, so a client that asks without reading cannot grow
the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vncmux.console.damage import Damage
from vncmux.rfb.rects import Rect, clip_rect, contains, intersects, subtract, union


class Geometry(Protocol):
    """What the scheduler reads of the console: its rows and where they are."""

    @property
    def rows(self) -> int: ...

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]: ...


@dataclass
class Update:
    """One FramebufferUpdate to send, in wire order: ``resize`` (the new framebuffer size
    to announce, and ``resize_reason``: who caused it, ExtendedDesktopSize's reason code:
    0 the server, 1 this viewer, 2 another viewer), ``ext_sizes`` (ExtendedDesktopSize
    (reason, status) answers), ``name`` (send the desktop name), ``copy`` (dx, dy, w, h,
    sx, sy: a CopyRect for the scroll), then ``rects`` to encode from the current frame."""

    resize: tuple[int, int] | None = None
    resize_reason: int = 0
    ext_sizes: list[tuple[int, int]] = field(default_factory=list)
    name: bool = False
    copy: tuple[int, int, int, int, int, int] | None = None
    rects: list[Rect] = field(default_factory=list)

    def __len__(self) -> int:
        """How many wire rectangles the pseudo and copy parts take (encoded rects may
        split further)."""
        return (
            (self.resize is not None)
            + len(self.ext_sizes)
            + self.name
            + (self.copy is not None)
            + len(self.rects)
        )


def bands(rows: set[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ``rows`` as (first, count), top to bottom."""
    d = Damage(0)
    d.rows = set(rows)
    return list(d.bands())


class UpdateScheduler:
    """The parked request and everything owed to one viewer (see the module docstring).

    ``width``/``height`` are the framebuffer size this viewer knows (changed only when a
    new size is announced).  ``copyrect`` and ``ext_desktop_size`` mirror what the viewer
    announced in SetEncodings."""

    def __init__(self, damage: Damage, geometry: Geometry, width: int, height: int) -> None:
        self.damage = damage
        self.geometry = geometry
        self.width = width
        self.height = height
        self.copyrect = False
        self.ext_desktop_size = False
        self.requested = False
        self._region: Rect | None = None
        self._force = False  # a non-incremental request is pending: answer now, all of it
        self._full: Rect | None = None  # area a non-incremental request asked for
        self._held: Damage | None = None  # damage outside the requested area, older
        self._pending_resize = False
        self._resize_reason = 0
        self._pending_eds: list[tuple[int, int]] = []
        self._pending_name = False

    # -- what the viewer asks and what happens to the console -----------------------------

    def request(self, incremental: bool, x: int, y: int, w: int, h: int) -> None:
        """Park a FramebufferUpdateRequest (regions of repeated requests add up)."""
        region = clip_rect(x, y, w, h, self.width, self.height)
        self.requested = True
        self._region = union(self._region, region)
        if not incremental:
            self._force = True
            self._full = union(self._full, region)
            self._held = None
            self.damage.mark_all()
            if self.ext_desktop_size:
                self.queueExtDesktopSize(0, 0)

    def queueExtDesktopSize(self, reason: int, status: int) -> None:
        """Owe an ExtendedDesktopSize; repeats collapse."""
        if (reason, status) not in self._pending_eds:
            self._pending_eds.append((reason, status))

    def nameChanged(self) -> None:
        self._pending_name = True

    def resized(self, rows: int, announce: bool, reason: int = 0) -> None:
        """The console has ``rows`` rows now: everything is dirty; with ``announce`` the
        next update tells the new size (and covers the whole new framebuffer), saying
        ``reason`` caused it (of several resizes before an update, the last one's)."""
        self._held = None
        if self.damage.lines != rows:
            self.damage.lines = rows
        self.damage.mark_all()
        if announce:
            if self._pending_resize and self._resize_reason == 1 and reason != 1:
                # This viewer's own request is not answered yet: it keeps its answer.
                self.queueExtDesktopSize(1, 0)
            self._pending_resize = True
            self._resize_reason = reason

    def ready(self) -> bool:
        """True when the parked request can be answered without waiting for new damage."""
        return self.requested and (
            self._force
            or self._pending_resize
            or bool(self._pending_eds)
            or self._pending_name
            or bool(self._held)
        )

    # -- building the update ------------------------------------------------------------------

    def take(self, width: int, height: int) -> Update | None:
        """The update answering the parked request, or None if it would be empty (the
        request stays parked).  ``width``×``height`` is the console's size now, announced
        if a resize is owed.  What is sent leaves the accumulator; what lies outside the
        request is held for later."""
        work = self._held if self._held is not None else Damage(self.damage.lines)
        self._held = None
        work.merge(self.damage)
        self.damage.clear()
        update = Update()
        force, full = self._force, self._full
        if self._pending_resize:
            self._pending_resize = False
            self.width, self.height = width, height
            update.resize = (width, height)
            update.resize_reason = reason = self._resize_reason
            if self.ext_desktop_size:  # the announcement answers these already
                done = ((0, 0), (reason, 0))
                self._pending_eds = [e for e in self._pending_eds if e not in done]
            force = True
            full = (0, 0, width, height)
            self._region = full
            work.mark_all()
        update.ext_sizes, self._pending_eds = self._pending_eds, []
        update.name, self._pending_name = self._pending_name, False
        region = self._region
        if region is not None:
            self._rows(work, region, update)
            if force and full is not None:
                update.rects.extend(self._margins(full))
        if work:
            self._held = work
        if not len(update) and not force:
            return None
        self.requested = False
        self._region = self._full = None
        self._force = False
        return update

    def _rows(self, work: Damage, region: Rect, update: Update) -> None:
        """CopyRect for the scroll and the dirty row bands inside ``region``; what is
        planned is removed from ``work``."""
        geo = self.geometry
        scroll = work.scroll
        if scroll is not None:
            work.scroll = None
            box = geo.row_box(scroll.top, scroll.height)
            covered = set(range(scroll.top, scroll.bottom + 1)) <= work.rows
            fb = (0, 0, self.width, self.height)
            if self.copyrect and not covered and contains(region, box) and contains(fb, box):
                src_first, count = scroll.source_rows()
                sx, sy, _sw, _sh = geo.row_box(src_first, count)
                dx, dy, dw, dh = geo.row_box(scroll.dest_top(), count)
                update.copy = (dx, dy, dw, dh, sx, sy)
            else:
                work.mark(range(scroll.top, scroll.bottom + 1))
        if contains(region, geo.row_box(0, work.lines)):
            send = set(work.rows)  # the usual whole-screen request: no per-row test
        else:
            send = {r for r in work.rows if intersects(geo.row_box(r, 1), region)}
        work.rows -= send
        for first, count in bands(send):
            clipped = clip_rect(*geo.row_box(first, count), self.width, self.height)
            if clipped is not None:
                update.rects.append(clipped)

    def _margins(self, full: Rect) -> list[Rect]:
        """Parts of a non-incremental request that no character row covers."""
        rows = self.damage.lines  # every cell row: the terminal's and any status line
        pieces = [full] if rows <= 0 else subtract(full, self.geometry.row_box(0, rows))
        out = []
        for piece in pieces:
            clipped = clip_rect(*piece, self.width, self.height)
            if clipped is not None:
                out.append(clipped)
        return out
