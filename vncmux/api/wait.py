"""``/wait``: answer when a pattern shows up on the screen or in the output.

Event-driven, so idle waiters cost nothing: ``ScreenWatch`` listens to the console only
while somebody waits and, on a ``changed`` (at most every ``CHECK_INTERVAL`` while the
screen keeps changing, and always after the last change), reads the screen text once for
all its waiters; ``OutputWatch`` subscribes to the output history only while somebody waits and
searches the new output, per waiter, from a little before where its last search ended.
Nothing polls.  Each wait is a ``Deferred`` that fires with the match (a dict), fails with
``WaitTimeout`` after its timeout, and forgets everything when cancelled (the HTTP client
went away).

Patterns are RE2 regular expressions compiled by ``pattern.compile_pattern``, with ``^``
and ``$`` matching at every row or line.  A screen pattern sees the screen's rows joined
with newlines; an output pattern sees the raw bytes (the pattern is taken as UTF-8); a match
of up to ``OUTPUT_SPAN`` bytes is always found, a longer one may not be.

RE2 searches in time linear in the text, but linear is not small: over a backlog of many
MiB, at up to some microseconds a byte for the costliest pattern accepted, one search would
hold the process for seconds.  So no output search covers more than ``OUTPUT_SPAN +
OUTPUT_STEP`` bytes (a large chunk or a backlog read from the history is searched a step at
a time: microseconds each for a common pattern, some tens of milliseconds at worst), and
output searches stop for the turn after ``SEARCH_SLICE`` seconds and go on at the next
reactor turn, waiters in turn: many waits catching up on a large history share the process
with the consoles, viewers and the device instead of holding it.  A wait left further behind
than the history holds goes on from the oldest output still held.  The screen is searched
whole, once per check: its text is no larger than the screen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.api.pattern import Match, Pattern
from vncmux.api.screen import match_position
from vncmux.console.interfaces import IConsoleListener

log = Logger()

#: Longest output match always found, in bytes: new output is searched from this far back.
OUTPUT_SPAN = 4096
#: Most new output one search takes in: a search covers at most ``OUTPUT_SPAN +
#: OUTPUT_STEP`` bytes, however large the chunk that arrived or the backlog to search.
OUTPUT_STEP = 2048
#: Seconds of output searching in one reactor turn, at least one step; the rest waits for
#: the next turn.
SEARCH_SLICE = 0.01
#: Seconds between two readings of a screen that keeps changing (see ``ScreenWatch``).
CHECK_INTERVAL = 0.02
#: Longest timeout accepted, in seconds.
MAX_TIMEOUT = 3600.0

Result = dict[str, Any]


class WaitTimeout(Exception):
    """The pattern did not show up in time."""


def _decoded(found: str | bytes | bytearray) -> str:
    return found if isinstance(found, str) else found.decode("utf-8", "replace")


def _groups(match: Match) -> list[str | None]:
    return [None if g is None else _decoded(g) for g in match.groups()]


class _Waiter:
    """One pending wait: its Deferred and its timer."""

    def __init__(self, forget: Callable[[_Waiter], None]) -> None:
        self.deferred: Deferred[Result] = Deferred(lambda _d: forget(self))
        self.timer: IDelayedCall | None = None

    def fire(self, result: Result) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.deferred.callback(result)


class _Watch:
    """What both watches share: the waiter list and the timeouts."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._waiters: list[Any] = []

    @property
    def waiting(self) -> int:
        """How many waits are pending."""
        return len(self._waiters)

    def _add(self, waiter: Any, timeout: float) -> None:
        if not self._waiters:
            self._start()
        self._waiters.append(waiter)
        waiter.timer = self._clock.callLater(timeout, self._timedOut, waiter)

    def _forget(self, waiter: Any) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()
            if not self._waiters:
                self._stop()

    def _timedOut(self, waiter: Any) -> None:
        waiter.timer = None
        if waiter in self._waiters:
            self._forget(waiter)
            waiter.deferred.errback(WaitTimeout())

    def _matched(self, waiter: Any, result: Result) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._stop()
        waiter.fire(result)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError


