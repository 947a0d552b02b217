"""Unit tests of vncmux.hub.Hub with fake devices/backends and a deterministic Clock.

Includes the scenarios of QEMU's own hub test (tests/unit/test-char.c, char_hub_test):
fan-out to every backend, merged input, a blocked backend holding the frontend back without
the faster backends getting bytes twice, and removal of backends while in use.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import Clock
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IDevice, IPausableInput


@implementer(IBackend)
class FakeBackend:
    def __init__(self, label: str, stallable: bool = True) -> None:
        self.label = label
        self.stallable = stallable
        self.received: list[bytes] = []
        self.states: list[tuple[bool, str]] = []
        self.stalledCalls = 0
        self.onWrite: Callable[[bytes], None] | None = None
        self.fail = False

    def write(self, data: bytes) -> None:
        if self.fail:
            raise OSError("broken pipe")
        self.received.append(data)
        if self.onWrite is not None:
            self.onWrite(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.received)

    def deviceStateChanged(self, up: bool, description: str) -> None:
        self.states.append((up, description))

    def stalled(self) -> None:
        self.stalledCalls += 1


def makeHub(stallTimeout: float = 10.0) -> tuple[Hub, Clock, FakeDevice]:
    clock = Clock()
    hub = Hub(clock, stallTimeout=stallTimeout)
    device = FakeDevice()
    hub.deviceConnected(device, "fake0 connected")
    return hub, clock, device


def test_fakes_provide_interfaces() -> None:
    assert verifyObject(IDevice, FakeDevice())
    assert verifyObject(IBackend, FakeBackend("b"))


# -- QEMU char_hub_test scenarios --------------------------------------------------------


def test_every_backend_gets_every_write_in_order() -> None:
    hub, _, _ = makeHub()
    backends = [FakeBackend(f"b{i}") for i in range(3)]
    for b in backends:
        hub.attach(b)
    chunks = [b"hello ", b"", b"world", bytes(range(256))]
    for c in chunks:
        hub.deviceOutput(c)
    for b in backends:
        assert b.data == b"".join(chunks)
        assert b"" not in b.received  # empty reads are not forwarded


def test_input_from_each_backend_reaches_the_device_whole() -> None:
    hub, _, device = makeHub()
    a, b = FakeBackend("a"), FakeBackend("b")
    hub.attach(a)
    hub.attach(b)
    assert hub.input(b"from a\n", a) is True
    hub.input(b"from b\n", b)
    hub.input(b"", a)
    hub.input(b"console reply", None)
    assert device.written == [b"from a\n", b"from b\n", b"console reply"]


def test_blocked_backend_pauses_and_faster_backends_get_no_duplicates() -> None:
    hub, _, device = makeHub()
    slow, fast1, fast2 = FakeBackend("slow"), FakeBackend("fast1"), FakeBackend("fast2")
    for b in (slow, fast1, fast2):
        hub.attach(b)
    hub.deviceOutput(b"one")
    hub.blocked(slow)
    assert device.paused and hub.paused
    # a chunk already read when the pause arrived still goes to everybody, once
    hub.deviceOutput(b"two")
    hub.unblocked(slow)
    assert not device.paused and not hub.paused
    hub.deviceOutput(b"three")
    for b in (slow, fast1, fast2):
        assert b.received == [b"one", b"two", b"three"]
    assert (device.pauses, device.resumes) == (1, 1)


def test_device_resumes_only_when_every_blocked_backend_drained() -> None:
    hub, _, device = makeHub()
    a, b = FakeBackend("a"), FakeBackend("b")
    hub.attach(a)
    hub.attach(b)
    hub.blocked(a)
    hub.blocked(b)
    hub.blocked(a)  # repeated: still one pause
    assert device.pauses == 1
    hub.unblocked(a)
    assert device.paused
    hub.unblocked(b)
    assert not device.paused
    hub.unblocked(b)  # repeated: no extra resume
    assert device.resumes == 1


def test_backend_attached_later_sees_only_later_data() -> None:
    hub, _, _ = makeHub()
    early, late = FakeBackend("early"), FakeBackend("late")
    hub.attach(early)
    hub.deviceOutput(b"before")
    hub.attach(late)
    hub.deviceOutput(b"after")
    assert early.data == b"beforeafter"
    assert late.data == b"after"


def test_attach_is_idempotent() -> None:
    hub, _, _ = makeHub()
    a = FakeBackend("a")
    hub.attach(a)
    hub.attach(a)
    hub.deviceOutput(b"x")
    assert a.received == [b"x"]
    assert hub.backends == (a,)


def test_detach_while_blocked_resumes_device() -> None:
    hub, clock, device = makeHub()
    a, b = FakeBackend("a"), FakeBackend("b")
    hub.attach(a)
    hub.attach(b)
    hub.blocked(a)
    hub.detach(a)
    assert not device.paused
    hub.deviceOutput(b"z")
    assert a.received == [] and b.received == [b"z"]
    # its stall timer was cancelled with it
    clock.advance(60)
    assert a.stalledCalls == 0
    assert clock.getDelayedCalls() == []


def test_blocked_from_unknown_backend_is_ignored() -> None:
    hub, _, device = makeHub()
    stranger = FakeBackend("stranger")
    hub.blocked(stranger)
    assert not device.paused


def test_backend_detaching_itself_during_fanout_others_still_get_bytes() -> None:
    hub, _, _ = makeHub()
    a, b, c = FakeBackend("a"), FakeBackend("b"), FakeBackend("c")
    for x in (a, b, c):
        hub.attach(x)
    b.onWrite = lambda data: hub.detach(b)
    hub.deviceOutput(b"1")
    hub.deviceOutput(b"2")
    assert a.data == b"12" and c.data == b"12"
    assert b.data == b"1"
    assert hub.backends == (a, c)


def test_backend_attached_during_fanout_does_not_get_that_chunk() -> None:
    hub, _, _ = makeHub()
    a, late = FakeBackend("a"), FakeBackend("late")
    hub.attach(a)
    a.onWrite = lambda data: hub.attach(late)
    hub.deviceOutput(b"1")
    a.onWrite = None
    hub.deviceOutput(b"2")
    assert late.data == b"2"


def test_backend_detached_by_another_during_fanout_gets_nothing_more() -> None:
    hub, _, _ = makeHub()
    a, b = FakeBackend("a"), FakeBackend("b")
    hub.attach(a)
    hub.attach(b)
    a.onWrite = lambda data: hub.detach(b)
    hub.deviceOutput(b"1")
    assert b.received == []


# -- stall timeout -----------------------------------------------------------------------


def test_stalled_backend_is_detached_and_told_after_timeout() -> None:
    hub, clock, device = makeHub(stallTimeout=2.0)
    stuck, ok = FakeBackend("stuck"), FakeBackend("ok")
    hub.attach(stuck)
    hub.attach(ok)
    hub.blocked(stuck)
    clock.advance(1.99)
    assert stuck in hub.backends and device.paused and stuck.stalledCalls == 0
    clock.advance(0.02)
    assert stuck not in hub.backends
    assert stuck.stalledCalls == 1
    assert not device.paused
    hub.deviceOutput(b"later")
    assert ok.data == b"later" and stuck.data == b""


def test_unblocked_before_timeout_is_not_stalled() -> None:
    hub, clock, _ = makeHub(stallTimeout=2.0)
    b = FakeBackend("b")
    hub.attach(b)
    hub.blocked(b)
    clock.advance(1.5)
    hub.unblocked(b)
    clock.advance(1.5)  # past the original deadline
    hub.blocked(b)  # a new episode gets a fresh, full timeout
    clock.advance(1.5)
    assert b.stalledCalls == 0 and b in hub.backends
    clock.advance(0.6)
    assert b.stalledCalls == 1


def test_non_stallable_backend_never_times_out() -> None:
    hub, clock, device = makeHub(stallTimeout=1.0)
    console = FakeBackend("console", stallable=False)
    hub.attach(console)
    hub.blocked(console)
    clock.advance(3600)
    assert console in hub.backends and console.stalledCalls == 0
    assert device.paused
    hub.unblocked(console)
    assert not device.paused


def test_zero_stall_timeout_disables_it() -> None:
    hub, clock, _ = makeHub(stallTimeout=0)
    b = FakeBackend("b")
    hub.attach(b)
    hub.blocked(b)
    clock.advance(3600)
    assert b.stalledCalls == 0 and b in hub.backends


# -- failing backend ---------------------------------------------------------------------


def test_write_raising_detaches_only_that_backend() -> None:
    hub, _, _ = makeHub()
    a, bad, c = FakeBackend("a"), FakeBackend("bad"), FakeBackend("c")
    for x in (a, bad, c):
        hub.attach(x)
    bad.fail = True
    hub.deviceOutput(b"1")
    bad.fail = False
    hub.deviceOutput(b"2")
    assert a.data == b"12" and c.data == b"12"
    assert bad.data == b""
    assert hub.backends == (a, c)


def test_failing_blocked_backend_releases_the_pause() -> None:
    hub, _, device = makeHub()
    bad = FakeBackend("bad")
    hub.attach(bad)
    hub.blocked(bad)
    bad.fail = True
    hub.deviceOutput(b"x")
    assert not device.paused


# -- device coming and going -------------------------------------------------------------


def test_input_while_device_down_is_dropped_counted_and_not_replayed() -> None:
    hub, _, device = makeHub()
    a = FakeBackend("a")
    hub.attach(a)
    hub.deviceLost("fake0: unplugged")
    hub.input(b"lost1", a)
    hub.input(b"lost22", a)
    assert hub.droppedInput == 11
    assert device.written == []
    new = FakeDevice("fake1")
    hub.deviceConnected(new, "fake1 connected")
    assert new.written == []
    hub.input(b"fresh", a)
    assert new.written == [b"fresh"]
    assert device.written == []
    assert hub.droppedInput == 11


def test_pause_state_is_carried_across_device_reconnect() -> None:
    hub, _, old = makeHub()
    b = FakeBackend("b")
    hub.attach(b)
    hub.blocked(b)
    assert old.paused
    hub.deviceLost("gone")
    new = FakeDevice("new")
    hub.deviceConnected(new)
    assert new.paused
    hub.unblocked(b)
    assert not new.paused
    assert old.resumes == 0  # the old object is not touched after it was lost


def test_unblocked_while_device_down_leaves_new_device_running() -> None:
    hub, _, _ = makeHub()
    b = FakeBackend("b")
    hub.attach(b)
    hub.blocked(b)
    hub.deviceLost("gone")
    hub.unblocked(b)
    new = FakeDevice("new")
    hub.deviceConnected(new)
    assert not new.paused and new.pauses == 0


def test_backends_are_told_device_state_and_stay_attached() -> None:
    clock = Clock()
    hub = Hub(clock)
    a = FakeBackend("a")
    hub.attach(a)
    assert a.states == [(False, "device not connected yet")]
    dev = FakeDevice("dev")
    hub.deviceConnected(dev, "dev connected")
    hub.deviceLost("dev: end of file")
    hub.deviceConnected(FakeDevice("dev"), "")
    assert a.states[1:] == [
        (True, "dev connected"),
        (False, "dev: end of file"),
        (True, "dev connected"),
    ]
    assert hub.backends == (a,)
    late = FakeBackend("late")
    hub.attach(late)
    assert late.states == [(True, "dev connected")]


def test_output_with_no_backends_is_harmless() -> None:
    hub, _, _ = makeHub()
    hub.deviceOutput(b"nobody listens")


# -- input flow control ------------------------------------------------------------------


@implementer(IBackend, IPausableInput)
class PausableBackend(FakeBackend):
    """A byte client: the hub can stop reading it."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.inputPaused = False
        self.inputPauses = 0

    def pauseInput(self) -> None:
        assert not self.inputPaused, "paused twice"
        self.inputPaused = True
        self.inputPauses += 1

    def resumeInput(self) -> None:
        assert self.inputPaused, "resumed while not paused"
        self.inputPaused = False


