"""Tests for vncmux.rfb.encodings: decode what the encoders produce with independent decoders.

Two independent decoders: one written here from rfbproto (all pixel formats, every
subencoding), and vncdotool's client decoders (native format only: its ZRLE decoder assumes
3-byte CPIXELs and ignores the per-row padding of packed palettes, so it is fed only tiles
whose width is a multiple of 8).
"""

from __future__ import annotations

import functools
import random
import shutil
import socket
import string
import struct
import subprocess
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw, ImageFont
from zope.interface.verify import verifyObject

from tests.support.encoding_reference import (
    ENC_FORMATS,
    Reader,
    byte_order,
    cpixel_reader,
    hextile_decode,
    pixel_value,
    raw_values,
    zrle_decode,
)
from tests.support.pixel_reference import (
    mask,
    random_image,
    reference_convert,
    sane_formats,
)
from vncmux.rfb import encodings
from vncmux.rfb.encodings import IEncoder, choose, make_encoder
from vncmux.rfb.encodings.common import index_bytes
from vncmux.rfb.encodings.copyrect import copyrect_payload
from vncmux.rfb.encodings.hextile import HextileEncoder
from vncmux.rfb.encodings.raw import RawEncoder
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.encodings.tight import TightEncoder, compact_length
from vncmux.rfb.encodings.zlib import ZlibEncoder
from vncmux.rfb.encodings.zrle import ZRLEEncoder
from vncmux.rfb.pixels import NATIVE, PixelFormat

# -- images ---------------------------------------------------------------------------


def terminal_image(rng: random.Random, w: int, h: int) -> Image.Image:
    """Text-like: a background, glyph-ish blocks of a few foreground colours."""
    colours = [(0, 0, 0), (170, 170, 170), (255, 85, 85), (85, 255, 85), (0, 0, 170)]
    image = Image.new("RGB", (w, h), colours[0])
    for cy in range(0, h, 16):
        for cx in range(0, w, 8):
            if rng.random() < 0.5:
                continue
            fg = rng.choice(colours[1:])
            for _ in range(rng.randrange(1, 4)):
                x0, y0 = cx + rng.randrange(8), cy + rng.randrange(16)
                x1, y1 = (
                    min(x0 + rng.randrange(1, 5), w),
                    min(y0 + rng.randrange(1, 9), h),
                )
                image.paste(fg, (x0, y0, x1, y1))
    return image


