"""RFB pixel formats: parse, validate, and convert Pillow images to client pixels.

A viewer may ask for any PIXEL_FORMAT at any time (rfbproto 7.4.1 / 7.5.1).  This module
holds the value type for that format, the validation that keeps hostile formats out (the
class of bugs behind QEMU CVE-2014-7815 and CVE-2015-8504), and the conversion of an RGB
framebuffer rectangle into the client's pixel bytes.  Conversion is done entirely with
Pillow C-level operations (packers, 8-bit look-up tables, band arithmetic), never with a
Python loop over pixels, because it runs for every update of every viewer.

Pure logic, no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from PIL import Image, ImageChops

__all__ = ["BGR233", "NATIVE", "PixelFormat", "apply_lut", "colour_map_entries"]

_STRUCT = struct.Struct("!BBBBHHHBBBxxx")


def apply_lut(image: Image.Image, table: list[int]) -> Image.Image:
    """``image.point(table)`` for an integer table, without Pillow's per-call rounding.

    ``Image.point`` rebuilds the table with ``round()`` on every call, which costs more
    than the C mapping itself for small tiles; the encoders call it per tile.  Uses the
    core object directly and falls back to the public API if Pillow ever changes it.
    """
    try:
        return image._new(image.im.point(table, None))
    except (AttributeError, TypeError):  # pragma: no cover - other Pillow versions
        return image.point(table)


def _bits(value: int) -> int:
    """Number of significant bits in ``value`` (0 for 0)."""
    return value.bit_length()


def _scale(v: int, maximum: int) -> int:
    """Map an 8-bit channel value onto ``0..maximum`` with rounding."""
    return (v * maximum + 127) // 255


@dataclass(frozen=True)
class PixelFormat:
    """One RFB PIXEL_FORMAT, exactly the 16 bytes a client or server sends.

    Instances are immutable and hashable so per-format caches (look-up tables, packer
    choice) can be keyed on them and shared by every viewer using the same format.
    """

    bpp: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    # -- wire form -------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> PixelFormat:
        """Decode the 16-byte PIXEL_FORMAT structure (padding ignored).

        Parsing never fails on field values; call :meth:`problem` before using it.
        """
        if len(data) != 16:
            raise ValueError(f"PIXEL_FORMAT is 16 bytes, got {len(data)}")
        bpp, depth, be, tc, rm, gm, bm, rs, gs, bs = _STRUCT.unpack(data)
        return cls(bpp, depth, be != 0, tc != 0, rm, gm, bm, rs, gs, bs)

    def pack(self) -> bytes:
        """Encode as the 16-byte PIXEL_FORMAT structure, padding zero."""
        return _STRUCT.pack(
            self.bpp,
            self.depth,
            1 if self.big_endian else 0,
            1 if self.true_colour else 0,
            self.red_max,
            self.green_max,
            self.blue_max,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
        )

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies on the wire (bpp / 8)."""
        return self.bpp // 8

    # -- validation ------------------------------------------------------------------

    def problem(self) -> str | None:
        """Return None when the format is usable, else a human-readable reason.

        Rules follow TigerVNC's ``PixelFormat::isSane`` with one deliberate relaxation:

        - bits per pixel is 8, 16 or 32; depth is 1..bpp;
        - colour-map mode only at 8 bpp (the channel fields are then ignored and
          :meth:`effective` substitutes :data:`BGR233`);
        - true colour: every max is 2^n - 1 and non-zero, ``bits(max) + shift <= bpp``
          and the three channel masks do not overlap.

        TigerVNC also refuses formats whose channel bits add up to more than ``depth``.
        We do not: depth is informational for every encoding we implement except ZRLE's
        CPIXEL rule, which reads depth exactly as sent, so the client and we agree anyway.
        Refusing would only disconnect clients that send a sloppy depth.
        """
        if self.bpp not in (8, 16, 32):
            return f"bits per pixel must be 8, 16 or 32, not {self.bpp}"
        if self.depth == 0 or self.depth > self.bpp:
            return f"depth {self.depth} not in 1..{self.bpp}"
        if not self.true_colour:
            if self.bpp != 8:
                return f"colour-map mode needs 8 bits per pixel, not {self.bpp}"
            return None
        masks = []
        for name, maximum, shift in (
            ("red", self.red_max, self.red_shift),
            ("green", self.green_max, self.green_shift),
            ("blue", self.blue_max, self.blue_shift),
        ):
            if maximum == 0:
                return f"{name} max is 0"
            if maximum & (maximum + 1):
                return f"{name} max {maximum} is not 2^n-1"
            if _bits(maximum) + shift > self.bpp:
                return f"{name} channel (max {maximum}, shift {shift}) exceeds {self.bpp} bits"
            masks.append((name, maximum << shift))
        for i in range(3):
            for j in range(i + 1, 3):
                if masks[i][1] & masks[j][1]:
                    return f"{masks[i][0]} and {masks[j][0]} channels overlap"
        return None

    def effective(self) -> PixelFormat:
        """The true-colour format pixels are actually produced in.

        Colour-map clients get :data:`BGR233` pixel values after the server has sent
        :func:`colour_map_entries` with SetColourMapEntries; everyone else gets itself.
        """
        return self if self.true_colour else BGR233

    # -- single colours --------------------------------------------------------------

    def value(self, r: int, g: int, b: int) -> int:
        """The pixel value (an integer) of one 8-bit RGB colour."""
        f = self.effective()
        return (
            (_scale(r, f.red_max) << f.red_shift)
            | (_scale(g, f.green_max) << f.green_shift)
            | (_scale(b, f.blue_max) << f.blue_shift)
        )

    @cached_property
    def spare_bits(self) -> int:
        """The bits outside the colour channels, set in every pixel we send at 32 bpp.

        rfbproto leaves them unspecified; we make them the same in every path (Raw,
        Hextile, ZRLE, Tight, solid fills and images alike): all ones at 32 bpp, because
        viewers that keep 32-bit pixels as they arrive treat that byte as alpha (gtk-vnc,
        hence gvnccapture's PNGs, copies it straight into its alpha channel), so ones
        mean opaque.  Below 32 bpp no viewer reads them as alpha: they stay zero.
        """
        f = self.effective()
        if f.bpp != 32:
            return 0
        colour = (
            (f.red_max << f.red_shift)
            | (f.green_max << f.green_shift)
            | (f.blue_max << f.blue_shift)
        )
        return 0xFFFFFFFF & ~colour

    def pixel(self, r: int, g: int, b: int) -> bytes:
        """The wire bytes of one 8-bit RGB colour (``value`` plus :attr:`spare_bits`)."""
        return (self.value(r, g, b) | self.spare_bits).to_bytes(
            self.bytes_per_pixel, "big" if self.big_endian else "little"
        )

    # -- images ----------------------------------------------------------------------

    def convert(self, image: Image.Image) -> bytes:
        """The RGB ``image`` as pixels in this format, row-major, no row padding.

        Bits outside the three channel masks are :attr:`spare_bits`.  Raises ValueError
        for a format :meth:`problem` rejects.
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        plan = self._plan
        if isinstance(plan[0], str):
            mode, spare_at = plan
            data = image.tobytes("raw", mode)
            if spare_at is None:
                return data
            # Pillow's packers write 0 into the spare byte of these layouts (0xff only in
            # RGBX's): set it, in one C-level slice assignment.
            filled = bytearray(data)
            filled[spare_at::4] = b"\xff" * (len(data) // 4)
            return bytes(filled)
        luts, order, merge_mode = plan
        planes = []
        for k in order:
            banded = apply_lut(image, luts[k])
            r, g, b = banded.split()
            planes.append(ImageChops.add(ImageChops.add(r, g), b))
        if merge_mode == "L":
            return planes[0].tobytes()
        return Image.merge(merge_mode, planes).tobytes()

    @cached_property
    def _plan(self) -> tuple[str, int | None] | tuple[list[list[int]], list[int], str]:
        """How :meth:`convert` works for this format, computed once per instance.

        Either a Pillow raw mode (byte-aligned 32-bpp layouts) and the index of the spare
        byte Pillow leaves at 0 (None when it writes 0xff itself), or per output byte a
        768-entry LUT for ``Image.point`` (one 256-entry table per band giving that
        channel's contribution to the byte; the red one also carries the spare bits),
        the byte order, and the merge mode.  The contributions never share bits, so
        adding the three bands is an OR.
        """
        reason = self.problem()
        if reason is not None:
            raise ValueError(f"cannot convert to an insane pixel format: {reason}")
        f = self.effective()
        nbytes = f.bytes_per_pixel
        if nbytes == 4 and (f.red_max, f.green_max, f.blue_max) == (255, 255, 255):
            shifts = (f.red_shift, f.green_shift, f.blue_shift)
            if all(s % 8 == 0 for s in shifts):
                layout = ["X"] * 4
                for letter, s in zip("RGB", shifts):
                    pos = 3 - s // 8 if f.big_endian else s // 8
                    layout[pos] = letter
                mode = "".join(layout)
                if mode in ("RGBX", "BGRX", "XBGR", "XRGB"):
                    return mode, None if mode == "RGBX" else mode.index("X")
        spare = self.spare_bits
        luts: list[list[int]] = []
        for k in range(nbytes):
            table: list[int] = []
            for maximum, shift in (
                (f.red_max, f.red_shift),
                (f.green_max, f.green_shift),
                (f.blue_max, f.blue_shift),
            ):
                table.extend(((_scale(v, maximum) << shift) >> (8 * k)) & 0xFF for v in range(256))
            spare_byte = (spare >> (8 * k)) & 0xFF
            if spare_byte:
                table[:256] = [v | spare_byte for v in table[:256]]
            luts.append(table)
        order = list(range(nbytes))
        if f.big_endian:
            order.reverse()
        merge_mode = {1: "L", 2: "LA", 4: "RGBA"}[nbytes]
        return luts, order, merge_mode


NATIVE = PixelFormat(32, 24, False, True, 255, 255, 255, 0, 8, 16)
"""The server's format (ServerInit): what noVNC asks for, so it needs no conversion."""

BGR233 = PixelFormat(8, 8, False, True, 7, 7, 3, 0, 3, 6)
"""8-bit true colour; also how colour-map clients are served (see ``effective``)."""


def colour_map_entries() -> list[tuple[int, int, int]]:
    """The fixed 256-entry palette (16-bit RGB) sent to colour-map clients.

    Entry ``i`` is the colour of the BGR233 pixel value ``i``, so after sending it the
    server can convert exactly as for a BGR233 true-colour client.
    """
    f = BGR233
    entries = []
    for i in range(256):
        r = (i >> f.red_shift) & f.red_max
        g = (i >> f.green_shift) & f.green_max
        b = (i >> f.blue_shift) & f.blue_max
        entries.append((r * 65535 // f.red_max, g * 65535 // f.green_max, b * 65535 // f.blue_max))
    return entries
