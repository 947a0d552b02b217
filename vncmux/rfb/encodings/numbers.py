"""RFB encoding numbers: real encodings and pseudo-encodings.

Numbers are those of the community rfbproto specification (signed 32-bit, as they appear
in SetEncodings and in rectangle headers).  Only values, no behaviour.
"""

from __future__ import annotations

# Real encodings.
RAW = 0
COPYRECT = 1
RRE = 2
CORRE = 4
HEXTILE = 5
ZLIB = 6
TIGHT = 7
ZLIBHEX = 8
TRLE = 15
ZRLE = 16
JPEG = 21

# Pseudo-encodings.
DESKTOP_SIZE = -223
LAST_RECT = -224
POINTER_POS = -232
CURSOR = -239
X_CURSOR = -240
COMPRESS_LEVEL_0 = -256  # .. -247 for levels 0..9
QEMU_POINTER_MOTION_CHANGE = -257
QEMU_EXTENDED_KEY = -258
QEMU_AUDIO = -259
TIGHT_PNG = -260
QEMU_LED_STATE = -261
GII = -305
DESKTOP_NAME = -307
EXTENDED_DESKTOP_SIZE = -308
XVP = -309
FENCE = -312
CONTINUOUS_UPDATES = -313
CURSOR_WITH_ALPHA = -314
EXTENDED_MOUSE_BUTTONS = -316
JPEG_QUALITY_0 = -32  # .. -23 for levels 0..9
EXTENDED_CLIPBOARD = 0xC0A1E5CE - (1 << 32)  # -1063131698 as a signed S32
