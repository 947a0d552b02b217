"""Work shared across viewers: same bytes as computing afresh, bounded memory."""

from __future__ import annotations

import random
import struct
import zlib

from PIL import Image

from vncmux.rfb.encodings import HEXTILE, RAW, ZLIB, ZRLE, make_encoder
from vncmux.rfb.encodings.shared import SharedWork
from vncmux.rfb.pixels import NATIVE, PixelFormat

RGB565 = PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0)


def text_like(seed: int, size: tuple[int, int] = (160, 32)) -> Image.Image:
    rng = random.Random(seed)
    img = Image.new("RGB", size)
    colours = [(0, 0, 0), (229, 229, 229), (205, 0, 0)]
    img.putdata([rng.choice(colours) for _ in range(size[0] * size[1])])
    return img


def test_viewers_share_results_and_get_the_same_bytes_as_a_fresh_encoder() -> None:
    image = text_like(1)
    for number in (RAW, HEXTILE, ZRLE, ZLIB):
        for fmt in (NATIVE, RGB565):
            work = SharedWork()
            first, second = make_encoder(number, work), make_encoder(number, work)
            assert first is not None and second is not None
            a = first.encode(image, fmt)
            hits = work.hits
            b = second.encode(image, fmt)
            assert work.hits == hits + 1, "the second viewer reused the first one's work"
            assert a == b, "a fresh stream gives the same bytes from the shared tile data"
            alone = make_encoder(number, SharedWork())
            assert alone is not None and alone.encode(image, fmt) == a


def test_consoles_do_not_share_work() -> None:
    """Each console's SharedWork is its own: nothing leaks between two of them."""
    image = text_like(3)
    one, two = SharedWork(), SharedWork()
    first, second = make_encoder(HEXTILE, one), make_encoder(HEXTILE, two)
    assert first is not None and second is not None
    assert first.encode(image, NATIVE) == second.encode(image, NATIVE)
    assert (one.misses, one.hits, two.misses, two.hits) == (1, 0, 1, 0)
    assert len(one) == len(two) == 1


def test_different_pixels_or_formats_are_not_confused() -> None:
    raw = make_encoder(RAW, SharedWork())
    assert raw is not None
    one, two = text_like(1), text_like(2)
    assert raw.encode(one, NATIVE) != raw.encode(two, NATIVE)
    assert raw.encode(one, NATIVE) != raw.encode(one, RGB565)
    assert raw.encode(one, RGB565) == RGB565.convert(one)


def test_memory_stays_bounded() -> None:
    work = SharedWork(max_bytes=200_000)
    for seed in range(100):
        image = text_like(seed)
        value = work.get("pixels", image, NATIVE, lambda img=image: NATIVE.convert(img))
        assert value == NATIVE.convert(image)
        assert work.size <= 200_000 * 5 // 4
    assert 0 < len(work) < 100


def zrle_stream(payloads: list[bytes]) -> bytes:
    """What a viewer's single zlib inflater makes of consecutive ZRLE payloads."""
    inflater = zlib.decompressobj()
    out = b""
    for p in payloads:
        (length,) = struct.unpack("!I", p[:4])
        assert length == len(p) - 4
        out += inflater.decompress(p[4:])
    return out


def test_zrle_stream_switches_between_own_and_shared_compression() -> None:
    from vncmux.rfb.encodings.zrle import ZRLEEncoder, zrle_tiles

    work = SharedWork()
    images = [text_like(seed) for seed in range(6)]
    viewer, other = ZRLEEncoder(work), ZRLEEncoder(work)
    modes = [False, True, True, False, True, False]
    payloads = []
    for image, shared in zip(images, modes):
        viewer.share_stream = shared
        payloads.append(viewer.encode(image, NATIVE))
    assert zrle_stream(payloads) == b"".join(zrle_tiles(i, NATIVE) for i in images)
    other.share_stream = True
    other.encode(images[0], NATIVE)  # its header went out with its first frame
    assert other.encode(images[2], NATIVE) == payloads[2], "shared frames: the same bytes"


def test_keys_hold_a_digest_not_the_pixels() -> None:
    """Fifty consoles each kept frames as cache keys (27 MB a console): a key now holds a
    16-byte digest, and what is held stays within the budget counting the keys."""
    from PIL import Image

    from vncmux.rfb.encodings.shared import SharedWork
    from vncmux.rfb.pixels import NATIVE

    work = SharedWork(max_bytes=1 << 20)
    for shade in range(64):
        image = Image.new("RGB", (640, 64), (shade, 0, 0))  # 120 KB of pixels each
        assert work.get("raw", image, NATIVE, lambda: b"x" * 100) == b"x" * 100
    assert len(work) == 64, "small values are all kept: the pixels no longer count"
    assert all(len(key[3]) == 16 for key in work._entries)
    assert work.size <= work.max_bytes