def test_pausable_fake_provides_interfaces() -> None:
    assert verifyObject(IPausableInput, PausableBackend("p"))
    assert verifyObject(IPushProducer, makeHub()[0].inputProducer(FakeDevice()))


def test_full_device_buffer_pauses_byte_clients_and_drained_resumes_them() -> None:
    hub, _, device = makeHub()
    a, b, console = PausableBackend("a"), PausableBackend("b"), FakeBackend("console", False)
    for x in (a, b, console):
        hub.attach(x)
    producer = hub.inputProducer(device)
    producer.pauseProducing()  # the device transport's write buffer is over its bound
    assert hub.inputFull and a.inputPaused and b.inputPaused
    assert not hub.inputRoom(console) and hub.inputRoom(a)
    # a chunk a client had already read is still written whole: lossless
    assert hub.input(b"x" * 100_000, a) is True
    assert device.written == [b"x" * 100_000]
    late = PausableBackend("late")
    hub.attach(late)  # attached while full: paused at once
    assert late.inputPaused
    producer.resumeProducing()  # drained
    assert not hub.inputFull
    assert not (a.inputPaused or b.inputPaused or late.inputPaused)
    assert hub.droppedInput == 0


def test_input_the_device_does_not_take_is_bounded_for_sources_that_cannot_wait() -> None:
    hub, _, device = makeHub()
    hub.inputSlack = 10
    console = FakeBackend("console", stallable=False)
    hub.attach(console)
    producer = hub.inputProducer(device)
    assert hub.input(b"paste" * 1000, console) is True  # not full yet: taken whole
    producer.pauseProducing()
    with capturedLogs() as events:
        assert hub.input(b"12345", console) is True  # within the slack
        assert hub.input(b"123456", console) is False  # beyond it: dropped whole
        assert hub.input(b"\x1b[0n", None) is True  # still fits (5 + 4 <= 10)
        for _ in range(1000):  # a flood of terminal replies: dropped, logged once
            assert hub.input(b"\x1b[0n", None) is False
    assert device.written == [b"paste" * 1000, b"12345", b"\x1b[0n"]
    assert hub.droppedInput == 6 + 4000
    warnings = [formatEvent(e) for e in events]
    assert len(warnings) == 1 and "not taking input" in warnings[0]
    with capturedLogs() as events:
        producer.resumeProducing()
    assert any("dropped 4006 bytes" in formatEvent(e) for e in events)
    # a new episode gets a fresh slack
    producer.pauseProducing()
    assert hub.input(b"1234567890", console) is True


