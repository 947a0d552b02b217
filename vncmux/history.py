"""The device's recent output, kept in memory and addressed by absolute byte offsets.

``OutputHistory`` is a bounded ring: whatever the device does, it holds at most ``size``
bytes (plus a bounded list of marks).  Offsets count every byte the device produced since
vncmux started, across device reconnects, so a reader that remembers an offset can ask for
"everything after it" later and learn exactly what it missed (or that part of it was
overwritten).  ``HistoryBackend`` feeds it from the hub and marks the device going up and
down.  Pure: no I/O, time comes from the clock it is given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from twisted.logger import Logger
from zope.interface import implementer

from vncmux.interfaces import IBackend

log = Logger()

DEVICE_UP = "up"
DEVICE_DOWN = "down"
MAX_MARKS = 1000

Subscriber = Callable[[int, bytes], None]


class Mark(NamedTuple):
    """Something that happened at a point of the output: ``offset`` is ``end`` then."""

    offset: int
    time: float
    event: str
    detail: str


class OutputHistory:
    """The last ``size`` bytes of output, each at its absolute offset.

    Promises:
      - ``end`` is the number of bytes ever appended; it never goes back;
      - ``start`` is the oldest offset still held: ``max(0, end - size)`` (``end`` when
        ``size`` is 0: nothing is held, offsets still advance);
      - memory is ``size`` bytes for the data (allocated as output arrives: up to 1/8
        more while it grows, exactly ``size`` once full), plus at most ``maxMarks`` marks;
      - every subscriber hears every append, after it is stored, with the offset of its
        first byte; one that raises is logged and unsubscribed, the others still hear it.
    """

    def __init__(self, size: int, clock: Callable[[], float], maxMarks: int = MAX_MARKS) -> None:
        if size < 0:
            raise ValueError(f"history size must be 0 or more, not {size}")
        self.size = size
        self._clock = clock
        self._buf = bytearray()  # grows to ``size``, then a ring: offset o is at o % size
        # a view of the full ring: assigning into it copies once (a bytearray slice
        # assignment from bytes copies the bytes into a temporary bytearray first)
        self._ring: memoryview | None = None
        self._end = 0
        self._marks: deque[Mark] = deque(maxlen=maxMarks)
        self._subscribers: list[Subscriber] = []

    @property
    def start(self) -> int:
        """The oldest offset still held."""
        return max(0, self._end - self.size)

    @property
    def end(self) -> int:
        """The offset just after the newest byte (the total appended so far)."""
        return self._end

    # -- writing ---------------------------------------------------------------------------

    def append(self, data: bytes) -> None:
        """Store ``data`` at ``end`` (overwriting the oldest bytes), then tell subscribers."""
        count = len(data)
        if not count:
            return
        offset = self._end
        size = self.size
        if size:
            pos = offset % size
            if self._ring is not None and count <= size - pos:
                self._ring[pos : pos + count] = data  # the usual case: one copy, no wrap
            else:
                self._store(memoryview(data))
        self._end = offset + count
        if self._subscribers:
            self._tell(offset, data)

    def _tell(self, offset: int, data: bytes) -> None:
        for callback in list(self._subscribers):
            try:
                callback(offset, data)
            except Exception:
                log.failure(
                    "History subscriber {callback} failed; unsubscribing it", callback=callback
                )
                self.unsubscribe(callback)

    def _store(self, data: memoryview) -> None:
        """The unusual cases: the buffer still growing, a wrap, a chunk over ``size``."""
        size = self.size
        first = self._end
        grow = min(len(data), size - len(self._buf))
        if grow > 0:  # still filling: the ring is the buffer as written so far
            self._buf += data[:grow]
            data = data[grow:]
            first += grow
            if len(self._buf) == size:  # full: drop the slack growing left (up to 1/8)
                self._buf = bytearray(self._buf)
                self._ring = memoryview(self._buf)
        if not data:
            return
        if len(data) > size:  # only the last ``size`` bytes survive
            first += len(data) - size
            data = data[-size:]
        assert self._ring is not None  # full by now
        pos = first % size
        head = min(len(data), size - pos)
        self._ring[pos : pos + head] = data[:head]
        if head < len(data):
            self._ring[: len(data) - head] = data[head:]

    def mark(self, event: str, detail: str = "") -> Mark:
        """Record ``event`` (``DEVICE_UP``, ``DEVICE_DOWN``...) at the current offset and
        time; the oldest mark goes once there are ``maxMarks``."""
        mark = Mark(self._end, self._clock(), event, detail)
        self._marks.append(mark)
        return mark

    # -- reading ---------------------------------------------------------------------------

    def read(self, from_: int, limit: int | None = None) -> tuple[int, bytes]:
        """The bytes from offset ``from_`` on (at most ``limit``), and the offset where they
        really start: ``start`` when ``from_`` was already overwritten.

        ``ValueError`` for a negative ``from_`` or one past ``end`` (the future)."""
        if from_ < 0:
            raise ValueError(f"offset {from_} is negative")
        if from_ > self._end:
            raise ValueError(f"offset {from_} is past the end of the output ({self._end})")
        if limit is not None and limit < 0:
            raise ValueError(f"limit {limit} is negative")
        first = max(from_, self.start)
        count = self._end - first
        if limit is not None:
            count = min(count, limit)
        return first, self._slice(first, count)

    def _slice(self, first: int, count: int) -> bytes:
        if count <= 0:
            return b""
        pos = first % self.size
        if self._ring is None:  # still growing: nothing wrapped yet
            return bytes(self._buf[pos : pos + count])
        head = min(count, self.size - pos)
        if head == count:
            return self._ring[pos : pos + count].tobytes()
        return b"".join((self._ring[pos:], self._ring[: count - head]))

    def tail(self, n: int) -> tuple[int, bytes]:
        """Up to the last ``n`` bytes, cut to start at a line boundary: just after the first
        newline in the window, unless the window already starts a line (at offset 0, or
        right after a held newline).  A window with no newline is returned whole."""
        if n < 0:
            raise ValueError(f"tail of {n} bytes")
        first = max(self.start, self._end - n)
        offset, data = self.read(first)
        if not data or offset == 0:
            return offset, data
        if offset > self.start and self._slice(offset - 1, 1) == b"\n":
            return offset, data
        newline = data.find(b"\n")
        if newline < 0:
            return offset, data
        return offset + newline + 1, data[newline + 1 :]

    def marks(self, from_: int = 0) -> list[Mark]:
        """The marks still kept whose offset is ``from_`` or later, oldest first."""
        return [m for m in self._marks if m.offset >= from_]

    # -- listeners -------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(offset, data)`` for every append from now on."""
        if callback not in self._subscribers:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)


