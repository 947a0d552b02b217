"""The shared, rendered console that VNC viewers pull frames from.

One ``Display`` sits between the terminal (what the device wrote) and every viewer.  It
renders terminal damage into one framebuffer image, once, whoever is watching, and folds the
same damage into a per-viewer accumulator.  Viewers *pull*: a viewer with a pending update
request is told when its accumulator holds something, and encodes from the shared image in
its own pixel format and encoding.  Nothing is queued per byte and no viewer can slow the
device or another viewer: an idle viewer's accumulator just keeps absorbing damage (it is a
set of rows and at most one scroll, so its size is bounded by the screen's).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from PIL import Image
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from vncmux.console.cells import Cell
from vncmux.console.damage import Damage
from vncmux.console.interfaces import IViewer
from vncmux.console.render import TerminalView
from vncmux.console.statusline import layout, status_cells

# A synchronized update held longer than this is shown as it stands (other terminals: 0.15
# to 1 s): it bounds how stale a viewer's picture gets.  A frame that takes longer to
# arrive (a large one over a slow serial line) is then shown in steps, as without the mode.
SYNC_TIMEOUT = 0.2


class TerminalLike(TerminalView, Protocol):
    """The part of ``vncmux.console.terminal.Terminal`` the display relies on (beyond
    what the renderer reads)."""

    @property
    def title(self) -> str: ...

    @property
    def open_update(self) -> int: ...

    def take_damage(self) -> Damage: ...

    def resize(self, cols: int, rows: int) -> None: ...


class RendererLike(Protocol):
    """The part of ``vncmux.console.render.Renderer`` the display relies on."""

    cell_width: int
    cell_height: int
    width: int
    height: int
    image: Image.Image

    def render(self, term: TerminalLike, damage: Damage) -> None: ...

    def render_all(self, term: TerminalLike) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]: ...

    def set_status_rows(self, count: int) -> None: ...

    def draw_status(self, cells: list[Cell]) -> None: ...


class Display:
    """The rendered console and its viewers' damage accounting.

    Promises: ``image`` equals the terminal's screen after ``refresh()``; each viewer's
    accumulator, applied to the picture that viewer last received, yields ``image``; a
    viewer that asked (``requestUpdate``) hears ``updateAvailable`` exactly once, as soon as
    there is something for it; bells reach the viewers at most once per frame interval
    (a run of them coalesces into one ring now and one when the interval ends); the crops
    kept for sharing never hold more than ``crop_frames`` frames' worth of pixels.  While
    output streams (the last frame scrolled or redrew most rows), frames begin at least
    ``stream_interval`` apart: what a viewer needs is the screen every few tens of
    milliseconds, not every line; otherwise (an echoed key) ``min_interval`` apart.
    While the program holds a synchronized update open (DEC mode 2026, ``open_update``)
    no frame is made, for at most ``sync_timeout`` seconds at a time: the viewers see the
    program's frame whole, never half drawn.  An update held longer (a program that died
    with the mode set) is shown as if it had ended, and holds nothing more; the next update
    the program opens is held again.

    With ``status_line`` the framebuffer has one more cell row below the terminal's, the
    status line (``set_status``): accumulators then have ``lines`` = rows + 1 and the
    status line is their last row, damaged when its text changes.
    """

    log = Logger()

    def __init__(
        self,
        terminal: TerminalLike,
        renderer: RendererLike,
        clock: IReactorTime,
        default_name: str = "vncmux",
        min_interval: float = 0.005,
        stream_interval: float = 0.04,
        timer: Callable[[], float] = time.perf_counter,
        busy: Callable[[], bool] = lambda: True,
        time_slice: float = 0.01,
        crop_frames: int = 4,
        status_line: bool = False,
        sync_timeout: float = SYNC_TIMEOUT,
    ) -> None:
        self.terminal = terminal
        self.renderer = renderer
        self._clock = clock
        self._default_name = default_name
        self._viewers: dict[IViewer, Damage] = {}
        self._waiting: set[IViewer] = set()
        self.min_interval = min_interval
        self.stream_interval = stream_interval
        self._streaming = False
        self._frame_begun = 0.0
        self._timer = timer
        self._busy = busy
        self._next_flush = 0.0
        self._flush_call: IDelayedCall | None = None
        self._flush_ends_hold = False  # ``_flush_call`` waits for a held update's end
        self.sync_timeout = sync_timeout
        self._hold_until: float | None = None  # frames held until then (None: no hold)
        self._overdue = 0  # the update held too long (``open_update``): it holds no more
        self._hold_logged = False
        self._ready: deque[IViewer] = deque()
        self._cost = 0.0
        self.time_slice = time_slice
        self.crop_frames = crop_frames
        self._crops: dict[tuple[int, int, int, int], Image.Image] = {}
        self._crop_bytes = 0
        #: Counts the images drawn: what a cache of a picture of the screen (the web
        #: thumbnails) compares to know whether the image changed.
        self.frame = 0
        self._bell_call: IDelayedCall | None = None
        self._next_bell = 0.0
        self.status_rows = 1 if status_line else 0
        self._status: tuple[str, str, bool] = ("", "", False)
        if status_line:
            renderer.set_status_rows(1)
        renderer.render_all(terminal)
        terminal.take_damage()

    # -- geometry and state viewers read -------------------------------------------------

    @property
    def width(self) -> int:
        return self.renderer.width

    @property
    def height(self) -> int:
        return self.renderer.height

    @property
    def cols(self) -> int:
        return self.terminal.cols

    @property
    def rows(self) -> int:
        return self.terminal.rows

    @property
    def lines(self) -> int:
        """Cell rows of the framebuffer: the terminal's, plus the status line if shown."""
        return self.terminal.rows + self.status_rows

    @property
    def cell_width(self) -> int:
        return self.renderer.cell_width

    @property
    def cell_height(self) -> int:
        return self.renderer.cell_height

    @property
    def image(self) -> Image.Image:
        return self.renderer.image

    @property
    def name(self) -> str:
        return self.terminal.title or self._default_name

    @property
    def viewers(self) -> tuple[IViewer, ...]:
        return tuple(self._viewers)

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return self.renderer.row_box(first_row, count)

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        """A copy of ``box`` of the current image, the *same object* for every viewer
        until the image changes: viewers asking for the same rows share one crop, and
        the encoders' shared work (``rfb.encodings.shared``) recognises it by identity."""
        found = self._crops.get(box)
        if found is None:
            found = self.renderer.image.crop(box)
            size = _pixel_bytes(found)
            budget = self.crop_budget
            # Oldest first out: many small requests (a viewer asking for every row apart)
            # cost a bounded amount of memory, whatever the console size.
            while self._crops and self._crop_bytes + size > budget:
                oldest = next(iter(self._crops))
                self._crop_bytes -= _pixel_bytes(self._crops.pop(oldest))
            self._crops[box] = found
            self._crop_bytes += size
        return found

    @property
    def crop_budget(self) -> int:
        """Bytes of pixels the crop cache may hold: ``crop_frames`` whole frames."""
        return self.crop_frames * _pixel_bytes(self.renderer.image)

    def _forget_crops(self) -> None:
        """The image changed: drop the crops of the old one, count a new frame."""
        self._crops = {}
        self._crop_bytes = 0
        self.frame += 1

    # -- viewers ---------------------------------------------------------------------------

    def attach(self, viewer: IViewer) -> Damage:
        """Register ``viewer``; its accumulator starts all dirty (it has seen nothing)."""
        acc = Damage(self.lines)
        acc.mark_all()
        self._viewers[viewer] = acc
        return acc

    def detach(self, viewer: IViewer) -> None:
        self._viewers.pop(viewer, None)
        self._waiting.discard(viewer)
        if viewer in self._ready:
            self._ready.remove(viewer)
        if (
            not self._waiting
            and not self._ready
            and self._flush_call is not None
            and self._flush_call.active()
        ):
            self._flush_call.cancel()
            self._flush_call = None

    def requestUpdate(self, viewer: IViewer) -> None:
        """``viewer`` has a request pending: answer now if its accumulator holds damage,
        else as soon as a refresh finds some (at most one refresh per frame interval)."""
        acc = self._viewers.get(viewer)
        if acc is None:
            return
        self._refresh_if_due()
        if acc:
            self._waiting.discard(viewer)
            viewer.updateAvailable()
            return
        self._waiting.add(viewer)
        self.changed()

    def _refresh_if_due(self) -> None:
        """Render pending terminal damage now unless a frame was made too recently (then
        the viewer is answered from the last frame and the next frame comes on time)."""
        if self._flush_call is not None or self._clock.seconds() < self._next_flush:
            return
        started = self._timer()
        if self.refresh():
            self._paced(self._timer() - started)

    def _paced(self, cost: float) -> None:
        """Set when the next frame may be made: ``min_interval`` after a small change (an
        echoed key: the next one may follow almost at once), ``stream_interval`` after the
        start of a frame that scrolled or redrew most of the screen (output streams: one
        frame per interval shows it as well as one per line, at a fraction of the rendering
        and encoding), and never sooner than the last frame took while the console is busy."""
        now = self._clock.seconds()
        pause = cost if self._busy() else 0.0
        self._next_flush = now + max(self.min_interval, pause)
        if self._streaming:  # counted from when the frame began: a steady frame rate
            self._next_flush = max(self._next_flush, self._frame_begun + self.stream_interval)

    def cancelRequest(self, viewer: IViewer) -> None:
        self._waiting.discard(viewer)

    # -- the console side --------------------------------------------------------------------

    def refresh(self) -> bool:
        """Render what the terminal changed since last time, and tell every accumulator.
        True when there was something to render.  Nothing is rendered while a synchronized
        update is held: every picture taken (a viewer's, a thumbnail, the API's PNG) shows
        the program's frames whole."""
        if self._held():
            return False
        damage = self.terminal.take_damage()
        if not damage:
            return False
        self._frame_begun = self._clock.seconds()
        self._streaming = damage.scroll is not None or 2 * len(damage.rows) > damage.lines
        self.renderer.render(self.terminal, damage)
        self._forget_crops()
        for acc in self._viewers.values():
            acc.merge(damage)
        return True

    def changed(self) -> None:
        """The terminal was fed (or a viewer is waiting).  Render only if somebody waits
        for a frame, and at most once per frame interval: the interval is at least
        ``min_interval``, and while the console has a backlog (``busy``: the device
        floods) at least as long as the last refresh-and-send took, so the device and
        the console always get at least half of the reactor, however many viewers there
        are.  Otherwise the damage stays in the terminal until a viewer asks.  While a
        synchronized update is held, the frame waits for its end (or its timeout)."""
        if not self._waiting:
            return
        held = self._held()
        if self._flush_call is not None:
            if held or not self._flush_ends_hold:
                return
            self._flush_call.cancel()  # the held update ended: its frame goes now
            self._flush_call = None
        now = self._clock.seconds()
        delay = self._next_flush - now
        if held and self._hold_until is not None:
            delay = max(delay, self._hold_until - now)
        self._flush_ends_hold = held
        if delay > 0:
            self._flush_call = self._clock.callLater(delay, self._flush)
        else:
            self._flush()

    def _held(self) -> bool:
        """True while frames are held back for the terminal's synchronized update (see
        the class docstring).  A hold lasts from the first call that sees an update open
        until a frame is made, at most ``sync_timeout``: a program whose every read ends
        inside its next update cannot starve the viewers, however often it opens one."""
        update = self.terminal.open_update
        if not update:
            self._hold_until = None
            return False
        if update == self._overdue:
            return False
        now = self._clock.seconds()
        if self._hold_until is None:
            self._hold_until = now + self.sync_timeout
        if now < self._hold_until:
            return True
        if not self._hold_logged:  # (once a console: a slow line's frames may do it often)
            self._hold_logged = True
            self.log.info(
                "Console: a synchronized update (mode 2026) stayed open over {t} s; showing"
                " it (and any later one held that long, without saying so again)",
                t=self.sync_timeout,
            )
        self._overdue = update
        self._hold_until = None
        return False

    def _flush(self) -> None:
        """Render once, then let the waiting viewers send, a time slice at a time."""
        self._flush_call = None
        self._flush_ends_hold = False
        if self._held():  # (set since this frame was timed: wait for the update's end)
            self.changed()
            return
        started = self._timer()
        rendered = self.refresh()
        # A refresh from outside (a thumbnail, the API's screen.png) may have rendered the
        # damage already: the waiting viewers it reached still get their frame.
        if not rendered and not any(self._viewers.get(v) for v in self._waiting):
            return  # nothing new: no frame was spent, the next change may go at once
        for viewer in list(self._waiting):
            acc = self._viewers.get(viewer)
            if acc:
                self._waiting.discard(viewer)
                self._ready.append(viewer)
        self._cost = 0.0
        self._send_ready(started)

    def _send_ready(self, started: float) -> None:
        """Viewers encode and send until the slice is used up; the rest continue in the
        next reactor turn, so reading the device interleaves with a hundred viewers."""
        while self._ready:
            viewer = self._ready.popleft()
            if self._viewers.get(viewer):
                viewer.updateAvailable()
            if self._ready and self._timer() - started > self.time_slice:
                self._cost += self._timer() - started
                self._flush_call = self._clock.callLater(0, self._continue)
                return
        self._cost += self._timer() - started
        self._paced(self._cost)
        if self._waiting:
            self.changed()  # requests that came in meanwhile: the terminal may have more

    def _continue(self) -> None:
        self._flush_call = None
        self._send_ready(self._timer())

    def resize(self, cols: int, rows: int) -> None:
        """Change the console's size; every viewer gets a full frame after the resize."""
        if (cols, rows) == (self.terminal.cols, self.terminal.rows):
            return
        self.terminal.resize(cols, rows)
        self.renderer.resize(cols, rows)
        self.renderer.render_all(self.terminal)
        self.terminal.take_damage()
        self._forget_crops()
        self._draw_status()
        for viewer, acc in list(self._viewers.items()):
            acc.lines = self.lines  # mutated, not replaced: the viewer holds this object
            acc.mark_all()
            viewer.sizeChanged(self.width, self.height)

    def set_status(self, left: str, right: str, notice: bool = False) -> None:
        """A new status line (``left`` and ``right`` parts laid out for the width;
        ``notice`` draws it highlighted): drawn now, and every viewer that waits for an
        update gets one.  Ignored without a status line."""
        if not self.status_rows or (left, right, notice) == self._status:
            return
        self._status = (left, right, notice)
        self._draw_status()
        row = self.terminal.rows
        for acc in self._viewers.values():
            acc.mark((row,))
        for viewer in list(self._waiting):
            self._waiting.discard(viewer)
            viewer.updateAvailable()

    @property
    def status_text(self) -> str | None:
        """The status line as drawn (None: not shown)."""
        if not self.status_rows:
            return None
        left, right, _notice = self._status
        return layout(left, right, self.terminal.cols)

    def _draw_status(self) -> None:
        if self.status_rows:
            text = self.status_text or ""
            self.renderer.draw_status(status_cells(text, self._status[2]))
            self._forget_crops()

    def with_status(self, image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
        """``image``, a viewer's own picture of ``box`` (left, top, right, bottom) drawn
        without a status line, with the part of ``box`` the status line covers pasted in
        from the shared image (``image`` is the viewer's own: changed in place)."""
        top = self.terminal.rows * self.renderer.cell_height
        if not self.status_rows or box[3] <= top:
            return image
        band = self.crop((box[0], max(top, box[1]), box[2], box[3]))
        image.paste(band, (0, max(top, box[1]) - box[1]))
        return image

    def bell(self) -> None:
        """The terminal rang: every viewer hears it now, unless a bell went out less than
        a frame interval ago; then one more ring follows when the interval ends, however
        many came meanwhile (1 MiB of BEL is two rings per interval, not a million)."""
        if self._bell_call is not None:
            return
        delay = self._next_bell - self._clock.seconds()
        if delay > 0:
            self._bell_call = self._clock.callLater(delay, self._ring)
        else:
            self._ring()

    def _ring(self) -> None:
        self._bell_call = None
        now = self._clock.seconds()
        # The frame interval: the minimum, or longer while frames are paced apart.
        self._next_bell = now + max(self.min_interval, self._next_flush - now)
        for viewer in list(self._viewers):
            viewer.bell()

    def titleChanged(self) -> None:
        """The terminal's title changed: every viewer hears the new desktop name."""
        for viewer in list(self._viewers):
            viewer.nameChanged(self.name)

    def close(self) -> None:
        """Cancel pending frames and bells (the console is going away)."""
        for call in (self._flush_call, self._bell_call):
            if call is not None and call.active():
                call.cancel()
        self._flush_call = self._bell_call = None
        self._ready.clear()
        self._waiting.clear()


def _pixel_bytes(image: Image.Image) -> int:
    """What an image's pixels cost in memory (Pillow keeps RGB in 4 bytes a pixel)."""
    return image.width * image.height * 4