class _ScreenWaiter(_Waiter):
    def __init__(self, forget: Callable[[_Waiter], None], regex: Pattern) -> None:
        super().__init__(forget)
        self.regex = regex


@implementer(IConsoleListener)
class ScreenWatch(_Watch):
    """Waits for patterns on one console's screen (see the module docstring).

    The screen is read again on a change, but at most once per ``CHECK_INTERVAL`` while it
    keeps changing (a flood changes it on every reactor turn), and always after the last
    change: a screen that settles is always checked, one that lasted less than the
    interval in the middle of a flood may not be (no viewer saw it either: frames are
    paced too).  ``offset`` is called for the output offset the screen reflects,
    reported with a match.
    """

    #: This listener ignores ``scrolledOff``: a console may skip making text of the rows
    #: for it (it costs a flood about a third of its speed).
    wantsScrolledOff = False

    def __init__(
        self, console: Any, clock: IReactorTime, offset: Callable[[], int | None] = lambda: None
    ) -> None:
        super().__init__(clock)
        self._console = console
        self._offset = offset
        self._lastCheck = float("-inf")
        self._later: IDelayedCall | None = None

    def wait(self, regex: Pattern, timeout: float) -> Deferred[Result]:
        """Fires with ``{"match", "groups", "row", "col", "offset"}`` as soon as ``regex``
        matches the screen (at once if it does now)."""
        text = self._text()
        found = self._search(regex, text)
        if found is not None:
            return succeed(found)
        waiter = _ScreenWaiter(self._forget, regex)
        self._add(waiter, timeout)
        return waiter.deferred

    def _text(self) -> str:
        return "\n".join(self._console.text())

    def _search(self, regex: Pattern, text: str) -> Result | None:
        match = regex.search(text)
        if match is None:
            return None
        row, col = match_position(text, match.start())
        return {
            "match": match.group(0),
            "groups": _groups(match),
            "row": row,
            "col": col,
            "offset": self._offset(),
        }

    def _start(self) -> None:
        self._console.subscribe(self)

    def _stop(self) -> None:
        self._console.unsubscribe(self)
        if self._later is not None and self._later.active():
            self._later.cancel()
        self._later = None

    def _check(self) -> None:
        self._later = None
        self._lastCheck = self._clock.seconds()
        text = self._text()
        for waiter in list(self._waiters):
            found = self._search(waiter.regex, text)
            if found is not None:
                self._matched(waiter, found)

    # -- IConsoleListener

    def changed(self) -> None:
        if self._later is not None:
            return  # a check is due soon; it will read the screen as it is then
        wait = self._lastCheck + CHECK_INTERVAL - self._clock.seconds()
        if wait <= 0:
            self._check()
        else:
            self._later = self._clock.callLater(wait, self._check)

    def bell(self) -> None:
        pass

    def titleChanged(self, title: str) -> None:
        pass

    def scrolledOff(self, lines: list[str]) -> None:
        pass


class _OutputWaiter(_Waiter):
    """One output wait: the output searched so far ends at ``end``; ``buffer`` holds its last
    bytes (at most ``OUTPUT_SPAN`` between searches), where a match may yet begin."""

    def __init__(self, forget: Callable[[_Waiter], None], regex: Pattern, start: int) -> None:
        super().__init__(forget)
        self.regex = regex
        self.base = start
        self.buffer = bytearray()

    @property
    def end(self) -> int:
        """The offset just after the output searched so far."""
        return self.base + len(self.buffer)

    def skip(self, offset: int) -> None:
        """What came before ``offset`` is gone unsearched: go on from there."""
        self.base, self.buffer = offset, bytearray()

    def search(self, offset: int, data: bytes) -> Result | None:
        """Take ``data`` (at most ``OUTPUT_STEP`` bytes) at ``offset`` (``end``, or later
        after a gap); the match if one now exists."""
        if offset != self.end:
            self.skip(offset)
        pos = max(0, len(self.buffer) - OUTPUT_SPAN)
        self.buffer += data
        match = self.regex.search(self.buffer, pos)
        if match is not None:
            return {
                "match": _decoded(match.group(0)),
                "groups": _groups(match),
                "offset": self.base + match.start(),
                "end": self.base + match.end(),
            }
        drop = len(self.buffer) - OUTPUT_SPAN
        if drop > 0:
            del self.buffer[:drop]
            self.base += drop
        return None


