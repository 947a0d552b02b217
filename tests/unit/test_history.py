"""Unit tests of vncmux.history: the output ring, its offsets, marks and subscribers; the
hub backend that feeds it; replay to a byte client that connects late."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import Clock, StringTransport
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.history import (
    DEVICE_DOWN,
    DEVICE_UP,
    HistoryBackend,
    Mark,
    OutputHistory,
    replayer,
)
from vncmux.hub import Hub
from vncmux.interfaces import IBackend
from vncmux.sockets import BackendFactory


def history(size: int, clock: Clock | None = None) -> OutputHistory:
    return OutputHistory(size, (clock or Clock()).seconds)


def counter(first: int, last: int) -> bytes:
    """Numbered lines ``first``..``last`` (inclusive), 9 bytes each."""
    return b"".join(b"%08d\n" % n for n in range(first, last + 1))


# -- offsets and the ring --------------------------------------------------------------------


def test_an_empty_history() -> None:
    h = history(16)
    assert (h.start, h.end) == (0, 0)
    assert h.read(0) == (0, b"")
    assert h.tail(10) == (0, b"")
    assert h.marks() == []


def test_read_returns_what_was_appended_with_its_offset() -> None:
    h = history(16)
    h.append(b"hello ")
    h.append(b"world")
    assert (h.start, h.end) == (0, 11)
    assert h.read(0) == (0, b"hello world")
    assert h.read(6) == (6, b"world")
    assert h.read(6, limit=3) == (6, b"wor")
    assert h.read(11) == (11, b"")
    assert h.read(0, limit=0) == (0, b"")


def test_the_ring_wraps_and_keeps_the_newest_bytes() -> None:
    h = history(8)
    h.append(b"abcdef")
    h.append(b"ghij")  # wraps: 'ab' overwritten
    assert (h.start, h.end) == (2, 10)
    assert h.read(2) == (2, b"cdefghij")
    h.append(b"KLM")  # wraps again, in the middle of the buffer
    assert (h.start, h.end) == (5, 13)
    assert h.read(5) == (5, b"fghijKLM")
    assert h.read(7, limit=4) == (7, b"hijK")


def test_a_chunk_larger_than_the_ring_keeps_its_last_bytes() -> None:
    h = history(4)
    h.append(b"ab")
    h.append(b"0123456789")
    assert (h.start, h.end) == (8, 12)
    assert h.read(0) == (8, b"6789")
    h2 = history(4)
    h2.append(b"0123456789")  # the very first append already too large
    assert h2.read(0) == (6, b"6789")


def test_reading_an_overwritten_offset_starts_at_the_oldest_held() -> None:
    h = history(10)
    h.append(counter(0, 2))  # 27 bytes: offsets 0-16 overwritten
    start, data = h.read(3)
    assert start == 17 == h.start
    assert data == counter(0, 2)[17:]


@pytest.mark.parametrize("offset", [-1, 12])
def test_reading_a_negative_or_future_offset_is_an_error(offset: int) -> None:
    h = history(16)
    h.append(b"x" * 11)
    with pytest.raises(ValueError, match="offset"):
        h.read(offset)


def test_offsets_stay_exact_over_many_appends_of_random_sizes() -> None:
    """Against a model that keeps everything: every read of the ring equals the model's."""
    rng = random.Random(7)
    size = 1000
    h = history(size)
    model = bytearray()
    for _ in range(3000):
        chunk = rng.randbytes(rng.choice([1, 2, 7, 100, 333, 999, 1000, 1001, 2500]))
        h.append(chunk)
        model += chunk
        assert h.end == len(model)
        assert h.start == max(0, len(model) - size)
        frm = rng.randrange(0, len(model) + 1)
        limit = rng.choice([None, 0, 1, 50, 2000])
        start, data = h.read(frm, limit)
        assert start == max(frm, h.start)
        assert data == bytes(model[start : None if limit is None else start + limit])
    assert h.end == len(model) > 1_000_000


def test_size_zero_holds_nothing_but_offsets_advance() -> None:
    h = history(0)
    h.append(b"abc")
    h.append(b"defg")
    assert (h.start, h.end) == (7, 7)
    assert h.read(0) == (7, b"")
    assert h.tail(100) == (7, b"")
    with pytest.raises(ValueError):
        h.read(8)


