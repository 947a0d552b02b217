"""The client→server messages of the RFB normal phase: parsing, size limits, bad input.

``MessageReader.read`` takes one whole message from a buffer and calls the matching method
of an ``IMessageHandler`` (the session).  Each message type has a small parser that knows
its exact length and returns 0 while the message is incomplete, so the caller may feed any
split of the stream.  Input that cannot be parsed raises ``ProtocolError`` (an unknown type
cannot be sized, so nothing after it could be read either).

Hostile sizes are handled here: a ClientCutText length is only a claim (the text is kept
as it arrives up to ``max_cut_text`` and the rest is read and dropped, never allocated);
Extended Clipboard data is inflated within the same cap; Fence payloads over 64 bytes and
invalid pixel formats are protocol errors.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from twisted.logger import Logger
from zope.interface import Interface

from vncmux.rfb.pixels import PixelFormat

log = Logger()

MAX_FENCE_PAYLOAD = 64

# Extended clipboard flags: formats in the low bits, actions in the top byte.
CLIP_TEXT = 1 << 0
CLIP_CAPS = 1 << 24
CLIP_REQUEST = 1 << 25
CLIP_PEEK = 1 << 26
CLIP_NOTIFY = 1 << 27
CLIP_PROVIDE = 1 << 28

_U32 = struct.Struct("!I")


class ProtocolError(Exception):
    """The client sent something that cannot be parsed or must not be accepted; the
    message says what (for the log line that closes the connection)."""


class IMessageHandler(Interface):
    """What a session does with each parsed client message."""

    def setPixelFormat(fmt: PixelFormat) -> None:
        """A valid pixel format (invalid ones never reach the handler)."""

    def setEncodings(numbers: tuple[int, ...]) -> None:
        """The client's encodings, in its order of preference."""

    def framebufferUpdateRequest(incremental: bool, x: int, y: int, w: int, h: int) -> None:
        """A FramebufferUpdateRequest, fields as sent (not yet clipped)."""

    def keyEvent(keysym: int, down: bool) -> None:
        """A KeyEvent, or a QEMU extended key event with a keysym."""

    def pointerEvent(buttons: int, x: int, y: int) -> None:
        """A PointerEvent."""

    def clientCutText(text: str) -> None:
        """The viewer's clipboard text (ClientCutText in Latin-1, or an Extended Clipboard
        provide in UTF-8), cut to the cap."""

    def clipboardNotify(formats: int) -> None:
        """Extended Clipboard: the viewer has new clipboard data in ``formats``."""

    def clipboardPeek() -> None:
        """Extended Clipboard: the viewer asks which formats we hold."""

    def enableContinuousUpdates(enable: bool, x: int, y: int, w: int, h: int) -> None:
        """EnableContinuousUpdates."""

    def fence(flags: int, payload: bytes) -> None:
        """A Fence (payload at most 64 bytes)."""

    def setDesktopSize(width: int, height: int, screens: int) -> None:
        """SetDesktopSize (the screen layout is read and not kept)."""


