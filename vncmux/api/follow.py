"""``GET /output?follow=1``: the output from an offset, then new output as it comes.

One ``OutputFollower`` per streaming response.  It is a cursor over the output history,
not a hub backend: a slow reader never holds the device up.  While the HTTP transport's
buffer is full Twisted pauses it (``IPushProducer``) and it stops writing; when resumed it
reads what it missed from the history.  If the reader fell so far behind that the history
no longer holds the next byte, the response ends (logged): the reader reconnects with
``from=`` and the ``X-Output-Start`` header tells it exactly what was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()

#: Bytes read from the history per write while catching up.
CATCH_UP_CHUNK = 64 * 1024


@implementer(IPushProducer)
class OutputFollower:
    """Streams ``history`` to ``request`` from offset ``from_`` until either side ends.
    ``done`` is called once, when it stops for any reason."""

    def __init__(
        self,
        history: Any,
        request: Any,
        from_: int,
        peer: str,
        done: Callable[[OutputFollower], None] = lambda _f: None,
    ) -> None:
        self._history = history
        self._request = request
        self.next = from_
        self._peer = peer
        self._done = done
        self._paused = False
        self._stopped = False
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        history.subscribe(self._append)
        self._pump()

    def _append(self, offset: int, data: bytes) -> None:
        if self._paused or self._stopped:
            return
        if offset == self.next:
            self.next += len(data)
            self._request.write(data)
        else:
            self._pump()

    def _pump(self) -> None:
        """Write what the history holds from ``next`` on, while the reader keeps up."""
        while not self._paused and not self._stopped:
            start, data = self._history.read(self.next, CATCH_UP_CHUNK)
            if start > self.next:
                log.info(
                    "API output stream to {peer} fell behind: bytes {first}..{start} are no "
                    "longer in the history; ending the stream (resume with from={start})",
                    peer=self._peer,
                    first=self.next,
                    start=start,
                )
                self._end()
                return
            if not data:
                return
            self.next += len(data)
            self._request.write(data)

    def _end(self) -> None:
        self._stop()
        self._request.unregisterProducer()
        self._request.finish()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._history.unsubscribe(self._append)
        self._done(self)

    def _finished(self, _result: object) -> None:
        self._stop()

    def close(self) -> None:
        """End the stream (vncmux is stopping)."""
        if not self._stopped:
            self._end()

    # -- IPushProducer

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        self._stop()
