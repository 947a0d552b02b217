"""Tests for vncmux.rfb.pixels: wire form, validation, and fast conversion vs a slow reference."""

from __future__ import annotations

import random
import struct
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vncmux.rfb.pixels import BGR233, NATIVE, PixelFormat, colour_map_entries


def reference_value(fmt: PixelFormat, r: int, g: int, b: int) -> int:
    """Per-pixel reference written straight from rfbproto (round to nearest)."""
    f = fmt if fmt.true_colour else BGR233

    def chan(v: int, m: int) -> int:
        return round(v * m / 255)

    return (
        (chan(r, f.red_max) << f.red_shift)
        | (chan(g, f.green_max) << f.green_shift)
        | (chan(b, f.blue_max) << f.blue_shift)
    )


def mask(fmt: PixelFormat) -> int:
    f = fmt.effective()
    return (
        (f.red_max << f.red_shift) | (f.green_max << f.green_shift) | (f.blue_max << f.blue_shift)
    )


def reference_convert(fmt: PixelFormat, image: Image.Image) -> list[int]:
    data = image.tobytes()
    return [reference_value(fmt, *data[i : i + 3]) for i in range(0, len(data), 3)]


def decode_values(fmt: PixelFormat, data: bytes) -> list[int]:
    n = fmt.bytes_per_pixel
    order: Literal["big", "little"] = "big" if fmt.big_endian else "little"
    return [int.from_bytes(data[i : i + n], order) & mask(fmt) for i in range(0, len(data), n)]


def random_image(rng: random.Random, w: int, h: int, colours: int | None = None) -> Image.Image:
    if colours is None:
        data = bytes(rng.randrange(256) for _ in range(w * h * 3))
    else:
        palette = [bytes(rng.randrange(256) for _ in range(3)) for _ in range(colours)]
        data = b"".join(rng.choice(palette) for _ in range(w * h))
    return Image.frombytes("RGB", (w, h), data)


FORMATS = [
    NATIVE,
    PixelFormat(32, 24, True, True, 255, 255, 255, 0, 8, 16),
    PixelFormat(32, 24, False, True, 255, 255, 255, 16, 8, 0),
    PixelFormat(32, 24, True, True, 255, 255, 255, 16, 8, 0),
    PixelFormat(32, 24, False, True, 255, 255, 255, 24, 16, 8),
    PixelFormat(32, 24, True, True, 255, 255, 255, 8, 16, 24),
    PixelFormat(32, 24, False, True, 255, 255, 255, 8, 16, 24),
    PixelFormat(32, 30, False, True, 1023, 1023, 1023, 20, 10, 0),
    PixelFormat(32, 24, False, True, 255, 255, 255, 3, 11, 19),
    PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0),
    PixelFormat(16, 16, True, True, 31, 63, 31, 11, 5, 0),
    PixelFormat(16, 15, False, True, 31, 31, 31, 10, 5, 0),
    PixelFormat(16, 15, True, True, 31, 31, 31, 0, 5, 10),
    PixelFormat(16, 12, False, True, 15, 15, 15, 8, 4, 0),
    PixelFormat(8, 8, False, True, 7, 7, 3, 0, 3, 6),
    PixelFormat(8, 8, False, True, 3, 3, 3, 4, 2, 0),
    PixelFormat(8, 6, False, True, 1, 1, 1, 2, 1, 0),
    PixelFormat(8, 8, False, False, 0, 0, 0, 0, 0, 0),  # colour map
    PixelFormat(8, 3, True, True, 1, 1, 1, 7, 6, 5),
]


def test_pack_parse_round_trip() -> None:
    for fmt in FORMATS:
        packed = fmt.pack()
        assert len(packed) == 16
        assert packed[-3:] == b"\0\0\0"
        assert PixelFormat.parse(packed) == fmt


def test_parse_known_bytes() -> None:
    data = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 9, 9, 9])
    fmt = PixelFormat.parse(data)
    assert fmt == PixelFormat(32, 24, False, True, 255, 255, 255, 16, 8, 0)
    assert PixelFormat.parse(bytes([16, 16, 7, 2]) + bytes(12)).big_endian is True
    with pytest.raises(ValueError):
        PixelFormat.parse(b"\0" * 15)


