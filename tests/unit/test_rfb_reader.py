"""The RFB message reader: each client message parsed to one handler call, whatever the
split of the stream; hostile sizes and malformed input refused or bounded."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from vncmux.rfb.pixels import NATIVE, PixelFormat
from vncmux.rfb.reader import (
    CLIP_CAPS,
    CLIP_NOTIFY,
    CLIP_PEEK,
    CLIP_PROVIDE,
    CLIP_TEXT,
    IMessageHandler,
    MessageReader,
    ProtocolError,
)

NATIVE_BYTES = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0])


@implementer(IMessageHandler)
class Recorder:
    """Records every call as (method, args...)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def setPixelFormat(self, fmt: PixelFormat) -> None:
        self.calls.append(("setPixelFormat", fmt))

    def setEncodings(self, numbers: tuple[int, ...]) -> None:
        self.calls.append(("setEncodings", numbers))

    def framebufferUpdateRequest(self, incremental: bool, x: int, y: int, w: int, h: int) -> None:
        self.calls.append(("fbur", incremental, x, y, w, h))

    def keyEvent(self, keysym: int, down: bool) -> None:
        self.calls.append(("key", keysym, down))

    def pointerEvent(self, buttons: int, x: int, y: int) -> None:
        self.calls.append(("pointer", buttons, x, y))

    def clientCutText(self, text: str) -> None:
        self.calls.append(("cut", text))

    def clipboardNotify(self, formats: int) -> None:
        self.calls.append(("notify", formats))

    def clipboardPeek(self) -> None:
        self.calls.append(("peek",))

    def enableContinuousUpdates(self, enable: bool, x: int, y: int, w: int, h: int) -> None:
        self.calls.append(("cu", enable, x, y, w, h))

    def fence(self, flags: int, payload: bytes) -> None:
        self.calls.append(("fence", flags, payload))

    def setDesktopSize(self, width: int, height: int, screens: int) -> None:
        self.calls.append(("sds", width, height, screens))


def feed(reader: MessageReader, data: bytes, chunk: int | None = None) -> bytearray:
    """Feed ``data`` as a session would (in chunks); what is left unparsed."""
    buf = bytearray()
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        buf += data[i : i + step]
        pos = 0
        while pos < len(buf):
            used = reader.read(buf, pos, len(buf) - pos)
            if used == 0:
                break
            pos += used
        del buf[:pos]
    return buf


def make(max_cut_text: int = 1 << 20) -> tuple[MessageReader, Recorder]:
    handler = Recorder()
    assert verifyObject(IMessageHandler, handler)
    return MessageReader(handler, max_cut_text, peer="test:1"), handler


ALL = (
    b"\0\0\0\0" + NATIVE_BYTES
    + struct.pack("!BxH2i", 2, 2, 16, -223)
    + struct.pack("!BBHHHH", 3, 1, 1, 2, 3, 4)
    + struct.pack("!BBxxI", 4, 1, 0x61)
    + struct.pack("!BBHH", 5, 4, 10, 20)
    + struct.pack("!BxxxI", 6, 3) + b"abc"
    + struct.pack("!BBHHHH", 150, 1, 0, 0, 8, 8)
    + struct.pack("!BxxxIB", 248, 5, 2) + b"xy"
    + struct.pack("!BxHHBx", 251, 100, 50, 1) + b"\0" * 16
    + struct.pack("!BBHII", 255, 0, 0, 0x62, 7)
)  # fmt: skip
EXPECTED = [
    ("setPixelFormat", NATIVE),
    ("setEncodings", (16, -223)),
    ("fbur", True, 1, 2, 3, 4),
    ("key", 0x61, True),
    ("pointer", 4, 10, 20),
    ("cut", "abc"),
    ("cu", True, 0, 0, 8, 8),
    ("fence", 5, b"xy"),
    ("sds", 100, 50, 1),
    ("key", 0x62, False),
]


@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_every_message_parsed_whatever_the_split(chunk: int | None) -> None:
    reader, handler = make()
    assert feed(reader, ALL, chunk) == b""
    assert handler.calls == EXPECTED


@pytest.mark.parametrize(
    "data, why",
    [
        (bytes([7]), "unknown message type 7"),
        (b"\0\0\0\0" + bytes([33]) + NATIVE_BYTES[1:], "invalid pixel format"),
        (struct.pack("!BxxxIB", 248, 0, 65), "Fence payload of 65 bytes"),
        (struct.pack("!BB", 255, 1), "unsupported QEMU message subtype 1"),
    ],
)
def test_malformed_input_is_a_protocol_error(data: bytes, why: str) -> None:
    reader, handler = make()
    with pytest.raises(ProtocolError, match=why):
        feed(reader, data)
    assert handler.calls == []


def test_cut_text_claim_not_allocated_and_capped() -> None:
    reader, handler = make(max_cut_text=10)
    rest = feed(reader, struct.pack("!BxxxI", 6, 0xFFFFFFFF) + b"x" * 1000)
    assert rest == b"" and reader.cut_held == 10
    assert handler.calls == []
    reader, handler = make(max_cut_text=4)
    feed(reader, struct.pack("!BxxxI", 6, 6) + "héllo!".encode("latin-1") + bytes([4]) + b"\1")
    assert handler.calls == [("cut", "héll")]  # cut to the cap, and the stream resyncs
    assert reader.cut_held == 0


def test_negative_length_is_plain_text_until_extended_clipboard_announced() -> None:
    message = struct.pack("!BxxxiI", 6, -8, CLIP_PEEK) + b"\0\0\0\0"
    reader, handler = make(max_cut_text=16)
    feed(reader, message)
    assert handler.calls == [] and reader.cut_held == 8  # a huge plain claim, capped
    reader, handler = make()
    reader.extended_clipboard = True
    feed(reader, message)
    assert handler.calls == [("peek",)]


def test_extended_clipboard_actions() -> None:
    reader, handler = make(max_cut_text=2000)
    reader.extended_clipboard = True

    def ext(flags: int, payload: bytes = b"") -> bytes:
        return struct.pack("!BxxxiI", 6, -(4 + len(payload)), flags) + payload

    text = "ü☃".encode() + b"\0"
    provide = zlib.compress(struct.pack("!I", len(text)) + text)
    bomb = zlib.compress(struct.pack("!I", 10**6) + b"a" * 10**6, 9)
    assert len(bomb) < 2000
    feed(
        reader,
        ext(CLIP_PROVIDE | CLIP_TEXT, provide)
        + ext(CLIP_NOTIFY | CLIP_TEXT)
        + ext(CLIP_CAPS | CLIP_PROVIDE | CLIP_TEXT, b"\0\0\0\1")  # caps: not a provide
        + ext(CLIP_PROVIDE | CLIP_TEXT, b"not zlib")
        + ext(CLIP_PROVIDE | CLIP_TEXT, bomb)
        + ext(CLIP_PROVIDE | CLIP_TEXT, b"x" * 3000),  # over the cap: dropped whole
    )
    assert handler.calls == [("cut", "ü☃"), ("notify", CLIP_TEXT), ("cut", "a" * 2000)]


def test_set_encodings_waits_for_the_whole_list() -> None:
    reader, handler = make()
    message = struct.pack("!BxH", 2, 65535) + b"\0\0\0\5" * 65535
    buf = bytearray(message[:-1])
    assert reader.read(buf, 0, len(buf)) == 0
    buf += message[-1:]
    assert reader.read(buf, 0, len(buf)) == len(message)
    assert handler.calls == [("setEncodings", (5,) * 65535)]
