"""ZRLE's faster paths (issue 14 item 5): palette indices packed by ``int()`` match Pillow's
packers, and tiles encoded a band at a time decode to the same pixels as tiles encoded one
by one, in every pixel format the encoder tests use."""

from __future__ import annotations

import random
import zlib

import pytest
from PIL import Image, ImageDraw

from tests.support.encoding_reference import ENC_FORMATS, zrle_decode
from tests.support.pixel_reference import reference_convert
from vncmux.rfb.encodings import zrle
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.encodings.zrle import ZRLEEncoder
from vncmux.rfb.pixels import PixelFormat


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("size", [(64, 64), (8, 3), (16, 1), (5, 7), (13, 64), (64, 0)])
def test_pack_matches_pillows_packers(bits: int, size: tuple[int, int]) -> None:
    rng = random.Random(f"{bits}{size}")
    w, h = size
    index = bytes(rng.randrange(1 << bits) for _ in range(w * h))
    packer = {1: "P;1", 2: "P;2", 4: "P;4"}[bits]
    expected = Image.frombytes("P", (w, h), index).tobytes("raw", packer) if w * h else b""
    assert zrle._pack(index, w, h, bits) == expected


def text_like(rng: random.Random, colours: int) -> Image.Image:
    """Rows of glyph-like boxes on a background: bands of at most ``colours`` colours,
    with tiles that use one, some or all of them; 150 px wide, so the last tile is cut."""
    palette = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(colours)]
    image = Image.new("RGB", (150, 140), palette[0])
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(0, 140), rng.randrange(0, 130)
        if x < 64 and y < 64:
            continue  # the first tile stays one colour
        draw.rectangle(
            (x, y, x + rng.randrange(1, 9), y + rng.randrange(1, 15)), fill=rng.choice(palette)
        )
    return image


@pytest.mark.parametrize("fmt", ENC_FORMATS, ids=lambda f: f.pack().hex())
@pytest.mark.parametrize("colours", [1, 2, 5, 16, 17])
def test_band_tiles_decode_to_the_image(fmt: PixelFormat, colours: int) -> None:
    rng = random.Random(f"{fmt.pack().hex()}{colours}")
    image = text_like(rng, colours)
    payload = ZRLEEncoder(SharedWork()).encode(image, fmt)
    got = zrle_decode(payload, fmt, image.width, image.height, zlib.decompressobj())
    assert got == reference_convert(fmt, image)


def test_bands_of_few_colours_take_the_band_path() -> None:
    """The band path is what runs for text (else this speed-up is not exercised)."""
    from vncmux.rfb.pixels import NATIVE

    cimg, cp = zrle.cpixel_image(text_like(random.Random(1), 2), NATIVE)
    out = bytearray()
    assert zrle._band_tiles(cimg, cp, 0, 64, out)
    assert out
    assert not zrle._band_tiles(*zrle.cpixel_image(noise(), NATIVE), 0, 64, bytearray())


def noise() -> Image.Image:
    rng = random.Random(2)
    return Image.frombytes("RGB", (64, 64), bytes(rng.randrange(256) for _ in range(64 * 64 * 3)))