def test_memory_stays_bounded_by_the_size() -> None:
    """10 MiB through a 1 MiB history: the history holds at most 1 MiB plus a little."""
    size = 1 << 20
    chunk = random.Random(1).randbytes(4099)  # odd-sized, so the ring wraps anywhere
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        h = history(size)
        fed = 0
        while fed < 10 * size:
            h.append(chunk)
            fed += len(chunk)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert h.end == fed and h.start == fed - size
    assert held <= size + 16 * 1024, f"{held} bytes held for a {size}-byte history"
    assert h.read(h.start)[1] == (chunk * (size // len(chunk) + 2))[-size:]


# -- tail: at a line boundary ------------------------------------------------------------------


def test_tail_starts_just_after_a_newline_in_the_window() -> None:
    h = history(100)
    h.append(counter(0, 9))  # 90 bytes
    offset, data = h.tail(20)  # the window starts at 70, inside line 7 (63-71)
    assert (offset, data) == (72, counter(8, 9))
    offset, data = h.tail(31)  # at 59, 5 bytes into line 6
    assert (offset, data) == (63, counter(7, 9))


def test_tail_that_already_starts_a_line_is_not_cut() -> None:
    h = history(100)
    h.append(counter(0, 9))
    assert h.tail(18) == (72, counter(8, 9))  # the byte before the window is a newline
    assert h.tail(90) == (0, counter(0, 9))  # offset 0 starts a line
    assert h.tail(500) == (0, counter(0, 9))  # more than there is: all of it


def test_tail_of_an_overwritten_window_still_cuts_at_a_newline() -> None:
    h = history(40)
    h.append(counter(0, 9))  # 90 bytes, the ring holds the last 40 (offset 50 on)
    offset, data = h.tail(1000)
    assert (offset, data) == (54, counter(6, 9))  # offset 50 is inside line 5


def test_tail_without_a_newline_is_the_whole_window() -> None:
    h = history(100)
    h.append(b"a long line without an end")
    h.append(b" still going")
    offset, data = h.tail(10)
    assert (offset, data) == (h.end - 10, b"till going")
    assert h.tail(0) == (h.end, b"")
    with pytest.raises(ValueError):
        h.tail(-1)


# -- marks ---------------------------------------------------------------------------------


def test_marks_record_offset_time_event_and_detail() -> None:
    clock = Clock()
    h = history(16, clock)
    clock.advance(5)
    h.mark("up", "ttyS0 opened")
    h.append(b"0123456789")
    clock.advance(2.5)
    h.mark("down", "ttyS0 lost")
    assert h.marks() == [Mark(0, 5.0, "up", "ttyS0 opened"), Mark(10, 7.5, "down", "ttyS0 lost")]
    assert h.marks(from_=1) == [Mark(10, 7.5, "down", "ttyS0 lost")]
    assert h.marks(from_=11) == []


def test_marks_are_bounded() -> None:
    h = OutputHistory(16, Clock().seconds, maxMarks=3)
    for n in range(5):
        h.append(b"x")
        h.mark("up" if n % 2 else "down", str(n))
    assert [m.detail for m in h.marks()] == ["2", "3", "4"]
    assert len(history(16).marks()) == 0


# -- subscribers ---------------------------------------------------------------------------


def test_subscribers_hear_each_append_after_it_is_stored() -> None:
    h = history(8)
    heard: list[tuple[int, bytes, int]] = []

    def listener(offset: int, data: bytes) -> None:
        heard.append((offset, data, h.end))  # h.end already counts ``data``

    h.subscribe(listener)
    h.subscribe(listener)  # once is enough
    h.append(b"abc")
    h.append(b"")  # nothing to say
    h.append(b"0123456789")  # larger than the ring: heard whole all the same
    h.unsubscribe(listener)
    h.append(b"zz")
    assert heard == [(0, b"abc", 3), (3, b"0123456789", 13)]


def test_a_failing_subscriber_is_dropped_and_the_others_still_hear() -> None:
    h = history(8)
    heard: list[int] = []

    def broken(offset: int, data: bytes) -> None:
        raise RuntimeError("boom")

    h.subscribe(broken)
    h.subscribe(lambda offset, data: heard.append(offset))
    h.append(b"a")
    h.append(b"b")
    assert heard == [0, 1]
    assert h.read(0) == (0, b"ab")


def test_a_subscriber_may_unsubscribe_itself_while_called() -> None:
    h = history(8)
    heard: list[bytes] = []

    def once(offset: int, data: bytes) -> None:
        heard.append(data)
        h.unsubscribe(once)

    h.subscribe(once)
    h.append(b"1")
    h.append(b"2")
    assert heard == [b"1"]


# -- the hub backend -------------------------------------------------------------------------


def test_history_backend_provides_ibackend() -> None:
    backend = HistoryBackend(history(16))
    assert verifyObject(IBackend, backend)
    assert backend.stallable is False


def test_history_backend_records_output_and_device_up_down_with_offsets() -> None:
    clock = Clock()
    hub = Hub(clock)
    h = history(1024, clock)
    hub.attach(HistoryBackend(h))  # before the device: marked down
    clock.advance(1)
    hub.deviceConnected(FakeDevice(), "ttyS0 opened")
    hub.deviceOutput(b"boot\n")
    clock.advance(2)
    hub.deviceLost("ttyS0 lost")
    clock.advance(3)
    hub.deviceConnected(FakeDevice(), "ttyS0 opened")
    hub.deviceOutput(b"again\n")
    assert h.read(0) == (0, b"boot\nagain\n")  # offsets never reset across reconnects
    assert h.marks() == [
        Mark(0, 0.0, DEVICE_DOWN, "device not connected yet"),
        Mark(0, 1.0, DEVICE_UP, "ttyS0 opened"),
        Mark(5, 3.0, DEVICE_DOWN, "ttyS0 lost"),
        Mark(5, 6.0, DEVICE_UP, "ttyS0 opened"),
    ]


def test_history_backend_marks_only_changes() -> None:
    h = history(16)
    backend = HistoryBackend(h)
    backend.deviceStateChanged(True, "up")
    backend.deviceStateChanged(True, "still up")
    backend.deviceStateChanged(False, "gone")
    assert [(m.event, m.detail) for m in h.marks()] == [(DEVICE_UP, "up"), (DEVICE_DOWN, "gone")]


# -- replay to a late byte client ------------------------------------------------------------


class BoundedTransport(StringTransport):
    """A transport whose buffer pauses its streaming producer past ``bound`` bytes, as
    Twisted's socket transports do."""

    bound = 64 * 1024

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and len(self.value()) > self.bound:
            self.producer.pauseProducing()


def lateClient(hub: Hub, replay: Any) -> tuple[Any, StringTransport]:
    factory = BackendFactory(hub, "test", replay=replay)
    proto = factory.buildProtocol(None)
    transport = BoundedTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40001))
    proto.makeConnection(transport)
    return proto, transport