@implementer(IBackend)
class HistoryBackend:
    """The hub backend that records the device's output into an ``OutputHistory``.

    Attached to the hub before any other backend, so a backend attached later can be given
    ``history.tail(n)`` in the same reactor turn and then the live stream: no gap, no
    duplicate.  Never blocks, never raises (``stallable = False``).  Marks ``DEVICE_UP`` and
    ``DEVICE_DOWN`` (detail: the hub's description) when the device's state changes, and
    the state found when attached.
    """

    stallable = False
    label = "history"

    def __init__(self, history: OutputHistory) -> None:
        self.history = history
        self._up: bool | None = None

    def write(self, data: bytes) -> None:
        self.history.append(data)

    def deviceStateChanged(self, up: bool, description: str) -> None:
        if up == self._up:
            return
        self._up = up
        self.history.mark(DEVICE_UP if up else DEVICE_DOWN, description)

    def stalled(self) -> None:
        """Never blocked, so never stalled."""


def replayer(history: OutputHistory, size: int) -> Callable[[], bytes] | None:
    """What a byte client with ``replay=size`` is sent on connect, before the live stream:
    the history's tail at a line boundary.  None when ``size`` is 0 (no replay)."""
    if size <= 0:
        return None
    return lambda: history.tail(size)[1]


__all__ = [
    "DEVICE_DOWN",
    "DEVICE_UP",
    "HistoryBackend",
    "Mark",
    "OutputHistory",
    "replayer",
]