Chunk = tuple[int, bytes]
_NO_CHUNK: Chunk = (0, b"")


class OutputWatch(_Watch):
    """Waits for patterns in one output history (see the module docstring).

    Each waiter searches the output after its ``end`` a step (``OUTPUT_STEP`` bytes) at a
    time: from the chunk that just arrived when it holds that output (a history of size 0
    holds nothing), otherwise from the history.  One turn takes steps, waiter after waiter,
    until every waiter has caught up or ``SEARCH_SLICE`` seconds (of ``timer``) have gone;
    then the turn ends and the rest goes on at the next reactor turn, the waiters left over
    first."""

    def __init__(
        self, history: Any, clock: IReactorTime, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(clock)
        self._history = history
        self._timer = timer
        self._resume: IDelayedCall | None = None

    def wait(self, regex: Pattern, from_: int, timeout: float) -> Deferred[Result]:
        """Fires with ``{"match", "groups", "offset", "end"}`` (byte offsets of the match)
        once ``regex`` matches the output from ``from_`` on (what is still held of it).
        ``ValueError`` when ``from_`` is in the future."""
        start, _ = self._history.read(from_, 0)
        waiter = _OutputWaiter(self._forget, regex, start)
        queue = [waiter]
        found = self._catchUp(queue, _NO_CHUNK)
        if found:
            return succeed(found[0][1])
        self._add(waiter, timeout)
        if waiter.end < self._history.end:
            self._later()
        return waiter.deferred

    def _start(self) -> None:
        self._history.subscribe(self._append)

    def _stop(self) -> None:
        self._history.unsubscribe(self._append)
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None

    def _append(self, offset: int, data: bytes) -> None:
        self._turn((offset, data))

    def _resumed(self) -> None:
        self._resume = None
        self._turn(_NO_CHUNK)

    def _later(self) -> None:
        if self._resume is None:
            self._resume = self._clock.callLater(0, self._resumed)

    def _turn(self, chunk: Chunk) -> None:
        queue = [w for w in self._waiters if w.end < self._history.end]
        for waiter, result in self._catchUp(queue, chunk):
            self._matched(waiter, result)
        left = [w for w in queue if w in self._waiters]  # in the order they go on
        if left:
            self._waiters = left + [w for w in self._waiters if w not in left]
            self._later()

    def _catchUp(
        self, queue: list[_OutputWaiter], chunk: Chunk
    ) -> list[tuple[_OutputWaiter, Result]]:
        """Steps for the waiters in ``queue``, in turn, until each has matched or caught up
        or the slice is over; the matches found.  ``queue`` is left with the waiters still
        behind, those that waited longest first."""
        deadline = self._timer() + SEARCH_SLICE
        found: list[tuple[_OutputWaiter, Result]] = []
        steps = 0
        while queue and (not steps or self._timer() < deadline):
            waiter = queue.pop(0)
            steps += 1
            result = self._step(waiter, chunk)
            if result is not None:
                found.append((waiter, result))
            elif waiter.end < self._history.end:
                queue.append(waiter)
        return found

    def _step(self, waiter: _OutputWaiter, chunk: Chunk) -> Result | None:
        end = waiter.end
        offset, data = chunk
        if offset <= end < offset + len(data):
            return waiter.search(end, data[end - offset : end - offset + OUTPUT_STEP])
        start, piece = self._history.read(end, OUTPUT_STEP)
        if piece:
            return waiter.search(start, piece)
        if end < offset:  # gone from the history, the chunk goes on later: from there
            return waiter.search(offset, data[:OUTPUT_STEP])
        waiter.skip(self._history.end)  # a history that holds nothing, between chunks
        return None