def test_stale_device_producer_changes_nothing() -> None:
    hub, _, old = makeHub()
    a = PausableBackend("a")
    hub.attach(a)
    oldProducer = hub.inputProducer(old)
    hub.deviceLost("gone")
    new = FakeDevice("new")
    hub.deviceConnected(new)
    oldProducer.pauseProducing()
    assert not hub.inputFull and not a.inputPaused
    hub.inputProducer(new).pauseProducing()
    assert a.inputPaused
    oldProducer.stopProducing()  # the old transport finally going away
    assert a.inputPaused


def test_device_lost_while_full_resumes_sources() -> None:
    hub, _, device = makeHub()
    a = PausableBackend("a")
    hub.attach(a)
    hub.inputProducer(device).pauseProducing()
    hub.deviceLost("gone")
    assert not a.inputPaused and not hub.inputFull
    assert hub.input(b"typed meanwhile", a) is False  # dropped: the device is down
    hub.deviceConnected(FakeDevice("new"))
    assert not hub.inputFull


def test_detach_while_paused_releases_the_source() -> None:
    hub, _, device = makeHub()
    a, b = PausableBackend("a"), PausableBackend("b")
    hub.attach(a)
    hub.attach(b)
    producer = hub.inputProducer(device)
    producer.pauseProducing()
    hub.detach(a)
    assert not a.inputPaused
    producer.resumeProducing()  # resumes only those still paused (b), not a again
    assert not b.inputPaused and a.inputPauses == 1