def images(rng: random.Random) -> list[Image.Image]:
    """Every subencoding and tile boundary, kept small: the reference code is slow."""
    return [
        Image.new("RGB", (1, 1), (1, 2, 3)),
        Image.new("RGB", (70, 65), (9, 9, 9)),
        # black and white stay two colours in every format
        Image.frombytes(
            "RGB", (9, 7), bytes(255 if i // 3 % 5 < 2 else 0 for i in range(9 * 7 * 3))
        ),
        terminal_image(rng, 80, 40),
        terminal_image(rng, 27, 33),
        random_image(rng, 66, 20, colours=2),
        random_image(rng, 37, 21, colours=3),
        random_image(rng, 65, 5, colours=9),
        random_image(rng, 20, 30, colours=16),
        random_image(rng, 24, 24, colours=17),
        random_image(rng, 30, 20, colours=100),
        random_image(rng, 33, 20),
        Image.frombytes("RGB", (70, 10), bytes((i // 3 // 90) % 256 for i in range(70 * 10 * 3))),
    ]


# -- tests ----------------------------------------------------------------------------


def test_registry() -> None:
    work = SharedWork()
    for number, cls in [
        (encodings.RAW, RawEncoder),
        (encodings.HEXTILE, HextileEncoder),
        (encodings.ZLIB, ZlibEncoder),
        (encodings.ZRLE, ZRLEEncoder),
        (encodings.TIGHT, TightEncoder),
    ]:
        enc = make_encoder(number, work)
        assert isinstance(enc, cls)
        assert enc.number == number
        assert vars(enc)["work"] is work  # injected, not a global
    a, b = make_encoder(encodings.ZRLE, work), make_encoder(encodings.ZRLE, work)
    assert a is not b  # one per viewer
    for number in (encodings.COPYRECT, encodings.DESKTOP_SIZE, encodings.CURSOR, 12345):
        assert make_encoder(number, work) is None
    assert encodings.supported() == frozenset(encodings.ENCODERS) == {0, 5, 6, 7, 16}
    assert isinstance(
        choose([encodings.DESKTOP_SIZE, 999, encodings.HEXTILE, 16], work), HextileEncoder
    )
    assert isinstance(choose([encodings.ZRLE, encodings.RAW], work), ZRLEEncoder)
    assert isinstance(choose([encodings.COPYRECT, encodings.TIGHT], work), TightEncoder)
    assert isinstance(choose([encodings.COPYRECT, 12345], work), RawEncoder)
    assert isinstance(choose([], work), RawEncoder)


@pytest.mark.parametrize("number", sorted(encodings.ENCODERS))
def test_every_encoder_fulfils_the_contract(number: int) -> None:
    """verifyObject for every registered encoder, and the declared attributes' types."""
    enc = make_encoder(number, SharedWork())
    assert enc is not None
    assert verifyObject(IEncoder, enc)
    assert enc.number == number
    for limit in (enc.max_width, enc.max_pixels):
        assert limit is None or (isinstance(limit, int) and limit > 0)
    assert isinstance(enc.stream_shareable, bool)
    assert enc.share_stream is False, "a viewer starts on its own stream"
    assert enc.stream_shareable == (number in (encodings.ZRLE, encodings.TIGHT))
    assert (enc.max_width, enc.max_pixels) == (
        (2048, 65536) if number == encodings.TIGHT else (None, None)
    )


def test_constants() -> None:
    assert encodings.EXTENDED_CLIPBOARD == -1063131698
    assert struct.pack("!i", encodings.EXTENDED_CLIPBOARD) == bytes.fromhex("c0a1e5ce")
    assert (encodings.DESKTOP_SIZE, encodings.LAST_RECT, encodings.CURSOR) == (
        -223,
        -224,
        -239,
    )
    assert (encodings.EXTENDED_DESKTOP_SIZE, encodings.FENCE) == (-308, -312)


def test_copyrect_payload() -> None:
    assert copyrect_payload(3, 0x1234) == b"\x00\x03\x12\x34"


@functools.cache
def cases(fmt: PixelFormat) -> list[tuple[Image.Image, list[int]]]:
    """images() for this format with their reference pixel values, computed once."""
    rng = random.Random(fmt.pack())
    return [(image, reference_convert(fmt, image)) for image in images(rng)]


@pytest.mark.parametrize("fmt", ENC_FORMATS, ids=lambda f: f.pack().hex())
def test_raw_and_zlib(fmt: PixelFormat) -> None:
    zenc = ZlibEncoder(SharedWork())
    inflater = zlib.decompressobj()
    for image, expected in cases(fmt):
        assert raw_values(fmt, RawEncoder(SharedWork()).encode(image, fmt)) == expected
        payload = zenc.encode(image, fmt)
        (length,) = struct.unpack("!I", payload[:4])
        assert length == len(payload) - 4
        assert raw_values(fmt, inflater.decompress(payload[4:])) == expected


@pytest.mark.parametrize("fmt", ENC_FORMATS, ids=lambda f: f.pack().hex())
def test_zrle_round_trip(fmt: PixelFormat) -> None:
    enc = ZRLEEncoder(SharedWork())
    inflater = zlib.decompressobj()  # one stream across every update, as a client has
    for image, expected in cases(fmt):
        payload = enc.encode(image, fmt)
        assert zrle_decode(payload, fmt, image.width, image.height, inflater) == expected


@pytest.mark.parametrize("fmt", ENC_FORMATS, ids=lambda f: f.pack().hex())
def test_hextile_round_trip(fmt: PixelFormat) -> None:
    enc = HextileEncoder(SharedWork())
    for image, expected in cases(fmt):
        got = hextile_decode(enc.encode(image, fmt), fmt, image.width, image.height)
        assert got == expected


# A 32-bit format whose colour needs all 4 bytes: CPIXELs are whole pixels.
DEEP = PixelFormat(32, 30, False, True, 1023, 1023, 1023, 20, 10, 0)
RGB565 = PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0)


def spare_byte_left_out(fmt: PixelFormat) -> bool:
    """3-byte CPIXELs of a 32-bit pixel: the viewer supplies the spare byte, and gtk-vnc
    supplies 0 on its solid and raw tile paths, so the encoder must avoid those."""
    return fmt.bpp == 32 and cpixel_reader(fmt)[0] == 3


@pytest.mark.parametrize("fmt", [NATIVE, DEEP, RGB565], ids=lambda f: f.pack().hex())
def test_every_zrle_subencoding_is_exercised(fmt: PixelFormat) -> None:
    """The round-trip tests above mean something only if they reach every branch."""
    zrle_seen: set[int] = set()
    zenc = ZRLEEncoder(SharedWork())
    inflater = zlib.decompressobj()
    for image in images(random.Random(9)):
        w, h = image.size
        expected = reference_convert(fmt, image)
        assert zrle_decode(zenc.encode(image, fmt), fmt, w, h, inflater, zrle_seen) == expected
    assert {2, 3, 128} <= zrle_seen  # 1-bit, 2-bit, plain RLE
    assert any(5 <= s <= 16 for s in zrle_seen)  # 4-bit packed
    assert any(130 <= s for s in zrle_seen)  # palette RLE
    if spare_byte_left_out(fmt):
        assert not {0, 1} & zrle_seen  # never raw, never solid
    else:
        assert {0, 1} <= zrle_seen  # raw, solid


def test_every_hextile_subencoding_is_exercised() -> None:
    """The round-trip tests above mean something only if they reach every branch."""
    hextile_seen: set[int] = set()
    henc = HextileEncoder(SharedWork())
    for image in images(random.Random(9)):
        w, h = image.size
        expected = reference_convert(NATIVE, image)
        assert hextile_decode(henc.encode(image, NATIVE), NATIVE, w, h, hextile_seen) == expected
    assert 1 in hextile_seen  # raw tile
    assert 0 in hextile_seen  # background carried over
    assert any(s & 4 for s in hextile_seen)  # foreground specified
    assert any(s & 8 and not s & 4 and not s & 16 for s in hextile_seen)  # foreground carried
    assert any(s & 16 for s in hextile_seen)  # coloured subrects


@settings(max_examples=25, deadline=None)
@given(
    fmt=sane_formats(),
    w=st.integers(1, 90),
    h=st.integers(1, 70),
    colours=st.one_of(st.none(), st.integers(1, 20)),
    seed=st.integers(0, 2**32),
)
def test_random_round_trip(
    fmt: PixelFormat, w: int, h: int, colours: int | None, seed: int
) -> None:
    image = random_image(random.Random(seed), w, h, colours)
    expected = reference_convert(fmt, image)
    got = zrle_decode(ZRLEEncoder(SharedWork()).encode(image, fmt), fmt, w, h, zlib.decompressobj())
    assert got == expected
    assert hextile_decode(HextileEncoder(SharedWork()).encode(image, fmt), fmt, w, h) == expected


def test_cpixel_layout_matches_tigervnc() -> None:
    """First 3 wire bytes whenever the last carries no colour (TigerVNC readOpaque24A).

    A one-pixel tile is plain RLE (one run of 1): a 3-byte CPIXEL is never sent solid."""
    middle_be = PixelFormat(32, 16, True, True, 31, 63, 31, 19, 13, 8)
    payload = ZRLEEncoder(SharedWork()).encode(Image.new("RGB", (1, 1), (255, 255, 255)), middle_be)
    tile = zlib.decompressobj().decompress(payload[4:])
    assert tile == b"\x80" + middle_be.pixel(255, 255, 255)[:3] + b"\x00"
    ms_le = PixelFormat(32, 24, False, True, 255, 255, 255, 24, 16, 8)
    payload = ZRLEEncoder(SharedWork()).encode(Image.new("RGB", (1, 1), (1, 2, 3)), ms_le)
    tile = zlib.decompressobj().decompress(payload[4:])
    assert tile == b"\x80" + ms_le.pixel(1, 2, 3)[1:] + b"\x00" == b"\x80\x03\x02\x01\x00"


@pytest.mark.parametrize("fmt", [NATIVE, DEEP], ids=lambda f: f.pack().hex())
def test_zrle_subencodings_are_chosen_well(fmt: PixelFormat) -> None:
    """Sizes that matter for the budgets: blank, text and noise tiles.  With 3-byte
    CPIXELs, blank and noise tiles are plain RLE instead of solid and raw."""
    cp = cpixel_reader(fmt)[0]
    black = fmt.pixel(0, 0, 0)[:cp]  # little-endian: a CPIXEL is the pixel's first bytes
    enc = ZRLEEncoder(SharedWork())
    inflater = zlib.decompressobj()
    blank = Image.new("RGB", (64, 64), (0, 0, 0))
    data = inflater.decompress(enc.encode(blank, fmt)[4:])
    if spare_byte_left_out(fmt):
        assert data == b"\x80" + black + b"\xff" * 16 + b"\x0f"  # one run of 4096
    else:
        assert data == b"\x01" + black
    text = terminal_image(random.Random(3), 64, 64).convert("L").point(lambda v: 255 if v else 0)
    raw_tile = inflater.decompress(enc.encode(text.convert("RGB"), fmt)[4:])
    assert raw_tile[0] == 2 and len(raw_tile) == 1 + 2 * cp + 64 * 8  # packed, 1 bit per pixel
    stripes = Image.new("RGB", (64, 64), (0, 0, 0))
    stripes.paste((200, 0, 0), (0, 10, 64, 20))
    stripes.paste((0, 200, 0), (0, 30, 64, 31))
    stripes.paste((0, 0, 200), (0, 50, 64, 51))
    data = inflater.decompress(enc.encode(stripes, fmt)[4:])
    # palette RLE: header, 4 CPIXELs, 7 runs of at most 1 + 4 length bytes
    assert data[0] == 128 + 4 and len(data) <= 1 + 4 * cp + 7 * 5
    noise = random_image(random.Random(4), 64, 64)
    data = inflater.decompress(enc.encode(noise, fmt)[4:])
    if spare_byte_left_out(fmt):
        assert data[0] == 128 and len(data) <= 1 + 64 * 64 * (cp + 1)
    else:
        assert data[0] == 0 and len(data) == 1 + 64 * 64 * cp


def test_zrle_stream_continues_across_updates() -> None:
    """A client inflates every update with one decompressor; a fresh one fails later on."""
    rng = random.Random(5)
    enc = ZRLEEncoder(SharedWork())
    inflater = zlib.decompressobj()
    frames = [terminal_image(rng, 128, 64) for _ in range(4)]
    payloads = [enc.encode(frame, NATIVE) for frame in frames]
    for frame, payload in zip(frames, payloads):
        assert zrle_decode(payload, NATIVE, 128, 64, inflater) == reference_convert(NATIVE, frame)
    # The same frame again costs almost nothing thanks to the shared dictionary...
    again = enc.encode(frames[-1], NATIVE)
    assert len(again) < len(payloads[-1]) // 2
    assert zrle_decode(again, NATIVE, 128, 64, inflater) == reference_convert(NATIVE, frames[-1])
    # ...and is undecodable without the earlier stream.
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(again[4:])


FONT = Path(__file__).resolve().parents[2] / "fonts" / "terminus-normal.otb"


def text_screen(seed: int, cols: int = 80, rows: int = 24) -> Image.Image:
    """A screen full of random letters in the real bitmap font, two foreground colours."""
    font = ImageFont.truetype(str(FONT), 16)
    image = Image.new("RGB", (cols * 8, rows * 16))
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    for row in range(rows):
        line = "".join(rng.choice(string.ascii_letters + "  ") for _ in range(cols))
        draw.text(
            (0, row * 16),
            line,
            font=font,
            fill=(170, 170, 170) if row % 5 else (85, 255, 85),
        )
    return image


@pytest.mark.skipif(not FONT.exists(), reason="font not in the tree")
def test_full_terminal_screen_budget() -> None:
    """The bandwidth budget: a full 80x24 screen of text in ZRLE is at most 20 KB."""
    image = text_screen(6)
    assert len(image.getcolors(16) or ()) == 3
    # Correctness is the round-trip tests' business; this one is about size.
    assert len(ZRLEEncoder(SharedWork()).encode(image, NATIVE)) <= 20_000


def test_random_blocks_screen_budget() -> None:
    image = terminal_image(random.Random(6), 640, 384)
    assert len(ZRLEEncoder(SharedWork()).encode(image, NATIVE)) <= 20_000


# -- vncdotool's decoders ---------------------------------------------------------------

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from vncdotool.rfb import RFBClient

    class CanvasClient(RFBClient):  # type: ignore[misc]
        """vncdotool's protocol with the rectangle hooks drawing into an RGBX canvas."""

        def __init__(self, w: int, h: int) -> None:
            super().__init__()
            self.w = w
            self.canvas = bytearray(w * h * 4)
            self.updates = 0
            self._handler = self._handleExpected
            self.expect(self._handleConnection, 1)

        def updateRectangle(self, x: int, y: int, w: int, h: int, data: bytes) -> None:
            for row in range(h):
                at = ((y + row) * self.w + x) * 4
                self.canvas[at : at + w * 4] = data[row * w * 4 : (row + 1) * w * 4]

        def fillRectangle(self, x: int, y: int, w: int, h: int, colour: bytes) -> None:
            self.updateRectangle(x, y, w, h, bytes(colour) * (w * h))

        def commitUpdate(self, rectangles: Any = None) -> None:
            self.updates += 1

        def rgb(self) -> bytes:
            return Image.frombytes(
                "RGB",
                (self.w, len(self.canvas) // 4 // self.w),
                bytes(self.canvas),
                "raw",
                "RGBX",
            ).tobytes()


def vncdotool_decode(client: CanvasClient, number: int, payload: bytes, w: int, h: int) -> None:
    before = client.updates
    client.dataReceived(
        struct.pack("!BxH", 0, 1) + struct.pack("!HHHHi", 0, 0, w, h, number) + payload
    )
    assert client.updates == before + 1


@pytest.mark.parametrize("number", [encodings.ZRLE, encodings.HEXTILE, encodings.RAW])
def test_vncdotool_decodes_native(number: int) -> None:
    rng = random.Random(number)
    w, h = 192, 96  # every ZRLE tile width a multiple of 8 (see module docstring)
    client = CanvasClient(w, h)
    enc = make_encoder(number, SharedWork())
    assert enc is not None
    frames = [
        terminal_image(rng, w, h),
        random_image(rng, w, h, colours=3),
        random_image(rng, w, h),
        Image.new("RGB", (w, h), (4, 5, 6)),
    ]
    for frame in frames:
        vncdotool_decode(client, number, enc.encode(frame, NATIVE), w, h)
        assert client.rgb() == frame.tobytes()


@pytest.mark.parametrize(
    "number", [encodings.RAW, encodings.HEXTILE, encodings.ZLIB, encodings.ZRLE]
)
def test_empty_rectangle(number: int) -> None:
    enc = make_encoder(number, SharedWork())
    assert enc is not None
    inflater = zlib.decompressobj()
    for size in [(0, 5), (5, 0), (0, 0)]:
        payload = enc.encode(Image.new("RGB", size), NATIVE)
        if number in (encodings.ZLIB, encodings.ZRLE):
            assert inflater.decompress(payload[4:]) == b""
        else:
            assert payload == b""


# -- Tight (not in the registry until the server splits rectangles) ---------------------


def tpixel_is_rgb(fmt: PixelFormat) -> bool:
    """rfbproto: TPIXELs are 3 bytes R, G, B (no spare byte) for these 32-bit formats."""
    return (
        fmt.true_colour
        and fmt.bpp == 32
        and fmt.depth == 24
        and (fmt.red_max, fmt.green_max, fmt.blue_max) == (255, 255, 255)
        and all(s % 8 == 0 for s in (fmt.red_shift, fmt.green_shift, fmt.blue_shift))
    )


def tight_decode(
    payload: bytes, fmt: PixelFormat, w: int, h: int, inflaters: list[Any], full: bool = False
) -> list[int]:
    """Lossless Tight decoder written from rfbproto (fill, copy and palette filters).

    With ``full``, whole pixel values; bits a 3-byte TPIXEL leaves out count as ones."""
    r = Reader(payload)
    tp888 = tpixel_is_rgb(fmt)
    tp = 3 if tp888 else fmt.bytes_per_pixel

    def tpixel(b: bytes) -> int:
        if tp888:
            value = (b[0] << fmt.red_shift) | (b[1] << fmt.green_shift) | (b[2] << fmt.blue_shift)
            return value | (0xFFFFFFFF & ~mask(fmt)) if full else value
        return pixel_value(fmt, b, full)

    def compact() -> int:
        value, shift = 0, 0
        for i in range(3):
            b = r.u8()
            value |= (b & (0x7F if i < 2 else 0xFF)) << shift
            shift += 7
            if i < 2 and not b & 0x80:
                break
        return value

    def data(length: int, stream: int) -> bytes:
        if length < 12:
            return r.take(length)
        raw = inflaters[stream].decompress(r.take(compact()))
        assert len(raw) == length
        return raw

    ctl = r.u8()
    for i in range(4):
        if ctl & (1 << i):
            inflaters[i] = zlib.decompressobj()
    kind = ctl >> 4
    if kind == 8:
        out = [tpixel(r.take(tp))] * (w * h)
    else:
        assert kind < 8, "JPEG/PNG never sent"
        stream = kind & 3
        filt = r.u8() if kind & 4 else 0
        if filt == 0:
            body = data(w * h * tp, stream)
            out = [tpixel(body[i : i + tp]) for i in range(0, len(body), tp)]
        else:
            assert filt == 1, "gradient never sent"
            pal = [tpixel(r.take(tp)) for _ in range(r.u8() + 1)]
            if len(pal) == 2:
                stride = (w + 7) // 8
                body = data(stride * h, stream)
                out = [
                    pal[(body[y * stride + x // 8] >> (7 - x % 8)) & 1]
                    for y in range(h)
                    for x in range(w)
                ]
            else:
                out = [pal[i] for i in data(w * h, stream)]
    assert r.pos == len(payload), "trailing bytes"
    return out


@pytest.mark.parametrize("fmt", ENC_FORMATS, ids=lambda f: f.pack().hex())
def test_tight_round_trip(fmt: PixelFormat) -> None:
    enc = TightEncoder(SharedWork())
    inflaters = [zlib.decompressobj() for _ in range(4)]
    seen = set()
    for image, expected in cases(fmt) + cases(fmt):  # twice: the streams continue
        payload = enc.encode(image, fmt)
        seen.add((payload[0], payload[1] if payload[0] & 0x40 else None))
        assert tight_decode(payload, fmt, *image.size, inflaters) == expected
    if tpixel_is_rgb(fmt):  # a fill's spare byte is gtk-vnc's to choose (0): never sent
        assert not any(control & 0x80 for control, _ in seen)
    else:
        assert (0x80, None) in seen  # fill
    f = fmt.effective()
    if (f.red_max + 1) * (f.green_max + 1) * (f.blue_max + 1) > 16:
        assert (0x00, None) in seen  # copy
    assert (0x40 | 1 << 4, 1) in seen  # palette, 2 colours
    assert (0x40 | 2 << 4, 1) in seen  # palette, indexed


@pytest.mark.parametrize("fmt", ENC_FORMATS[:3], ids=lambda f: f.pack().hex())
def test_tight_frames_shared_between_viewers_decode_on_each_stream(fmt: PixelFormat) -> None:
    work = SharedWork()
    viewer, other = TightEncoder(work), TightEncoder(work)
    inflaters = [zlib.decompressobj() for _ in range(4)]
    modes = [False, True, False, True, True, False, False]
    for i, (image, expected) in enumerate(cases(fmt) * 2):
        viewer.share_stream = modes[i % len(modes)]
        payload = viewer.encode(image, fmt)
        assert tight_decode(payload, fmt, *image.size, inflaters) == expected
        if viewer.share_stream:
            other.share_stream = True
            assert other.encode(image, fmt) == payload, "one build serves every viewer"


def test_tight_limits_and_lengths() -> None:
    assert compact_length(10) == b"\x0a"
    assert compact_length(10000) == bytes.fromhex("904e")  # rfbproto's example
    assert compact_length(4194303) == b"\xff\xff\xff"
    with pytest.raises(ValueError):
        compact_length(4194304)
    enc = TightEncoder(SharedWork())
    with pytest.raises(ValueError):
        enc.encode(Image.new("RGB", (2049, 1)), NATIVE)
    with pytest.raises(ValueError):
        enc.encode(Image.new("RGB", (256, 257)), NATIVE)
    assert enc.encode(Image.new("RGB", (2048, 32)), RGB565) == b"\x80\x00\x00"


def test_tight_single_colour_with_rgb_tpixels_is_a_palette() -> None:
    """gtk-vnc gives a fill rectangle's 3-byte TPIXEL a spare byte of 0 (transparent in
    gvncviewer's screenshot) but palette pixels 0xff: one colour goes as a 2-colour palette
    whose bitmap is all zeros; other formats keep the 4-byte fill."""
    colour = (200, 30, 90)
    for w, h in [(2048, 32), (1, 1), (7, 3)]:
        image = Image.new("RGB", (w, h), colour)
        payload = TightEncoder(SharedWork()).encode(image, NATIVE)
        tpixel = bytes(colour)
        assert payload[:9] == b"\x50\x01\x01" + tpixel * 2  # mono palette: c, c
        inflaters = [zlib.decompressobj() for _ in range(4)]
        got = tight_decode(payload, NATIVE, w, h, inflaters, full=True)
        assert got == [int.from_bytes(NATIVE.pixel(*colour), "little")] * (w * h)
    # 7680 bitmap bytes of zeros deflate to a few dozen
    assert len(TightEncoder(SharedWork()).encode(Image.new("RGB", (640, 96)), NATIVE)) < 80
    assert TightEncoder(SharedWork()).encode(Image.new("RGB", (9, 9), colour), DEEP) == (
        b"\x80" + DEEP.pixel(*colour)
    )


@settings(max_examples=200, deadline=None)
@given(
    cp=st.integers(1, 4),
    values=st.integers(2, 5),
    data=st.data(),
)
def test_index_bytes(cp: int, values: int, data: st.DataObject) -> None:
    """Palette indexing is exact, also when no single byte lane tells the colours apart."""
    lane = st.integers(0, values - 1).map(lambda v: v * 51)
    colour = st.tuples(*[lane] * cp).map(bytes)
    palette = data.draw(st.lists(colour, min_size=1, max_size=16, unique=True))
    pixels = data.draw(st.lists(st.sampled_from(palette), min_size=1, max_size=300))
    for px in palette:  # every colour occurs, as with getcolors()
        pixels.append(px)
    index = index_bytes(b"".join(pixels), cp, palette)
    assert [palette[i] for i in index] == pixels


# -- real viewers: gtk-vnc (gvnccapture) and TightVNC 1.2.8 (vncsnapshot) ------------------


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _serve_one_frame(conn: socket.socket, image: Image.Image, number: int) -> None:
    """Just enough of an RFB server (3.3/3.7/3.8, no auth) to hand one frame to a viewer."""
    conn.settimeout(20)
    conn.sendall(b"RFB 003.008\n")
    version = _recv_exactly(conn, 12)
    if version == b"RFB 003.003\n":
        conn.sendall(struct.pack("!I", 1))
    else:
        conn.sendall(b"\x01\x01")
        _recv_exactly(conn, 1)
        if version == b"RFB 003.008\n":
            conn.sendall(struct.pack("!I", 0))
    _recv_exactly(conn, 1)  # ClientInit
    conn.sendall(struct.pack("!HH", *image.size) + NATIVE.pack() + struct.pack("!I", 4) + b"test")
    fmt, offered, sent = NATIVE, [], False
    while True:
        kind = _recv_exactly(conn, 1)[0]
        if kind == 0:
            fmt = PixelFormat.parse(_recv_exactly(conn, 19)[3:])
            assert fmt.problem() is None and fmt.true_colour
        elif kind == 2:
            (count,) = struct.unpack("!xH", _recv_exactly(conn, 3))
            offered = list(struct.unpack(f"!{count}i", _recv_exactly(conn, 4 * count)))
        elif kind == 3:
            _recv_exactly(conn, 9)
            if sent:
                continue
            # gvnccapture does not offer Tight, but its library decodes it (gvncviewer,
            # whose screenshots have the same alpha channel, does offer it)
            assert number in offered or number in (encodings.RAW, encodings.TIGHT), offered
            sent = True
            if number == encodings.TIGHT:
                enc: Any = TightEncoder(SharedWork())
                boxes = [
                    (x, y, min(x + 256, image.width), min(y + 64, image.height))
                    for y in range(0, image.height, 64)
                    for x in range(0, image.width, 256)
                ]
            else:
                enc = make_encoder(number, SharedWork())
                boxes = [(0, 0, *image.size)]
            rects = [
                struct.pack("!HHHHi", x0, y0, x1 - x0, y1 - y0, number)
                + enc.encode(image.crop((x0, y0, x1, y1)), fmt)
                for x0, y0, x1, y1 in boxes
            ]
            conn.sendall(struct.pack("!BxH", 0, len(rects)) + b"".join(rects))
        elif kind == 4:
            _recv_exactly(conn, 7)
        elif kind == 5:
            _recv_exactly(conn, 5)
        elif kind == 6:
            (length,) = struct.unpack("!xxxI", _recv_exactly(conn, 7))
            _recv_exactly(conn, length)
        else:
            raise AssertionError(f"unexpected client message {kind}")


def _listen_on_display() -> tuple[socket.socket, int]:
    """A listening socket on 5900 + N: gvnccapture only takes display numbers."""
    for display in random.Random().sample(range(200, 2000), 50):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", 5900 + display))
        except OSError:
            sock.close()
            continue
        sock.listen(1)
        sock.settimeout(30)
        return sock, display
    raise RuntimeError("no free display number")


@pytest.mark.parametrize(
    "tool, number",
    [
        ("gvnccapture", encodings.RAW),
        ("gvnccapture", encodings.HEXTILE),
        ("gvnccapture", encodings.ZRLE),
        ("gvnccapture", encodings.TIGHT),
        ("vncsnapshot", encodings.HEXTILE),
        ("vncsnapshot", encodings.ZLIB),
        ("vncsnapshot", encodings.ZRLE),
        ("vncsnapshot", encodings.TIGHT),
    ],
)
def test_real_viewer_decodes(tool: str, number: int, tmp_path: Path) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    image = terminal_image(random.Random(number), 300, 150)
    image.paste((0, 0, 170), (0, 64, 256, 128))  # solid tiles; a Tight fill
    ramp = bytes(v for y in range(64) for x in range(44) for v in (5 * x, 4 * y, 128))
    image.paste(Image.frombytes("RGB", (44, 64), ramp), (256, 64))  # raw tiles; copy filter
    listener, display = _listen_on_display()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                _serve_one_frame(conn, image, number)
        except EOFError:
            pass  # the viewer hung up after its frame
        except BaseException as e:  # reported by the test thread
            errors.append(e)
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if tool == "gvnccapture":
        out = tmp_path / "frame.png"
        cmd = ["gvnccapture", "-q", f"127.0.0.1:{display}", str(out)]
    else:
        out = tmp_path / "frame.jpg"  # vncsnapshot writes JPEG only; quality 100
        name = {encodings.HEXTILE: "hextile", encodings.ZLIB: "zlib", encodings.ZRLE: "zrle"}
        encoding = name.get(number, "tight")
        cmd = ["vncsnapshot", "-quiet", "-nojpeg", "-quality", "100", "-encodings", encoding]
        cmd += [f"127.0.0.1:{display}", str(out)]
    subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    thread.join(30)
    assert not errors, errors
    captured = Image.open(out)
    if tool == "gvnccapture":
        # gtk-vnc copies the spare byte of a 32-bit pixel into the PNG's alpha channel:
        # solid tiles and images alike must come out opaque.  (3-byte ZRLE CPIXELs and
        # Tight TPIXELs leave the byte out and gtk-vnc fills in 0 on its solid/fill and
        # raw tile paths: the encoders avoid those paths for such formats.)
        assert captured.mode == "RGBA"
        assert captured.getchannel("A").getextrema() == (255, 255)
    got = captured.convert("RGB")
    assert got.size == image.size
    histogram = ImageChops.difference(got, image).histogram()  # 3 bands x 256 levels
    worst = max(level % 256 for level, count in enumerate(histogram) if count)
    assert worst <= (0 if tool == "gvnccapture" else 4)  # JPEG at quality 100 is near exact


def test_split() -> None:
    raw, tight = RawEncoder(SharedWork()), TightEncoder(SharedWork())
    assert encodings.split(raw, 3, 4, 5000, 3000) == [(3, 4, 5000, 3000)]
    assert encodings.split(tight, 0, 0, 100, 50) == [(0, 0, 100, 50)]
    pieces = encodings.split(tight, 10, 20, 5000, 300)
    assert all(w <= 2048 and w * h <= 65536 for _, _, w, h in pieces)
    assert sum(w * h for _, _, w, h in pieces) == 5000 * 300
    assert encodings.split(tight, 0, 0, 0, 10) == [(0, 0, 0, 10)]

    class Small:
        max_width = 7
        max_pixels = 20

    pieces = encodings.split(Small(), 10, 20, 30, 11)
    assert all(w <= 7 and w * h <= 20 for _, _, w, h in pieces)
    covered = [
        (px, py) for x, y, w, h in pieces for px in range(x, x + w) for py in range(y, y + h)
    ]
    assert sorted(covered) == [(px, py) for px in range(10, 40) for py in range(20, 31)]


def _decode_full(number: int, payload: bytes, fmt: PixelFormat, w: int, h: int) -> list[int]:
    """Whole 32-bit pixel values (spare bits included) of one rectangle of a fresh stream."""
    if number == encodings.RAW:
        return raw_values(fmt, payload, full=True)
    if number == encodings.ZLIB:
        return raw_values(fmt, zlib.decompressobj().decompress(payload[4:]), full=True)
    if number == encodings.HEXTILE:
        return hextile_decode(payload, fmt, w, h, full=True)
    if number == encodings.ZRLE:
        return zrle_decode(payload, fmt, w, h, zlib.decompressobj(), full=True)
    inflaters = [zlib.decompressobj() for _ in range(4)]
    return tight_decode(payload, fmt, w, h, inflaters, full=True)


SPARE_FORMATS = [f for f in ENC_FORMATS if f.bpp == 32]


@pytest.mark.parametrize("number", sorted(encodings.ENCODERS))
@pytest.mark.parametrize("fmt", SPARE_FORMATS, ids=lambda f: f.pack().hex())
def test_spare_bits_are_the_same_in_every_path(fmt: PixelFormat, number: int) -> None:
    """Issue 13 item 12: a colour is the same 32-bit pixel, spare bits included, whether
    it arrives as a solid fill (ZRLE/Hextile solid tile, Tight fill), a palette entry, a
    subrectangle or raw pixels; and the spare bits are all ones (opaque where a viewer
    reads them as alpha).  Bits a compact 3-byte pixel does not carry count as ones."""
    colour = (200, 30, 90)
    expected = int.from_bytes(fmt.pixel(*colour), byte_order(fmt))
    spare = 0xFFFFFFFF & ~mask(fmt)
    assert expected & spare == spare
    solid = Image.new("RGB", (70, 65), colour)
    text = terminal_image(random.Random(2), 70, 65)
    text.paste(colour, (0, 0, 70, 20))
    text.paste(random_image(random.Random(3), 20, 20), (40, 40))  # raw tiles, copy filter
    checked = 0
    for image in (solid, text):
        for box in [(0, 0, *image.size), (0, 0, 16, 16), (3, 0, 40, 20), (40, 40, 60, 60)]:
            crop = image.crop(box)
            enc = make_encoder(number, SharedWork())
            assert enc is not None
            got = _decode_full(number, enc.encode(crop, fmt), fmt, *crop.size)
            assert all(v & spare == spare for v in got), "spare bits not all ones"
            assert [v & ~spare for v in got] == reference_convert(fmt, crop)
            rgb = crop.tobytes()
            same = {v for i, v in enumerate(got) if rgb[3 * i : 3 * i + 3] == bytes(colour)}
            assert same <= {expected}, "one colour, two different 32-bit pixels"
            checked += len(same)
    assert checked == 7  # every crop but the noise one holds the colour


def test_tight_switch() -> None:
    work = SharedWork()
    assert isinstance(choose([encodings.TIGHT, encodings.ZRLE], work), TightEncoder)
    off = frozenset({encodings.TIGHT})
    assert make_encoder(encodings.TIGHT, work, disabled=off) is None
    assert isinstance(choose([encodings.TIGHT, encodings.ZRLE], work, disabled=off), ZRLEEncoder)
    assert encodings.supported(disabled=off) == {0, 5, 6, 16}
    assert isinstance(choose([encodings.RAW], work, disabled=frozenset({0})), RawEncoder)
