"""Pixel helpers shared by several encoders: colours as wire bytes, palette indices.

Encoders never import each other; what more than one of them needs lives here.  Nothing
here loops over pixels in Python.
"""

from __future__ import annotations

from PIL import Image

from vncmux.rfb.pixels import PixelFormat

__all__ = ["colour_bytes", "index_bytes", "pixel_image"]

_MODES = {1: "L", 2: "LA", 4: "RGBA"}


def colour_bytes(px: float | tuple[float, ...]) -> bytes:
    """One colour from ``Image.getcolors`` of a byte-band image, as its bytes in band order."""
    if isinstance(px, tuple):
        return bytes(int(v) for v in px)
    return bytes((int(px),))


def pixel_image(image: Image.Image, fmt: PixelFormat) -> Image.Image:
    """``image`` converted to ``fmt`` as an image whose bands are the pixel's wire bytes."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return Image.frombytes(_MODES[fmt.bytes_per_pixel], image.size, fmt.convert(image))


def _ordinals(values: set[int], scale: int = 1) -> tuple[dict[int, int], bytes]:
    """Ordinal of each value (times ``scale``) and the translate table doing that mapping."""
    mapping = {v: i * scale for i, v in enumerate(sorted(values))}
    table = bytearray(256)
    for v, o in mapping.items():
        table[v] = o
    return mapping, bytes(table)


def index_bytes(data: bytes, cp: int, palette: list[bytes]) -> bytes:
    """Palette index of every pixel (one byte each) for pixels with at most 16 colours.

    ``data`` is pixel bytes, ``cp`` bytes per pixel, ``palette`` every colour occurring.
    Pure C-level bytes operations: each byte lane (``data[b::cp]``) is mapped by
    ``translate``.  One lane whose values differ for every colour is the index directly
    (the usual case: text foreground and background differ in some channel).  Otherwise
    lanes are combined: the running key, at most 16 distinct values, is renumbered to
    ``ordinal * 16`` and the next lane's ordinal (< 16) is added as big integers; no byte
    overflows into its neighbour, so the sum is a per-byte addition.
    """
    n = len(data) // cp
    lanes = [b for b in range(cp) if len({px[b] for px in palette}) > 1]
    if not lanes:
        return bytes(n)
    for b in lanes:
        if len({px[b] for px in palette}) == len(palette):
            direct = bytearray(256)
            for i, px in enumerate(palette):
                direct[px[b]] = i
            return data[b::cp].translate(direct)
    first = lanes[0]
    mapping, table = _ordinals({px[first] for px in palette})
    key = data[first::cp].translate(table)
    keys = [mapping[px[first]] for px in palette]
    for b in lanes[1:]:
        kmap, ktable = _ordinals(set(keys), 16)
        lmap, ltable = _ordinals({px[b] for px in palette})
        high = int.from_bytes(key.translate(ktable), "big")
        low = int.from_bytes(data[b::cp].translate(ltable), "big")
        key = (high + low).to_bytes(n, "big")
        keys = [kmap[k] + lmap[px[b]] for k, px in zip(keys, palette)]
        if len(set(keys)) == len(palette):
            break
    final = bytearray(256)
    for i, k in enumerate(keys):
        final[k] = i
    return key.translate(final)
