"""Tests for vncmux.rfb.pixels: wire form, validation, and fast conversion vs a slow reference."""

from __future__ import annotations

import random
import struct
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.support.pixel_reference import (
    FORMATS,
    decode_values,
    mask,
    random_image,
    reference_convert,
    reference_value,
    sane_formats,
)
from vncmux.rfb.pixels import BGR233, NATIVE, PixelFormat, colour_map_entries


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
    # The spare byte is 0xff, as in every converted image (see test_spare_bits_*).
    assert NATIVE.pixel(1, 2, 3) == b"\x01\x02\x03\xff"
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


def test_convert_unused_bits_zero_below_32_bpp() -> None:
    rng = random.Random(1)
    image = random_image(rng, 5, 5)
    fmt = PixelFormat(16, 15, False, True, 31, 31, 31, 10, 5, 0)
    data = fmt.convert(image)
    assert all(
        int.from_bytes(data[i : i + 2], "little") & 0x8000 == 0 for i in range(0, len(data), 2)
    )


SPARE_FORMATS = [f for f in FORMATS if f.bpp == 32] + [
    PixelFormat(32, 16, True, True, 31, 63, 31, 19, 13, 8),  # colour in the middle bytes
    PixelFormat(32, 24, True, True, 255, 255, 255, 24, 16, 8),  # RGBX byte order, big-endian
]


@pytest.mark.parametrize("fmt", SPARE_FORMATS, ids=lambda f: f.pack().hex())
def test_spare_bits_are_ones_in_every_32_bpp_pixel(fmt: PixelFormat) -> None:
    """Issue 13 item 12: the bits outside the colour masks are the same in every pixel we
    produce, whatever the layout (Pillow's packers alone write 0xff for RGBX, 0 for the
    other byte orders): all ones, which alpha-reading viewers show as opaque."""
    spare = 0xFFFFFFFF & ~mask(fmt)
    assert spare and fmt.spare_bits == spare
    order: Literal["big", "little"] = "big" if fmt.big_endian else "little"
    image = random_image(random.Random(7), 9, 5)
    data = fmt.convert(image)
    words = [int.from_bytes(data[i : i + 4], order) for i in range(0, len(data), 4)]
    assert all(w & spare == spare for w in words)
    assert [w & ~spare for w in words] == reference_convert(fmt, image)
    for rgb in [(0, 0, 0), (255, 255, 255), (12, 130, 250)]:
        assert int.from_bytes(fmt.pixel(*rgb), order) == fmt.value(*rgb) | spare
        solid = fmt.convert(Image.new("RGB", (1, 1), rgb))
        assert solid == fmt.pixel(*rgb), "a single colour and an image agree, spare included"


def test_no_spare_bits_below_32_bpp() -> None:
    for fmt in FORMATS:
        if fmt.bpp < 32:
            assert fmt.spare_bits == 0
            assert fmt.pixel(255, 255, 255) == fmt.convert(Image.new("RGB", (1, 1), "white"))


def test_convert_native_is_pillow_rgbx() -> None:
    image = random_image(random.Random(2), 9, 4)
    assert NATIVE.convert(image) == image.tobytes("raw", "RGBX")


def test_convert_accepts_other_modes() -> None:
    image = Image.new("L", (3, 3), 200)
    assert NATIVE.convert(image) == NATIVE.convert(image.convert("RGB"))


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
