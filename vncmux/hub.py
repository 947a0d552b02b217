"""The multiplexer: one device fanned out to many backends, their input merged back.

This is vncmux's equivalent of QEMU's ``hub`` chardev, without its limits: any number of
backends, lossless flow control by pausing the device, a stall timeout so that one stuck
backend cannot freeze the console for everyone, and a device that may come and go.

It does no I/O of its own: devices and backends are objects behind ``IDevice`` and
``IBackend``, and time comes from an ``IReactorTime``, so every rule here is tested with fakes
and ``twisted.internet.testing.Clock``.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from vncmux.interfaces import IBackend, IDevice


class Hub:
    """Fan-out of device output, merge of backend input, and the flow-control accounting.

    Promises:
      - every byte the device produces reaches every attached backend, in order, once;
        a backend attached later sees only what comes after it attached;
      - while any backend is blocked, the device is paused (and stays paused across a
        reopen); it is resumed when the last blocked backend drains or goes away;
      - a stallable backend blocked for ``stallTimeout`` seconds is detached and told to
        close, so the device resumes for the others;
      - a backend whose ``write`` raises is detached, the others still get the bytes;
      - input is written whole to the device; while the device is down it is dropped and
        counted, never queued for later.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, stallTimeout: float = 10.0) -> None:
        self._clock = clock
        self.stallTimeout = stallTimeout
        self._backends: list[IBackend] = []
        self._blocked: dict[IBackend, IDelayedCall | None] = {}
        self.device: IDevice | None = None
        self._devicePaused = False
        self.deviceDescription = "device not connected yet"
        self.droppedInput = 0
        self._droppedThisOutage = 0

    # -- backends --------------------------------------------------------------------

    @property
    def backends(self) -> tuple[IBackend, ...]:
        """The attached backends, in attach order."""
        return tuple(self._backends)

    def attach(self, backend: IBackend) -> None:
        """Start sending device output to ``backend`` (from now on, no replay)."""
        if backend in self._backends:
            return
        self._backends.append(backend)
        backend.deviceStateChanged(self.device is not None, self.deviceDescription)

    def detach(self, backend: IBackend) -> None:
        """Stop sending to ``backend``; if it was the last one holding the device, resume."""
        if backend not in self._backends:
            return
        self._backends.remove(backend)
        self._forgetBlocked(backend)

    # -- flow control ----------------------------------------------------------------

    def blocked(self, backend: IBackend) -> None:
        """``backend`` cannot take more output for now: pause the device."""
        if backend not in self._backends or backend in self._blocked:
            return
        timer: IDelayedCall | None = None
        if backend.stallable and self.stallTimeout > 0:
            timer = self._clock.callLater(self.stallTimeout, self._stall, backend)
        self._blocked[backend] = timer
        self._updatePause()

    def unblocked(self, backend: IBackend) -> None:
        """``backend`` drained: resume the device unless someone else is still blocked."""
        self._forgetBlocked(backend)

    @property
    def paused(self) -> bool:
        """True while some backend holds the device paused."""
        return bool(self._blocked)

    def _forgetBlocked(self, backend: IBackend) -> None:
        if backend not in self._blocked:
            return
        timer = self._blocked.pop(backend)
        if timer is not None and timer.active():
            timer.cancel()
        self._updatePause()

    def _stall(self, backend: IBackend) -> None:
        self._blocked[backend] = None
        self.log.warn(
            "Backend {backend} blocked for more than {timeout}s: disconnecting it",
            backend=backend.label,
            timeout=self.stallTimeout,
        )
        self.detach(backend)
        backend.stalled()

    def _updatePause(self) -> None:
        want = bool(self._blocked)
        if want == self._devicePaused:
            return
        self._devicePaused = want
        if self.device is not None:
            if want:
                self.device.pauseProducing()
            else:
                self.device.resumeProducing()

    # -- the device --------------------------------------------------------------------

    def deviceConnected(self, device: IDevice, description: str = "") -> None:
        """A (re)opened device: route input to it and carry over the pause state."""
        self.device = device
        self.deviceDescription = description or f"{device.label} connected"
        if self._devicePaused:
            device.pauseProducing()
        if self._droppedThisOutage:
            self.log.info(
                "Dropped {count} bytes of input while the device was down",
                count=self._droppedThisOutage,
            )
            self._droppedThisOutage = 0
        for backend in list(self._backends):
            backend.deviceStateChanged(True, self.deviceDescription)

    def deviceLost(self, description: str) -> None:
        """The device went away; backends stay attached and are told."""
        self.device = None
        self.deviceDescription = description
        for backend in list(self._backends):
            backend.deviceStateChanged(False, description)

    def deviceOutput(self, data: bytes) -> None:
        """Bytes read from the device: to every backend, in attach order."""
        if not data:
            return
        for backend in list(self._backends):
            if backend not in self._backends:  # detached by an earlier backend's write
                continue
            try:
                backend.write(data)
            except Exception:
                self.log.failure("Backend {backend} failed; detaching it", backend=backend.label)
                self.detach(backend)

    # -- input -------------------------------------------------------------------------

    def input(self, data: bytes, source: IBackend | None = None) -> None:
        """Bytes from a backend (keys, a script, a terminal reply) to the device, whole."""
        if not data:
            return
        if self.device is None:
            if not self._droppedThisOutage:
                self.log.info(
                    "Device is down: dropping input from {source} (and counting)",
                    source=source.label if source is not None else "console",
                )
            self._droppedThisOutage += len(data)
            self.droppedInput += len(data)
            return
        self.device.write(data)
