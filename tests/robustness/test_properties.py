"""Property tests (hypothesis) over the parts that eat untrusted input: the RFB message
parser after a valid handshake, the key mapper, and terminal + renderer.

CI runs a modest number of examples; a longer developer run:
``VNCMUX_HYPOTHESIS_PROFILE=long pytest tests/robustness/test_properties.py``.
"""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fake_console import FakeConsole as FakeDisplay
from tests.support.fakes import Events
from tests.support.rfb_client import Client, make_factory
from vncmux.console.damage import Damage
from vncmux.console.keys import KeyMapper
from vncmux.console.modes import Modes
from vncmux.console.render import Renderer
from vncmux.console.terminal import Terminal
from vncmux.rfb.server import State

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("VNCMUX_HYPOTHESIS_PROFILE", "ci"))

# -- RFB messages --------------------------------------------------------------------------

# Mostly well-formed messages with hostile field values, so the parser gets past the type
# byte; sprinkled with raw junk.
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)
_s32 = st.integers(-(1 << 31), (1 << 31) - 1)
_message = st.one_of(
    st.builds(lambda b: struct.pack("!Bxxx", 0) + b, st.binary(min_size=16, max_size=16)),
    st.builds(
        lambda ns: struct.pack(f"!BxH{len(ns)}i", 2, len(ns), *ns),
        st.lists(
            st.one_of(_s32, st.sampled_from([0, 1, 5, 7, 16, -223, -308, -312, -313, -1063131698])),
            max_size=40,
        ),
    ),
    st.builds(
        lambda i, x, y, w, h: struct.pack("!BBHHHH", 3, i, x, y, w, h),
        st.integers(0, 255),
        _u16,
        _u16,
        _u16,
        _u16,
    ),
    st.builds(lambda d, k: struct.pack("!BBxxI", 4, d, k), st.integers(0, 1), _u32),
    st.builds(lambda m, x, y: struct.pack("!BBHH", 5, m, x, y), st.integers(0, 255), _u16, _u16),
    st.builds(
        lambda n, t: struct.pack("!BxxxI", 6, n) + t,
        st.one_of(st.integers(0, 64), _u32),
        st.binary(max_size=64),
    ),
    st.builds(
        lambda f, p: struct.pack("!BxxxIB", 248, f, len(p)) + p, _u32, st.binary(max_size=70)
    ),
    st.builds(
        lambda n, b: struct.pack("!BxHHBx", 251, 100, 100, n) + b,
        st.integers(0, 4),
        st.binary(max_size=64),
    ),
    st.builds(
        lambda s, d, k, c: struct.pack("!BBHII", 255, s, d, k, c),
        st.integers(0, 2),
        st.integers(0, 1),
        _u32,
        _u32,
    ),
    st.builds(lambda b: struct.pack("!BBHHHH", 150, b, 0, 0, 10, 10), st.integers(0, 1)),
    st.binary(min_size=1, max_size=32),
)
_stream = st.lists(_message, max_size=25).map(b"".join)
_cuts = st.lists(st.integers(0, 2000), max_size=12)


def _session(data: bytes, cuts: list[int]) -> tuple[Client, bytes]:
    factory, _display, _clock = make_factory()
    c = Client(factory)
    c.send(b"RFB 003.008\n\x01\x01")
    assert c.proto.state is State.NORMAL
    c.take()
    points = sorted({min(p, len(data)) for p in cuts})
    start = 0
    for point in [*points, len(data)]:
        c.send(data[start:point])  # never raises: an exception fails the property
        start = point
    return c, c.take()


@given(_stream, _cuts)
def test_rfb_parser_never_raises_and_bounds_its_buffer(data: bytes, cuts: list[int]) -> None:
    c, _out = _session(data, cuts)
    if c.closed:
        assert c.proto.state is State.CLOSED
        assert len(c.proto._buf) == 0  # nothing kept for a closed client
    else:
        # Only an incomplete message may wait, and the longest one is SetEncodings
        # (4 + 4 * 65535 bytes) -- never more than what was sent.
        assert len(c.proto._buf) <= min(len(data), 4 + 4 * 65535)
        assert c.proto.reader.cut_held <= c.proto.factory.max_cut_text


