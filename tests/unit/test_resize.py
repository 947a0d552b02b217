"""Viewer-driven size: the console's policy (cells that fit, limits, who may), the RFB
answers (ExtendedDesktopSize reason and status to the asker, reason 2 to the others,
DesktopSize to viewers that know only that), the option and the browser page's switch.

RFB viewers here are real ``RFBServerProtocol`` sessions over ``StringTransport`` on a
real ``Console`` (tests/support/rfb_client.py, tests/support/viewer_setup.py)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from twisted.logger import capturedLogs, formatEvent
from zope.interface.verify import verifyObject

from tests.support.rfb_client import Client, connected, make_factory, set_encodings
from tests.support.viewer_setup import Setup
from vncmux.config import ConfigError, build_config
from vncmux.console.interfaces import IViewerSession
from vncmux.console.render import Renderer
from vncmux.console.sizing import LIMITS, Limits, ResizeOrigin, SizeStatus, cells_for
from vncmux.events import Client as EventClient
from vncmux.rfb import encodings, resize
from vncmux.rfb.novnc_page import page
from vncmux.rfb.updates import Update
from vncmux.service import viewerResize

EDS = encodings.EXTENDED_DESKTOP_SIZE


def set_desktop_size(width: int, height: int, screens: int = 1) -> bytes:
    layout = b"".join(struct.pack("!IHHHHI", i, 0, 0, width, height, 0) for i in range(screens))
    return struct.pack("!BxHHBx", 251, width, height, screens) + layout


def fbur(incremental: int, w: int = 65535, h: int = 65535) -> bytes:
    return struct.pack("!BBHHHH", 3, incremental, 0, 0, w, h)


def size_rects(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """The (x, y, w, h, encoding) of every size pseudo-rectangle of the updates in
    ``data`` (Raw rectangles are skipped over by their size; 4 bytes a pixel)."""
    out = []
    pos = 0
    while pos < len(data):
        assert data[pos] == 0, data[pos : pos + 4]
        (count,) = struct.unpack_from("!H", data, pos + 2)
        pos += 4
        for _ in range(count):
            x, y, w, h, enc = struct.unpack_from("!HHHHi", data, pos)
            pos += 12
            if enc == encodings.RAW:
                pos += w * h * 4
            elif enc == EDS:
                screens = data[pos]
                assert screens == 1
                sid, sx, sy, sw, sh, flags = struct.unpack_from("!IHHHHI", data, pos + 4)
                assert (sid, sx, sy, sw, sh, flags) == (0, 0, 0, w, h, 0)
                pos += 4 + 16 * screens
                out.append((x, y, w, h, enc))
            elif enc == encodings.DESKTOP_SIZE:
                out.append((x, y, w, h, enc))
            else:
                raise AssertionError(f"unexpected encoding {enc}")
    return out


class Room:
    """A real console with RFB viewers attached to it."""

    def __init__(self, **kw: Any) -> None:
        self.resizes: list[tuple[int, int]] = []
        kw.setdefault("viewer_resize", True)
        self.setup = Setup(80, 24, on_resize=lambda c, r: self.resizes.append((c, r)), **kw)
        self.console = self.setup.console
        self.factory, _, _ = make_factory(display=self.console)
        self.cw = self.console.display.cell_width
        self.ch = self.console.display.cell_height
        self._port = 40000

    def viewer(self, *encs: int) -> Client:
        """A viewer that announced ``encs`` (Raw too), has its first frame, and waits."""
        self._port += 1
        c = connected(self.factory, port=self._port)
        c.send(set_encodings(encodings.RAW, *encs))
        c.send(fbur(0))
        c.take()
        c.send(fbur(1))
        assert c.take() == b""
        return c


# -- the pure policy ----------------------------------------------------------------------


def test_cells_for_whole_cells_less_the_status_line() -> None:
    assert cells_for(805, 390, 10, 20) == (80, 19)
    assert cells_for(805, 390, 10, 20, extra_rows=1) == (80, 18)
    assert cells_for(5, 5, 10, 20) == (0, 0)


def test_limits() -> None:
    assert LIMITS == Limits(20, 5, 500, 200)
    assert LIMITS.allows(20, 5) and LIMITS.allows(500, 200)
    for cols, rows in ((19, 5), (20, 4), (501, 10), (80, 201), (0, 0)):
        assert not LIMITS.allows(cols, rows)


# -- the console decides ------------------------------------------------------------------


def test_request_resizes_to_the_cells_that_fit_and_tells_the_device() -> None:
    room = Room()
    viewer, session = room.setup.attach()
    other_viewer, other = room.setup.attach()
    assert verifyObject(IViewerSession, session)
    w, h = 100 * room.cw + room.cw - 1, 30 * room.ch + 3
    assert session.requestSize(w, h) == SizeStatus.OK
    assert (room.console.cols, room.console.rows) == (100, 30)
    assert room.resizes == [(100, 30)]
    size = ("size", 100 * room.cw, 30 * room.ch)
    assert size in viewer.events and size in other_viewer.events
    assert session.resize_origin == ResizeOrigin.THIS_VIEWER
    assert other.resize_origin == ResizeOrigin.OTHER_VIEWER
    assert room.console.resizing_for is None
    room.console.resize(90, 25)  # not a viewer's: the console's own
    assert session.resize_origin == other.resize_origin == ResizeOrigin.SERVER


def test_the_status_line_is_part_of_the_height() -> None:
    room = Room(status_line=True)
    _viewer, session = room.setup.attach()
    assert session.requestSize(60 * room.cw, 20 * room.ch) == SizeStatus.OK
    assert (room.console.cols, room.console.rows) == (60, 19)
    assert room.console.height == 20 * room.ch


def test_refused_without_viewer_resize_with_a_log_line() -> None:
    room = Room(viewer_resize=False)
    _viewer, session = room.setup.attach()
    with capturedLogs() as events:
        assert session.requestSize(60 * room.cw, 20 * room.ch) == SizeStatus.PROHIBITED
    assert (room.console.cols, room.console.rows) == (80, 24) and room.resizes == []
    text = "\n".join(formatEvent(e) for e in events)
    assert "--viewer-resize on" in text and session.peer in text


def test_view_only_viewer_may_not_resize() -> None:
    room = Room()
    _viewer, session = room.setup.attach(view_only=True)
    assert session.requestSize(60 * room.cw, 20 * room.ch) == SizeStatus.PROHIBITED
    assert room.resizes == []


def test_not_while_another_client_holds_the_keyboard() -> None:
    room = Room()
    room.setup.hub.keyboard.configure(exclusive=True)
    holder = EventClient.of("api", "10.0.0.9:1")
    assert room.setup.hub.keyboard.allow(holder)
    _viewer, session = room.setup.attach()
    assert session.requestSize(60 * room.cw, 20 * room.ch) == SizeStatus.PROHIBITED
    assert room.resizes == []


@pytest.mark.parametrize(("cols", "rows"), [(19, 24), (80, 4), (501, 24), (80, 201)])
def test_out_of_range_is_invalid(cols: int, rows: int) -> None:
    room = Room()
    _viewer, session = room.setup.attach()
    assert session.requestSize(cols * room.cw, rows * room.ch) == SizeStatus.INVALID
    assert (room.console.cols, room.console.rows) == (80, 24) and room.resizes == []


def test_a_detached_session_asks_nothing() -> None:
    room = Room()
    _viewer, session = room.setup.attach()
    session.detach()
    assert session.requestSize(60 * room.cw, 20 * room.ch) == SizeStatus.PROHIBITED
    assert room.resizes == []


# -- RFB: the answers ------------------------------------------------------------------


def test_asker_gets_reason_1_others_reason_2_and_desktop_size() -> None:
    room = Room()
    asker = room.viewer(EDS)
    other = room.viewer(EDS)
    plain = room.viewer(encodings.DESKTOP_SIZE)
    none = room.viewer()
    asker.send(set_desktop_size(100 * room.cw + 3, 30 * room.ch + 3))
    w, h = 100 * room.cw, 30 * room.ch
    assert (room.console.width, room.console.height) == (w, h)
    assert size_rects(asker.take()) == [(1, 0, w, h, EDS)]
    assert size_rects(other.take()) == [(2, 0, w, h, EDS)]
    assert size_rects(plain.take()) == [(0, 0, w, h, encodings.DESKTOP_SIZE)]
    assert none.take() == b""  # cannot be told: keeps the old size, hears nothing
    for c in (asker, other, plain):  # and they keep working
        c.send(fbur(1))
        room.setup.feed(b"hello")
        assert c.take()[:1] == b"\0"


def test_answer_waits_for_the_request() -> None:
    room = Room()
    asker = room.viewer(EDS)
    asker.send(fbur(0))
    asker.take()
    asker.send(set_desktop_size(60 * room.cw, 20 * room.ch))
    assert asker.take() == b""
    asker.send(fbur(1))
    assert size_rects(asker.take()) == [(1, 0, 60 * room.cw, 20 * room.ch, EDS)]


def test_same_cells_answered_once_with_status_0() -> None:
    room = Room()
    asker = room.viewer(EDS)
    asker.send(set_desktop_size(80 * room.cw + 1, 24 * room.ch + 1))
    assert size_rects(asker.take()) == [(1, 0, 80 * room.cw, 24 * room.ch, EDS)]
    assert room.resizes == []


@pytest.mark.parametrize(
    ("kw", "cells", "screens", "status"),
    [
        ({"viewer_resize": False}, (60, 20), 1, resize.STATUS_PROHIBITED),
        ({}, (10, 20), 1, resize.STATUS_INVALID),
        ({}, (600, 20), 1, resize.STATUS_INVALID),
        ({}, (60, 20), 0, resize.STATUS_INVALID),
    ],
)
def test_refusals_carry_the_status_and_the_current_size(
    kw: dict[str, Any], cells: tuple[int, int], screens: int, status: int
) -> None:
    room = Room(**kw)
    asker = room.viewer(EDS)
    other = room.viewer(EDS)
    asker.send(set_desktop_size(cells[0] * room.cw, cells[1] * room.ch, screens))
    assert size_rects(asker.take()) == [(1, status, 80 * room.cw, 24 * room.ch, EDS)]
    assert other.take() == b""
    assert room.resizes == []


def test_zero_size_is_an_invalid_layout() -> None:
    room = Room()
    asker = room.viewer(EDS)
    asker.send(set_desktop_size(0, 0))
    assert size_rects(asker.take()) == [(1, resize.STATUS_INVALID, 80 * room.cw, 24 * room.ch, EDS)]


def test_without_extended_desktop_size_the_request_is_ignored() -> None:
    room = Room()
    plain = room.viewer(encodings.DESKTOP_SIZE)
    plain.send(set_desktop_size(60 * room.cw, 20 * room.ch))
    assert plain.take() == b"" and room.resizes == []


def test_size_rects_layouts() -> None:
    update = Update(resize=(80, 32), resize_reason=2, ext_sizes=[(1, 3)])
    rects = resize.size_rects(update, True, 80, 32)
    assert [struct.unpack_from("!HHHHi", r) for r in rects] == [
        (2, 0, 80, 32, EDS),
        (1, 3, 80, 32, EDS),
    ]
    plain = resize.size_rects(Update(resize=(80, 32), resize_reason=1), False, 80, 32)
    assert plain == [struct.pack("!HHHHi", 0, 0, 80, 32, encodings.DESKTOP_SIZE)]


# -- the option and the page ------------------------------------------------------------


class _Exec:
    def resize(self, cols: int, rows: int) -> None:
        pass


def test_viewer_resize_option() -> None:
    assert build_config(device="exec:true").viewer_resize == "auto"
    assert build_config(device="exec:true", viewer_resize="on").viewer_resize == "on"
    with pytest.raises(ConfigError, match="--viewer-resize"):
        build_config(device="exec:true", viewer_resize="yes")
    assert viewerResize("auto", _Exec()) is True
    assert viewerResize("auto", object()) is False
    assert viewerResize("on", object()) is True
    assert viewerResize("off", _Exec()) is False


def test_page_turns_remote_resizing_on_from_the_query() -> None:
    html = page("/usr/share/novnc").decode()
    assert "get('resize')" in html
    assert "rfb.resizeSession = resize === 'remote'" in html
    assert "rfb.scaleViewport = resize === 'scale'" in html


def test_an_answer_is_not_lost_when_another_viewer_resizes_before_it_is_sent() -> None:
    room = Room()
    a = room.viewer(EDS)
    b = room.viewer(EDS)
    a.proto.pauseProducing()  # a's answer waits
    a.send(set_desktop_size(60 * room.cw, 20 * room.ch))
    b.send(set_desktop_size(70 * room.cw, 22 * room.ch))
    assert a.take() == b""
    a.proto.resumeProducing()
    w, h = 70 * room.cw, 22 * room.ch
    assert sorted(size_rects(a.take())) == [(1, 0, w, h, EDS), (2, 0, w, h, EDS)]
    assert size_rects(b.take()) == [(2, 0, 60 * room.cw, 20 * room.ch, EDS)]  # a's, then
    b.send(fbur(1))
    assert size_rects(b.take()) == [(1, 0, w, h, EDS)]  # its own, at its next request


def test_cells_follow_the_scaled_cell_size() -> None:
    room = Room(make_renderer=lambda cols, rows: Renderer(cols, rows, scale=2))
    _viewer, session = room.setup.attach()
    assert room.cw == 2 * Renderer(1, 1).cell_width
    assert session.requestSize(50 * room.cw + room.cw // 2, 20 * room.ch) == SizeStatus.OK
    assert (room.console.cols, room.console.rows) == (50, 20)
    assert room.console.width == 50 * room.cw
