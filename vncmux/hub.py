"""The multiplexer: one device fanned out to many backends, their input merged back.

This is vncmux's equivalent of QEMU's ``hub`` chardev, without its limits: any number of
backends, lossless flow control by pausing the device, a stall timeout so that one stuck
backend cannot freeze the console for everyone, and a device that may come and go.  Input
has flow control too: while the device does not take it (a slow UART, a hung board), the
sources that can wait are paused and the others are bounded.

It does no I/O of its own: devices and backends are objects behind ``IDevice``, ``IBackend``
and ``IPausableInput``, the device's write buffer speaks through ``DeviceInputProducer``, and
time comes from an ``IReactorTime``, so every rule here is tested with fakes and
``twisted.internet.testing.Clock``.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.events import BREAK, DEVICE_DOWN, DEVICE_UP, INPUT, Client, EventBus
from vncmux.interfaces import BreakUnsupported, IBackend, IDevice, IPausableInput
from vncmux.keyboard import KeyboardLock


@implementer(IPushProducer)
class DeviceInputProducer:
    """The hub's side of one device's write buffer, registered on the device's transport
    (``transport.registerProducer(producer, streaming=True)``).

    Twisted pauses it when the transport's write buffer goes over its bound (64 KiB) and
    resumes it once the buffer has drained; both are reported to the hub for *this* device
    only, so a late call from a device already replaced changes nothing.
    """

    def __init__(self, hub: Hub, device: IDevice) -> None:
        self._hub = hub
        self._device = device

    def pauseProducing(self) -> None:
        self._hub._deviceInputFull(self._device, True)

    def resumeProducing(self) -> None:
        self._hub._deviceInputFull(self._device, False)

    def stopProducing(self) -> None:
        """The transport is going away: its buffer with it."""
        self._hub._deviceInputFull(self._device, False)


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
        counted, never queued for later;
      - while the device's write buffer is full (its transport paused ``inputProducer``),
        every attached ``IPausableInput`` backend is paused (attached later: paused at
        once) and resumed when the buffer has drained or the device went away; what they
        had already read is still written whole, so their input is lossless;
      - meanwhile input from sources that cannot wait (the console's keys, pastes and
        terminal replies: anything not ``IPausableInput``) is written only while it fits in
        ``inputSlack`` bytes per full episode; a chunk beyond that is dropped whole,
        ``input`` returns False, the bytes are counted in ``droppedInput`` and logged once
        per episode.  So the memory input takes is bounded whatever the senders do:
        the transport's bound, plus one read per paused source, plus ``inputSlack``, plus
        the one chunk that found the buffer not yet full;
      - ``inputRoom()`` says whether input would be written now (device up, buffer not
        full), and ``whenInputRoom()`` fires when that becomes true, for sources that want to
        wait rather than have their input dropped (a long paste sent in pieces).
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        stallTimeout: float = 10.0,
        inputSlack: int = 64 * 1024,
        breakDuration: float = 0.25,
    ) -> None:
        self._clock = clock
        self.breakDuration = breakDuration  # --break-duration: seconds a BREAK lasts
        self.breaks = 0  # BREAKs handed to a device
        self.stallTimeout = stallTimeout
        self.inputSlack = inputSlack
        self._inputFull = False
        self._slackUsed = 0
        self._droppedThisBurst = 0
        self._inputPaused: list[IPausableInput] = []
        self._roomWaiters: list[Deferred[None]] = []
        self._backends: list[IBackend] = []
        self._blocked: dict[IBackend, IDelayedCall | None] = {}
        self.device: IDevice | None = None
        self._devicePaused = False
        self.deviceDescription = "device not connected yet"
        self.droppedInput = 0
        self._droppedThisOutage = 0
        # For status reports (the API's /status): totals and the device's last change.
        self.outputBytes = 0
        self.inputBytes = 0
        self.deviceConnects = 0
        self.deviceSince = clock.seconds()
        # For metrics (vncmux.web): when the device last said something, stalled backends.
        self.lastOutput: float | None = None
        self.stalledBackends = 0
        # Who did what on this console (``vncmux.events``): every client reports here.
        self.events = EventBus(clock)
        # Who may type (``vncmux.keyboard``, --input-policy): asked about every client's input.
        self.keyboard = KeyboardLock(clock, self.events)

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
        if self._inputFull and backend in self._backends:
            self._pauseInput(backend)

    def detach(self, backend: IBackend) -> None:
        """Stop sending to ``backend``; if it was the last one holding the device, resume."""
        if backend not in self._backends:
            return
        self._backends.remove(backend)
        self._forgetBlocked(backend)
        source = cast(IPausableInput, backend)
        if source in self._inputPaused:
            self._inputPaused.remove(source)
            source.resumeInput()

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
        self.stalledBackends += 1
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
        self.deviceConnects += 1
        self.deviceSince = self._clock.seconds()
        if self._devicePaused:
            device.pauseProducing()
        if self._droppedThisOutage:
            self.log.info(
                "Dropped {count} bytes of input while the device was down",
                count=self._droppedThisOutage,
            )
            self._droppedThisOutage = 0
        self._setInputFull(False)
        for backend in list(self._backends):
            backend.deviceStateChanged(True, self.deviceDescription)
        self.events.emit(DEVICE_UP, detail=self.deviceDescription)
        self._wakeRoomWaiters()

    def deviceLost(self, description: str) -> None:
        """The device went away; backends stay attached and are told."""
        if self.device is not None:
            self.deviceSince = self._clock.seconds()
        self.device = None
        self._setInputFull(False)  # its write buffer went with it
        self.deviceDescription = description
        for backend in list(self._backends):
            backend.deviceStateChanged(False, description)
        self.events.emit(DEVICE_DOWN, detail=description)

    def deviceOutput(self, data: bytes) -> None:
        """Bytes read from the device: to every backend, in attach order."""
        if not data:
            return
        self.outputBytes += len(data)
        self.lastOutput = self._clock.seconds()
        for backend in list(self._backends):
            if backend not in self._backends:  # detached by an earlier backend's write
                continue
            try:
                backend.write(data)
            except Exception:
                self.log.failure("Backend {backend} failed; detaching it", backend=backend.label)
                self.detach(backend)

    # -- input -------------------------------------------------------------------------

    def input(
        self, data: bytes, source: IBackend | None = None, client: Client | None = None
    ) -> bool:
        """Bytes from a backend (keys, a script, a terminal reply) to the device, whole.

        True when they were handed to the device; False when they were dropped (and
        counted): the device is down, or its write buffer is full and ``source`` cannot be
        paused and has used up ``inputSlack``.  ``client``: who typed them (None for the
        terminal's own replies); input handed to the device is reported on ``events``.
        A client the keyboard lock refuses (another holds the keyboard) is dropped too.
        """
        if not data:
            return True
        if client is not None and not self.keyboard.allow(client, len(data)):
            return False
        if self.device is None:
            if not self._droppedThisOutage:
                self.log.info(
                    "Device is down: dropping input from {source} (and counting)",
                    source=_sourceLabel(source),
                )
            self._droppedThisOutage += len(data)
            self.droppedInput += len(data)
            return False
        if self._inputFull and not self._canWait(source):
            if self._slackUsed + len(data) > self.inputSlack:
                self._dropBurst(data, source)
                return False
            self._slackUsed += len(data)
        self.device.write(data)
        self.inputBytes += len(data)
        if client is not None:
            self.events.emit(INPUT, client, data=data)
        return True

    def sendBreak(
        self, client: Client | None, duration: float | None = None, how: str = ""
    ) -> str | None:
        """A serial BREAK from ``client`` (``how``: the way it asked, for the log) to the
        device, lasting ``duration`` seconds (default ``breakDuration``).

        Returns what the device did, or None when nothing was sent: a view-only client, one
        the keyboard lock refuses (a BREAK is input), the device down, or a device that
        cannot carry a BREAK (a raw socket).  Every request is one log line and one
        ``break`` event (a refused one says why in its detail).
        """
        source = (str(client) if client is not None else "vncmux") + (f" ({how})" if how else "")
        device = self.device
        why = ""
        done: str | None = None
        if client is not None and client.view_only:
            why = "a view-only client may not send BREAK"
        elif client is not None and not self.keyboard.allow(client, 0):
            why = "another client holds the keyboard"
        elif device is None:
            why = f"the device is down ({self.deviceDescription})"
        else:
            try:
                done = device.sendBreak(self.breakDuration if duration is None else duration)
            except BreakUnsupported as e:
                why = f"{device.label} {e}"
        if done is None:
            self.log.warn("BREAK from {source} refused: {why}", source=source, why=why)
            self.events.emit(BREAK, client, detail=f"refused: {why}")
            return None
        self.breaks += 1
        assert device is not None
        self.log.info(
            "BREAK from {source} to {device}: {done}", source=source, device=device.label, done=done
        )
        self.events.emit(BREAK, client, detail=done)
        return done

    def inputProducer(self, device: IDevice) -> IPushProducer:
        """What the device side registers on ``device``'s transport (streaming), so that
        the transport's write buffer pauses and resumes the hub's input sources."""
        return DeviceInputProducer(self, device)

    @property
    def inputFull(self) -> bool:
        """True while the device's write buffer is over its bound (sources paused)."""
        return self._inputFull

    def inputRoom(self, source: IBackend | None = None) -> bool:
        """Would input from ``source`` be written to the device now (device up, its write
        buffer not full)?  A source that sends in pieces sends the next one only then."""
        return self.device is not None and (not self._inputFull or self._canWait(source))

    def whenInputRoom(self) -> Deferred[None]:
        """A Deferred that fires once ``inputRoom()`` is true (at once if it is now).
        Cancel it to stop waiting."""
        if self.inputRoom():
            return succeed(None)
        d: Deferred[None] = Deferred(lambda d: self._forgetWaiter(d))
        self._roomWaiters.append(d)
        return d

    def _forgetWaiter(self, d: Deferred[None]) -> None:
        if d in self._roomWaiters:
            self._roomWaiters.remove(d)

    def _wakeRoomWaiters(self) -> None:
        waiters, self._roomWaiters = self._roomWaiters, []
        for d in waiters:
            if self.inputRoom():
                d.callback(None)
            else:  # an earlier waiter filled the buffer again
                self._roomWaiters.append(d)

    def _canWait(self, source: IBackend | None) -> bool:
        return source is not None and source in self._backends and IPausableInput.providedBy(source)

    def _dropBurst(self, data: bytes, source: IBackend | None) -> None:
        if not self._droppedThisBurst:
            self.log.warn(
                "Device {device} is not taking input (its write buffer is full): dropping "
                "input from {source} beyond {slack} bytes (counted)",
                device=self.device.label if self.device is not None else "-",
                source=_sourceLabel(source),
                slack=self.inputSlack,
            )
        self._droppedThisBurst += len(data)
        self.droppedInput += len(data)

    def _deviceInputFull(self, device: IDevice, full: bool) -> None:
        """From ``DeviceInputProducer``: ``device``'s write buffer is full / drained."""
        if device is self.device:
            self._setInputFull(full)

    def _setInputFull(self, full: bool) -> None:
        if full == self._inputFull:
            return
        self._inputFull = full
        if full:
            for backend in list(self._backends):
                self._pauseInput(backend)
            return
        self._slackUsed = 0
        if self._droppedThisBurst:
            self.log.info(
                "Device takes input again; dropped {count} bytes of input meanwhile",
                count=self._droppedThisBurst,
            )
            self._droppedThisBurst = 0
        paused, self._inputPaused = self._inputPaused, []
        for source in paused:
            source.resumeInput()
        self._wakeRoomWaiters()

    def _pauseInput(self, backend: IBackend) -> None:
        source = IPausableInput(backend, None)
        if source is not None and source not in self._inputPaused:
            self._inputPaused.append(source)
            source.pauseInput()


def _sourceLabel(source: IBackend | None) -> str:
    return str(source.label) if source is not None else "console"