@given(_stream, _cuts)
def test_rfb_parser_same_result_however_the_bytes_are_split(data: bytes, cuts: list[int]) -> None:
    whole, out_whole = _session(data, [])
    split, out_split = _session(data, cuts)
    assert out_whole == out_split
    assert whole.closed == split.closed
    assert whole.proto.state == split.proto.state
    assert whole.proto.console.inputs == split.proto.console.inputs
    assert whole.proto.session.paste_buffer == split.proto.session.paste_buffer


@given(st.binary(max_size=300), _cuts)
def test_rfb_handshake_with_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    factory, _display, _clock = make_factory(password=b"pw")
    c = Client(factory)
    c.take()
    start = 0
    for point in [*sorted({min(p, len(data)) for p in cuts}), len(data)]:
        c.send(data[start:point])
        start = point
    # No authentication was possible without the challenge answer: never past VNC auth
    assert c.proto.state in (State.VERSION, State.SECURITY, State.CLOSED)
    assert c.proto.damage is None


# -- keys ----------------------------------------------------------------------------------

_keysym = st.one_of(
    st.integers(0, 0xFFFF),
    st.integers(0x01000000, 0x0110FFFF),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([0xFFE1, 0xFFE3, 0xFFE9, 0xFE51, 0xFE50, 0xFF0D, 0xFF1B, 0xFFBE, 0x20AC]),
)


@given(
    st.lists(st.tuples(_keysym, st.booleans()), max_size=60),
    st.sampled_from(["utf-8", "latin-1", "cp437"]),
    st.booleans(),
    st.booleans(),
)
def test_key_mapper_total(
    events: list[tuple[int, bool]], encoding: str, app_cursor: bool, app_keypad: bool
) -> None:
    mapper = KeyMapper(encoding=encoding)
    modes = Modes(app_cursor=app_cursor, app_keypad=app_keypad)
    for keysym, down in events:
        out = mapper.key(keysym, down, modes)
        assert isinstance(out, bytes)
        if not down:
            assert out == b""  # output happens on press only


# -- terminal + renderer -------------------------------------------------------------------

_escapes = st.sampled_from(
    [
        b"\x1b[",
        b"\x1b]",
        b"\x1bP",
        b"\x1b[?",
        b"\x1b\\",
        b"\x07",
        b";",
        b"9999999999",
        b"m",
        b"H",
        b"J",
        b"K",
        b"r",
        b"b",
        b"@",
        b"L",
        b"M",
        b"h",
        b"l",
        b"\x1b(0",
        b"\x1b#8",
        b"\r\n",
        "\u0301".encode(),
        "\u4e00".encode(),
        "\U0001f600".encode(),
        b"\xff\xfe",
        b"\x1bc",
    ]
)
_output = st.lists(st.one_of(_escapes, st.binary(max_size=20)), max_size=60).map(b"".join)


@given(_output, st.integers(1, 40), st.integers(1, 12))
def test_terminal_and_renderer_total(data: bytes, cols: int, rows: int) -> None:
    events = Events()
    replies = events.replies
    term = Terminal(cols, rows, events=events)
    renderer = Renderer(cols, rows)
    size = renderer.image.size
    for piece in (data[: len(data) // 2], data[len(data) // 2 :]):
        term.feed(piece)
        damage = term.take_damage()
        assert isinstance(damage, Damage)
        renderer.render(term, damage)  # type: ignore[arg-type]
        assert renderer.image.size == size
        cx, cy = term.cursor
        assert 0 <= cx <= cols and 0 <= cy < rows
    assert all(isinstance(r, bytes) for r in replies)


def test_fake_display_is_deterministic() -> None:
    """The split property relies on FakeDisplay drawing the same image for the same input."""
    a, b = FakeDisplay(), FakeDisplay()
    a.input(b"x")
    b.input(b"x")
    assert a.image.tobytes() == b.image.tobytes()
