"""The asciicast v2 recording (vncmux.record): header, output events valid UTF-8 whatever the
device sends (no character split across events, invalid bytes replaced), markers, resizes,
input events, buffered writes that never block or raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import Clock
from twisted.logger import capturedLogs, formatEvent
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from vncmux.console.interfaces import IConsoleListener
from vncmux.events import ATTACH, DEVICE_DOWN, INPUT, TAKEOVER, Client, Event, IEventListener
from vncmux.hub import Hub
from vncmux.interfaces import IBackend
from vncmux.record import (
    FLUSH_INTERVAL,
    OutputDecoder,
    Recording,
    RecordingService,
    SizeWatch,
    expand_path,
    marker_text,
)

ALICE = Client.of("vnc", "192.0.2.1:5000")


class Sink:
    """A file that keeps what is written (and can fail)."""

    def __init__(self) -> None:
        self.data = b""
        self.fail = False

    def write(self, data: bytes) -> int:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.data += data
        return len(data)

    def close(self) -> None:
        pass

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.data.decode("utf-8").splitlines()]


def recording(clock: Clock, **kw: Any) -> tuple[Recording, Sink]:
    sink = Sink()
    rec = Recording("/x.cast", clock, opener=lambda path: sink, wall=lambda: 1796661600.7, **kw)  # type: ignore[arg-type,return-value]
    return rec, sink


def test_header_then_output_events_timed_from_the_start() -> None:
    clock = Clock()
    clock.advance(100)
    rec, sink = recording(clock, width=100, height=30, title="vncmux: /dev/ttyUSB0")
    rec.start()
    header = sink.lines()[0]
    assert header == {
        "version": 2,
        "width": 100,
        "height": 30,
        "timestamp": 1796661600,
        "title": "vncmux: /dev/ttyUSB0",
        "env": {"TERM": "xterm-256color"},
    }
    clock.advance(1.5)
    rec.write(b"login: ")
    assert len(sink.lines()) == 1  # buffered...
    clock.advance(FLUSH_INTERVAL)  # ...and written a moment later, in one write
    assert sink.lines()[1:] == [[1.5, "o", "login: "]]
    rec.stop()


def test_a_character_cut_between_reads_is_never_split() -> None:
    clock = Clock()
    rec, sink = recording(clock)
    rec.start()
    euro = "€".encode()
    rec.write(b"price " + euro[:1])
    rec.write(euro[1:2])
    rec.write(euro[2:] + b" ok")
    rec.stop()
    outputs = [e[2] for e in sink.lines()[1:] if e[1] == "o"]
    assert outputs == ["price ", "€ ok"]


def test_invalid_bytes_become_replacement_characters() -> None:
    clock = Clock()
    rec, sink = recording(clock)
    rec.start()
    rec.write(b"a\xffb\xc3(\xed\xa0\x80")
    rec.write(b"\xe2\x82")  # cut: ended by the device going away
    rec.deviceStateChanged(False, "gone")
    rec.stop()
    text = "".join(e[2] for e in sink.lines()[1:] if e[1] == "o")
    assert text.startswith("a\ufffdb\ufffd(")
    assert text.endswith("\ufffd") and "\ufffd" * 3 in text
    sink.data.decode("utf-8")  # the file is valid UTF-8


@given(st.binary(max_size=64), st.lists(st.integers(0, 64), max_size=8))
def test_any_bytes_in_any_pieces_decode_as_a_whole(data: bytes, cuts: list[int]) -> None:
    decoder = OutputDecoder()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    text = "".join(decoder.decode(p) for p in pieces) + decoder.flush()
    assert text == data.decode("utf-8", "replace")


def test_a_non_utf8_device_encoding_is_decoded_with_it() -> None:
    clock = Clock()
    rec, sink = recording(clock, encoding="cp437")
    rec.start()
    rec.write(b"\xc9\xcd\xbb")
    rec.stop()
    assert sink.lines()[1][2] == "╔═╗"


def test_markers_resizes_and_input() -> None:
    clock = Clock()
    rec, sink = recording(clock, with_input=True)
    rec.start()
    rec.event(Event(0, ATTACH, ALICE))
    rec.event(Event(0, INPUT, ALICE, data=b"ls\r"))
    rec.event(Event(0, DEVICE_DOWN, detail="EOF"))
    rec.event(Event(0, TAKEOVER, ALICE, previous=Client.of("socket", "h:1")))
    rec.resized(80, 24)  # the same size: nothing
    rec.resized(132, 43)
    rec.stop()
    assert [e[1:] for e in sink.lines()[1:]] == [
        ["m", "attach vnc 192.0.2.1:5000 (full)"],
        ["i", "ls\r"],
        ["m", "device down: EOF"],
        ["m", "keyboard taken over by vnc 192.0.2.1:5000 (full) from socket h:1"],
        ["r", "132x43"],
    ]


def test_input_is_left_out_unless_asked() -> None:
    clock = Clock()
    rec, sink = recording(clock)
    rec.start()
    rec.event(Event(0, INPUT, ALICE, data=b"secret\r"))
    rec.stop()
    assert sink.lines()[1:] == []


def test_marker_text() -> None:
    assert marker_text(Event(0, DEVICE_DOWN)) == "device down"


def test_a_write_error_is_logged_once_and_the_header_still_comes_first() -> None:
    clock = Clock()
    rec, sink = recording(clock)
    sink.fail = True
    with capturedLogs() as logged:
        rec.start()
        rec.write(b"lost")
        clock.advance(FLUSH_INTERVAL)
        rec.write(b"more lost")
        clock.advance(FLUSH_INTERVAL)
        sink.fail = False
        rec.write(b"kept")
        rec.stop()
    assert sum("No space left" in formatEvent(e) for e in logged) == 1
    lines = sink.lines()
    assert lines[0]["version"] == 2
    assert [e[2] for e in lines[1:]] == ["kept"]


def test_a_big_burst_is_written_at_once() -> None:
    clock = Clock()
    rec, sink = recording(clock)
    rec.start()
    for _ in range(300):
        rec.write(b"x" * 1024)
    assert len(sink.data) > 256 * 1024  # written before the timer
    rec.stop()


def test_interfaces() -> None:
    rec, _ = recording(Clock())
    assert verifyObject(IBackend, rec)
    assert verifyObject(IEventListener, rec)
    assert verifyObject(IConsoleListener, SizeWatch(object(), rec))


def test_expand_path() -> None:
    assert expand_path("/r/a.cast", 0) == "/r/a.cast"
    assert expand_path("/r/a-%Y%m%d-%H%M%S.cast", 1796661600) == "/r/a-20261207-164000.cast"


def test_the_service_records_the_hub_and_its_events(tmp_path: Path) -> None:
    clock = Clock()
    hub = Hub(clock)
    path = tmp_path / "s.cast"
    rec = Recording(str(path), clock)

    class Console:
        cols, rows = 90, 20
        listeners: list[Any] = []

        def subscribe(self, listener: Any) -> None:
            self.listeners.append(listener)

        def unsubscribe(self, listener: Any) -> None:
            self.listeners.remove(listener)

    console = Console()
    service = RecordingService(rec, hub, lambda: console)
    service.startService()
    hub.deviceConnected(FakeDevice("ttyS0"), "ttyS0 connected")
    hub.deviceOutput(b"hello\r\n")
    console.cols = 100
    console.listeners[0].changed()
    service.stopService()
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert (lines[0]["width"], lines[0]["height"]) == (90, 20)
    assert [e[1:] for e in lines[1:]] == [
        ["m", "device up: ttyS0 connected"],
        ["o", "hello\r\n"],
        ["r", "100x20"],
    ]
    assert console.listeners == [] and rec not in hub.backends
