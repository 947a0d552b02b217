"""Pixel formats from the RFB spec, checked the slow way: a per-pixel reference conversion
written straight from the spec, a decoder for what a conversion produced, random images,
a list of real-world formats and a hypothesis strategy for every sane true-colour format.

The encoders' tests and the pixel tests both compare vncmux's fast paths against these."""

from __future__ import annotations

import random
from typing import Literal

from hypothesis import strategies as st
from PIL import Image

from vncmux.rfb.pixels import BGR233, NATIVE, PixelFormat


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