def test_when_input_room_waits_for_the_drain_and_the_device() -> None:
    hub, _, device = makeHub()
    fired: list[str] = []
    hub.whenInputRoom().addCallback(lambda _: fired.append("now"))
    assert fired == ["now"]
    producer = hub.inputProducer(device)
    producer.pauseProducing()
    hub.whenInputRoom().addCallback(lambda _: fired.append("drained"))
    cancelled = hub.whenInputRoom()
    cancelled.addErrback(lambda f: fired.append("cancelled"))
    cancelled.cancel()
    assert fired == ["now", "cancelled"]
    producer.resumeProducing()
    assert fired == ["now", "cancelled", "drained"]
    hub.deviceLost("gone")
    assert not hub.inputRoom()
    hub.whenInputRoom().addCallback(lambda _: fired.append("up"))
    hub.deviceConnected(FakeDevice("new"))
    assert fired[-1] == "up"


def test_a_waiter_that_fills_the_buffer_again_keeps_the_others_waiting() -> None:
    hub, _, device = makeHub()
    producer = hub.inputProducer(device)
    producer.pauseProducing()
    order: list[int] = []

    def first(_: object) -> None:
        order.append(1)
        producer.pauseProducing()  # its piece filled the buffer again

    hub.whenInputRoom().addCallback(first)
    hub.whenInputRoom().addCallback(lambda _: order.append(2))
    producer.resumeProducing()
    assert order == [1]
    producer.resumeProducing()
    assert order == [1, 2]
