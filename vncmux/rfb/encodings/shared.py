"""Work shared across viewers: encoded rectangles keyed by their content.

Every viewer of the console pulls the same damaged rows of the same framebuffer, so the
pixel conversion, the stateless encodings (Raw, Hextile) and ZRLE's tile data before
compression come out identical for every viewer with the same pixel format.  Keying that
work by the rectangle's pixels themselves (not by a frame number) needs no plumbing
between viewers, cannot go stale, and also catches repeats within one viewer (blank rows,
a redrawn status line).  Only the zlib step stays per viewer, since each viewer's zlib
stream has its own history (except for encoders that build a frame's stream once for
all viewers, see ``IEncoder.share_stream``).

There is no process-wide instance: whoever serves a console creates one ``SharedWork``
for it and hands it to every encoder it makes (``make_encoder(number, work)``), so two
consoles in one process, or two tests, never see each other's entries.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

from PIL import Image

from vncmux.rfb.pixels import PixelFormat

#: What one key costs beyond its value: the tuple, the digest, the format reference.
KEY_COST = 160


class SharedWork:
    """A least-recently-used map from (kind, format, size, digest of the pixels) to bytes,
    bounded in bytes.

    The pixels are keyed by a 128-bit BLAKE2b digest, not kept: a key that held the
    rectangle's pixels cost as much as a frame, and with one such cache per console, fifty
    consoles held over a gigabyte of old frames.

    Promises: ``get`` returns exactly what ``compute`` would (barring a BLAKE2b collision);
    memory held stays under ``max_bytes`` (keys included), whatever the input.
    """

    def __init__(self, max_bytes: int = 8 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, PixelFormat, tuple[int, int], bytes], bytes] = (
            OrderedDict()
        )
        self._size = 0
        self._recent: dict[tuple[str, PixelFormat, int], tuple[Image.Image, bytes]] = {}
        self._recent_size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held, counting the pixel keys, the values and the recent crops."""
        return self._size + self._recent_size

    def get(
        self, kind: str, image: Image.Image, fmt: PixelFormat, compute: Callable[[], bytes]
    ) -> bytes:
        # Fast path: the display hands every viewer the same crop object for the same
        # rows of the same frame; the entry keeps that image alive, so its id is unique.
        same = self._recent.get((kind, fmt, id(image)))
        if same is not None and same[0] is image:
            self.hits += 1
            return same[1]
        value = self._by_content(kind, image, fmt, compute)
        cost = image.width * image.height * 3 + len(value)
        if self._recent_size + cost > self.max_bytes // 4:
            self._recent.clear()  # only the current frame's crops matter here
            self._recent_size = 0
        self._recent[(kind, fmt, id(image))] = (image, value)
        self._recent_size += cost
        return value

    def _by_content(
        self, kind: str, image: Image.Image, fmt: PixelFormat, compute: Callable[[], bytes]
    ) -> bytes:
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        key = (kind, fmt, image.size, digest)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        value = compute()
        cost = KEY_COST + len(value)
        if cost > self.max_bytes // 4:
            return value  # too big to be worth keeping
        self._entries[key] = value
        self._size += cost
        while self._size > self.max_bytes:
            old_key, old_value = self._entries.popitem(last=False)
            self._size -= KEY_COST + len(old_value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()
        self._recent_size = 0
        self._size = 0