def test_a_late_client_gets_the_tail_then_the_live_stream_without_gap_or_duplicate() -> None:
    clock = Clock()
    hub = Hub(clock)
    h = history(1 << 20, clock)
    hub.attach(HistoryBackend(h))
    hub.deviceConnected(FakeDevice(), "dev")
    hub.deviceOutput(counter(0, 999))
    hub.deviceOutput(b"0000100")  # a line in progress when the client connects
    _, transport = lateClient(hub, replayer(h, 100))
    hub.deviceOutput(b"0\n" + counter(1001, 1002))
    # 100 bytes back from the end: a partial line, cut at the newline after it
    assert transport.value() == counter(990, 1002)
    _, live = lateClient(hub, replayer(h, 0))
    hub.deviceOutput(b"x")
    assert live.value() == b"x"


def test_replay_larger_than_the_history_sends_what_it_has() -> None:
    clock = Clock()
    hub = Hub(clock)
    h = history(50, clock)
    hub.attach(HistoryBackend(h))
    hub.deviceConnected(FakeDevice(), "dev")
    hub.deviceOutput(counter(0, 9))
    _, transport = lateClient(hub, replayer(h, 1 << 20))
    assert transport.value() == counter(5, 9)  # offset 40 starts line 4.4: cut to line 5


def test_a_replay_that_fills_the_transport_pauses_the_device() -> None:
    clock = Clock()
    hub = Hub(clock, stallTimeout=5)
    h = history(1 << 20, clock)
    hub.attach(HistoryBackend(h))
    device = FakeDevice()
    hub.deviceConnected(device, "dev")
    hub.deviceOutput(b"y" * 200_000)
    _, transport = lateClient(hub, replayer(h, 1 << 20))
    assert len(transport.value()) == 200_000
    # the replay went over the transport's bound once the client was attached, so the hub
    # heard it: the device waits for the client to read its replay
    assert hub.paused and device.paused


# -- the wiring --------------------------------------------------------------------------------


def test_make_service_attaches_the_history_first_and_hands_it_to_replaying_sockets() -> None:
    from twisted.internet.testing import MemoryReactorClock

    from vncmux.config import build_config
    from vncmux.service import makeService
    from vncmux.sockets import ByteServerService

    config = build_config(
        device="tcp:127.0.0.1:1",
        vnc="none",
        sockets=["tcp:0"],
        chardevs=["socket,id=late,port=0,server=on,replay=1K"],
        history="4K",
    )
    top = makeService(config, MemoryReactorClock()).get("console")
    live, replaying = [s for s in top if isinstance(s, ByteServerService)]
    hub = live.factory.hub
    first = hub.backends[0]
    assert isinstance(first, HistoryBackend) and first.history.size == 4096
    assert live.factory.replay is None
    assert replaying.factory.replay is not None
    hub.deviceOutput(counter(0, 999))  # 9000 bytes through a 4K history
    assert replaying.factory.replay() == first.history.tail(1024)[1] == counter(887, 999)