def test_native_and_bgr233_are_sane() -> None:
    assert NATIVE.pack() == struct.pack("!BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 0, 8, 16)
    for fmt in FORMATS:
        assert fmt.problem() is None, fmt
    assert NATIVE.bytes_per_pixel == 4 and BGR233.bytes_per_pixel == 1


def _tc(
    bpp: int = 32,
    depth: int = 24,
    maxes: tuple[int, int, int] = (255, 255, 255),
    shifts: tuple[int, int, int] = (0, 8, 16),
    tc: bool = True,
) -> PixelFormat:
    return PixelFormat(bpp, depth, False, tc, *maxes, *shifts)


@pytest.mark.parametrize(
    "fmt, word",
    [
        (_tc(bpp=0, depth=0), "bits per pixel"),
        (_tc(bpp=1, depth=1), "bits per pixel"),
        (_tc(bpp=7, depth=7), "bits per pixel"),
        (_tc(bpp=24), "bits per pixel"),
        (_tc(bpp=33), "bits per pixel"),
        (_tc(bpp=255), "bits per pixel"),
        (_tc(depth=0), "depth"),
        (_tc(depth=33), "depth"),
        (_tc(bpp=16, depth=24, maxes=(31, 63, 31), shifts=(11, 5, 0)), "depth"),
        (_tc(maxes=(0, 255, 255)), "max is 0"),
        (_tc(maxes=(255, 0, 255)), "max is 0"),
        (_tc(maxes=(255, 255, 0)), "max is 0"),
        (_tc(maxes=(5, 255, 255)), "2^n-1"),
        (_tc(maxes=(255, 254, 255)), "2^n-1"),
        (_tc(maxes=(255, 255, 65535), shifts=(0, 8, 17)), "exceeds"),
        (_tc(shifts=(0, 8, 25)), "exceeds"),
        (_tc(shifts=(32, 8, 16)), "exceeds"),
        (_tc(shifts=(255, 8, 16)), "exceeds"),
        (_tc(bpp=8, depth=8, maxes=(7, 7, 3), shifts=(0, 3, 7)), "exceeds"),
        (_tc(shifts=(0, 4, 16)), "overlap"),
        (_tc(shifts=(0, 8, 0)), "overlap"),
        (_tc(bpp=16, depth=16, maxes=(31, 63, 31), shifts=(11, 4, 0)), "overlap"),
        (_tc(bpp=16, depth=16, tc=False), "colour-map"),
        (_tc(bpp=32, depth=8, tc=False), "colour-map"),
    ],
)
def test_problem_rejects_bad_formats(fmt: PixelFormat, word: str) -> None:
    reason = fmt.problem()
    assert reason is not None and word in reason


def test_convert_refuses_insane_format() -> None:
    with pytest.raises(ValueError, match="bits per pixel"):
        _tc(bpp=24).convert(Image.new("RGB", (1, 1)))


def test_problem_accepts_sloppy_depth() -> None:
    # Depth smaller than the channel bits: TigerVNC refuses, we accept (documented).
    assert _tc(depth=8).problem() is None


def test_effective_and_colour_map() -> None:
    cmap = _tc(bpp=8, depth=8, tc=False)
    assert cmap.effective() is BGR233
    assert NATIVE.effective() is NATIVE
    entries = colour_map_entries()
    assert len(entries) == 256
    assert entries[0] == (0, 0, 0) and entries[255] == (65535, 65535, 65535)
    # Each palette entry, converted back through BGR233, is its own index.
    for i, (r, g, b) in enumerate(entries):
        assert BGR233.value(r >> 8, g >> 8, b >> 8) == i
        assert cmap.pixel(r >> 8, g >> 8, b >> 8) == bytes([i])


def test_value_and_pixel() -> None:
    assert NATIVE.value(1, 2, 3) == 0x030201
    assert NATIVE.pixel(1, 2, 3) == b"\x01\x02\x03\x00"
    be565 = PixelFormat(16, 16, True, True, 31, 63, 31, 11, 5, 0)
    assert be565.pixel(255, 0, 0) == b"\xf8\x00"
    assert be565.pixel(0, 255, 0) == b"\x07\xe0"
    assert BGR233.pixel(0, 0, 255) == b"\xc0"
    for fmt in FORMATS:
        for rgb in [(0, 0, 0), (255, 255, 255), (12, 130, 250), (128, 127, 1)]:
            assert fmt.value(*rgb) == reference_value(fmt, *rgb)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bpp}-{int(f.big_endian)}-{f.red_shift}")
def test_convert_matches_reference(fmt: PixelFormat) -> None:
    rng = random.Random(fmt.pack())
    for w, h in [(1, 1), (7, 3), (33, 17)]:
        image = random_image(rng, w, h)
        data = fmt.convert(image)
        assert len(data) == w * h * fmt.bytes_per_pixel
        assert decode_values(fmt, data) == reference_convert(fmt, image)
    # Every channel value, so every LUT entry is exercised.
    ramp = Image.frombytes(
        "RGB",
        (256, 1),
        bytes(v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)),
    )
    assert decode_values(fmt, fmt.convert(ramp)) == reference_convert(fmt, ramp)


def test_convert_unused_bits_zero_except_native_pad() -> None:
    rng = random.Random(1)
    image = random_image(rng, 5, 5)
    fmt = PixelFormat(16, 15, False, True, 31, 31, 31, 10, 5, 0)
    data = fmt.convert(image)
    assert all(
        int.from_bytes(data[i : i + 2], "little") & 0x8000 == 0 for i in range(0, len(data), 2)
    )


def test_convert_native_is_pillow_rgbx() -> None:
    image = random_image(random.Random(2), 9, 4)
    assert NATIVE.convert(image) == image.tobytes("raw", "RGBX")


def test_convert_accepts_other_modes() -> None:
    image = Image.new("L", (3, 3), 200)
    assert NATIVE.convert(image) == NATIVE.convert(image.convert("RGB"))


@st.composite
def sane_formats(draw: st.DrawFn) -> PixelFormat:
    bpp = draw(st.sampled_from([8, 16, 32]))
    bits = [draw(st.integers(1, min(8, bpp // 3 + (2 if bpp == 8 else 0)))) for _ in range(3)]
    while sum(bits) > bpp:
        bits = [max(1, b - 1) for b in bits]
    order = draw(st.permutations([0, 1, 2]))
    free = bpp - sum(bits)
    shifts = [0, 0, 0]
    pos = 0
    for chan in order:
        gap = draw(st.integers(0, free))
        free -= gap
        pos += gap
        shifts[chan] = pos
        pos += bits[chan]
    fmt = PixelFormat(
        bpp,
        bpp,
        draw(st.booleans()),
        True,
        (1 << bits[0]) - 1,
        (1 << bits[1]) - 1,
        (1 << bits[2]) - 1,
        *shifts,
    )
    assert fmt.problem() is None, (fmt, fmt.problem())
    return fmt


@settings(max_examples=80, deadline=None)
@given(
    fmt=sane_formats(),
    w=st.integers(1, 12),
    h=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
def test_convert_random_formats(fmt: PixelFormat, w: int, h: int, seed: int) -> None:
    image = random_image(random.Random(seed), w, h)
    assert decode_values(fmt, fmt.convert(image)) == reference_convert(fmt, image)