class MessageReader:
    """Parses the normal phase of one connection for ``handler``.

    ``extended_clipboard`` is set by the session once it has announced the Extended
    Clipboard: only then is a "negative" ClientCutText length read as that extension."""

    def __init__(self, handler: IMessageHandler, max_cut_text: int, peer: str = "?") -> None:
        self.handler = handler
        self.max_cut_text = max_cut_text
        self.peer = peer
        self.extended_clipboard = False
        self._cut_remaining = 0
        self._cut_buf = bytearray()
        self._cut_declared = 0
        self._cut_extended = False
        self._parsers: dict[int, Callable[[bytearray, int, int], int]] = {
            0: self._setPixelFormat,
            2: self._setEncodings,
            3: self._framebufferUpdateRequest,
            4: self._keyEvent,
            5: self._pointerEvent,
            6: self._clientCutText,
            150: self._enableContinuousUpdates,
            248: self._fence,
            251: self._setDesktopSize,
            255: self._qemu,
        }

    @property
    def cut_held(self) -> int:
        """Bytes of clipboard text held while a ClientCutText is still arriving."""
        return len(self._cut_buf)

    def read(self, buf: bytearray, pos: int, avail: int) -> int:
        """Handle the message at ``buf[pos:]``; the bytes used, or 0 to wait for more.

        Raises ProtocolError for input that closes the connection."""
        if self._cut_remaining:
            return self._cutTextData(buf, pos, avail)
        parser = self._parsers.get(buf[pos])
        if parser is None:
            raise ProtocolError(f"unknown message type {buf[pos]}")
        return parser(buf, pos, avail)

    def clear(self) -> None:
        """Drop what is held (the connection is gone)."""
        self._cut_buf = bytearray()
        self._cut_remaining = 0

    # -- the messages (each returns the bytes used, 0 = wait for more) ------------------------

    def _setPixelFormat(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 20:
            return 0
        try:
            fmt = PixelFormat.parse(bytes(buf[pos + 4 : pos + 20]))
            problem = fmt.problem()
        except (ValueError, struct.error) as e:
            problem = str(e)
        if problem is not None:
            raise ProtocolError(f"invalid pixel format: {problem}")
        self.handler.setPixelFormat(fmt)
        return 20

    def _setEncodings(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 4:
            return 0
        count = (buf[pos + 2] << 8) | buf[pos + 3]
        size = 4 + 4 * count
        if avail < size:
            return 0
        self.handler.setEncodings(struct.unpack_from(f"!{count}i", buf, pos + 4))
        return size

    def _framebufferUpdateRequest(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 10:
            return 0
        incremental, x, y, w, h = struct.unpack_from("!BHHHH", buf, pos + 1)
        self.handler.framebufferUpdateRequest(bool(incremental), x, y, w, h)
        return 10

    def _keyEvent(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        (keysym,) = _U32.unpack_from(buf, pos + 4)
        self.handler.keyEvent(keysym, buf[pos + 1] != 0)
        return 8

    def _pointerEvent(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 6:
            return 0
        mask, x, y = struct.unpack_from("!BHH", buf, pos + 1)
        self.handler.pointerEvent(mask, x, y)
        return 6

    def _clientCutText(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        (length,) = _U32.unpack_from(buf, pos + 4)
        # The length is only a claim: the text is collected as it arrives, up to the cap,
        # and the rest is read and dropped.  A "negative" length is the extended clipboard,
        # but only once we announced it; before that it is a plain count.
        self._cut_extended = self.extended_clipboard and length >= 0x80000000
        if self._cut_extended:
            length = (1 << 32) - length
        self._cut_declared = length
        self._cut_remaining = length
        self._cut_buf = bytearray()
        if length == 0:
            self._cutTextDone()
        return 8

    def _cutTextData(self, buf: bytearray, pos: int, avail: int) -> int:
        take = min(avail, self._cut_remaining)
        room = self.max_cut_text - len(self._cut_buf)
        if room > 0:
            self._cut_buf += buf[pos : pos + min(take, room)]
        self._cut_remaining -= take
        if self._cut_remaining == 0:
            self._cutTextDone()
        return take

    def _cutTextDone(self) -> None:
        data, self._cut_buf = bytes(self._cut_buf), bytearray()
        truncated = self._cut_declared > len(data)
        if self._cut_extended:
            if truncated:
                log.info(
                    "VNC viewer {peer}: extended clipboard message of {n} bytes dropped",
                    peer=self.peer,
                    n=self._cut_declared,
                )
            else:
                self._extendedClipboard(data)
            return
        if truncated:
            log.info(
                "VNC viewer {peer}: clipboard text of {n} bytes cut to {cap}",
                peer=self.peer,
                n=self._cut_declared,
                cap=len(data),
            )
        self.handler.clientCutText(data.decode("latin-1"))

    def _extendedClipboard(self, data: bytes) -> None:
        """One complete Extended Clipboard message (the payload after the length)."""
        if len(data) < 4:
            return
        (flags,) = _U32.unpack_from(data)
        if flags & CLIP_CAPS:
            # The viewer's caps list its actions as flag bits too (provide among them):
            # nothing to do, and never to be read as a provide message.
            return
        if flags & CLIP_PROVIDE:
            if flags & CLIP_TEXT:
                text = self._providedText(data[4:])
                if text is not None:
                    self.handler.clientCutText(text)
        elif flags & CLIP_NOTIFY:
            self.handler.clipboardNotify(flags & 0xFFFF)
        elif flags & CLIP_PEEK:
            self.handler.clipboardPeek()
        # request: we never announce data of our own, so there is nothing to send

    def _providedText(self, compressed: bytes) -> str | None:
        """The text format from a provide message's zlib stream, inflated within the cap."""
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(compressed, self.max_cut_text + 4)
        except zlib.error as e:
            log.info("VNC viewer {peer}: bad clipboard data ({e})", peer=self.peer, e=e)
            return None
        if len(raw) < 4:
            return None
        (size,) = _U32.unpack_from(raw)
        text = raw[4 : 4 + size]
        if size > len(text):
            log.info(
                "VNC viewer {peer}: clipboard text of {n} bytes cut to {cap}",
                peer=self.peer,
                n=size,
                cap=len(text),
            )
        return text.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def _enableContinuousUpdates(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 10:
            return 0
        enable, x, y, w, h = struct.unpack_from("!BHHHH", buf, pos + 1)
        self.handler.enableContinuousUpdates(bool(enable), x, y, w, h)
        return 10

    def _fence(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 9:
            return 0
        length = buf[pos + 8]
        if length > MAX_FENCE_PAYLOAD:
            raise ProtocolError(f"Fence payload of {length} bytes (at most {MAX_FENCE_PAYLOAD})")
        if avail < 9 + length:
            return 0
        (flags,) = _U32.unpack_from(buf, pos + 4)
        self.handler.fence(flags, bytes(buf[pos + 9 : pos + 9 + length]))
        return 9 + length

    def _setDesktopSize(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 8:
            return 0
        width, height, screens = struct.unpack_from("!HHB", buf, pos + 2)
        size = 8 + 16 * screens
        if avail < size:
            return 0
        self.handler.setDesktopSize(width, height, screens)
        return size

    def _qemu(self, buf: bytearray, pos: int, avail: int) -> int:
        if avail < 2:
            return 0
        subtype = buf[pos + 1]
        if subtype != 0:
            raise ProtocolError(f"unsupported QEMU message subtype {subtype}")
        if avail < 12:
            return 0
        down, keysym, _keycode = struct.unpack_from("!HII", buf, pos + 2)
        if keysym:
            self.handler.keyEvent(keysym, down != 0)
        return 12
