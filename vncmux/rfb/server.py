"""The RFB (VNC) server for viewers of a console: the names other modules import.

The server is split by job, along the lines of TigerVNC's common/rfb:

- ``vncmux.rfb.factory``: ``RFBFactory``, what the sessions of one console share;
- ``vncmux.rfb.session``: ``RFBServerProtocol``, one viewer's session (glue and states);
- ``vncmux.rfb.handshake``: the protocol version;
- ``vncmux.rfb.security``: one object per security type (None, VNC auth, VeNCrypt and
  its X509None/X509Vnc/X509Plain subtypes) behind ``ISecurity``;
- ``vncmux.rfb.reader``: parsing client messages, size limits, malformed input;
- ``vncmux.rfb.writer``: every server→client byte layout;
- ``vncmux.rfb.updates``: the parked request, held damage, owed pseudo-rectangles;
- ``vncmux.rfb.encode_manager``: the viewer's encoder, rectangle limits, stream sharing.

Hostile input that broke other servers is handled on purpose: security types that were not
offered, insane pixel formats, huge ClientCutText lengths (streamed and discarded past the
cap, never allocated; inflated clipboard data bounded too), FBUR rectangles that overflow,
Fence payloads over 64 bytes, unknown message types, per-host authentication guessing
(TigerVNC's blacklist: 5 failures, then 10 s doubling, and every failure answered only after
a short delay), handshakes that never finish (a deadline, and a cap on handshakes in
progress that evicts the oldest of the busiest host), viewers that never read (nothing is
queued for them past ``max_output`` bytes; they are dropped), and closes that never finish
(aborted after ``close_grace``).
"""

from __future__ import annotations

from vncmux.rfb.factory import (
    AUTH_FAILURE_DELAY,
    HANDSHAKE_TIMEOUT,
    MAX_CUT_TEXT,
    MAX_OUTPUT,
    MAX_PENDING,
    SHARE_POLICIES,
    STALL_TIMEOUT,
    RFBFactory,
)
from vncmux.rfb.handshake import negotiate_version
from vncmux.rfb.session import RFBServerProtocol, State, peer_label

__all__ = [
    "AUTH_FAILURE_DELAY",
    "HANDSHAKE_TIMEOUT",
    "MAX_CUT_TEXT",
    "MAX_OUTPUT",
    "MAX_PENDING",
    "SHARE_POLICIES",
    "STALL_TIMEOUT",
    "RFBFactory",
    "RFBServerProtocol",
    "State",
    "negotiate_version",
    "peer_label",
]
