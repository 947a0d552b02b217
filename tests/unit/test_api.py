"""The API's pure parts: tokens, key names, the screen as JSON/text, status, and the
``--api`` options (parsing, preflight)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.testing import Clock

from tests.support.fakes import FakeDevice
from vncmux.api.auth import Access, Tokens
from vncmux.api.keynames import MAX_KEYS, KeyNameError, key_events, keys_bytes
from vncmux.api.screen import match_position, row_spans, screen_state, screen_text
from vncmux.api.status import backend_kinds, status
from vncmux.config import ConfigError, build_config, exposure_warnings, parse_api
from vncmux.console.cells import Cell
from vncmux.console.console import Console
from vncmux.console.keys import XK_F1, XK_Control_L, XK_Return
from vncmux.console.modes import Modes
from vncmux.hub import Hub
from vncmux.preflight import check_api, warnings

# -- auth ----------------------------------------------------------------------------------


def test_no_token_configured_is_full_access_for_anyone() -> None:
    assert Tokens().access(None) is Access.FULL


def test_tokens_grant_full_or_view_access() -> None:
    tokens = Tokens(full="s3cret", view="look")
    assert tokens.access(b"Bearer s3cret") is Access.FULL
    assert tokens.access(b"bearer look") is Access.VIEW
    assert tokens.access(b"Bearer  s3cret ") is Access.FULL


@pytest.mark.parametrize(
    "header", [None, b"", b"Bearer", b"Bearer wrong", b"Basic s3cret", b"s3cret", b"Bearer s3cre"]
)
def test_a_missing_or_wrong_token_is_refused(header: bytes | None) -> None:
    assert Tokens(full="s3cret", view="look").access(header) is None


def test_a_view_token_alone_never_grants_full_access() -> None:
    tokens = Tokens(view="look")
    assert tokens.access(b"Bearer look") is Access.VIEW
    assert tokens.access(None) is None


# -- key names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Enter"], b"\r"),
        (["Return", "Tab", "Esc"], b"\r\t\x1b"),
        (["Ctrl+C"], b"\x03"),
        (["ctrl+c"], b"\x03"),
        (["Ctrl+Shift+A"], b"\x01"),
        (["F5"], b"\x1b[15~"),
        (["f1"], b"\x1bOP"),
        (["Up", "Down", "Left", "Right"], b"\x1b[A\x1b[B\x1b[D\x1b[C"),
        (["Shift+Tab"], b"\x1b[Z"),
        (["Shift+a"], b"A"),
        (["Alt+x"], b"\x1bx"),
        (["PgUp", "PageDown"], b"\x1b[5~\x1b[6~"),
        (["Space", "+", "Ctrl++"], b" ++"),
        (["é", "€"], "é€".encode()),
        (["Backspace", "Delete"], b"\x7f\x1b[3~"),
    ],
)
def test_key_names_send_what_xterm_sends(names: list[str], expected: bytes) -> None:
    assert keys_bytes(names, Modes()) == expected


def test_key_names_obey_the_terminal_modes_as_vnc_does() -> None:
    assert keys_bytes(["Up"], Modes(app_cursor=True)) == b"\x1bOA"
    assert keys_bytes(["Enter"], Modes(newline_mode=True)) == b"\r\n"


def test_key_names_use_the_console_encoding() -> None:
    assert keys_bytes(["é"], Modes(), encoding="latin-1") == b"\xe9"


def test_key_events_press_modifiers_around_the_key() -> None:
    assert key_events("Ctrl+Enter") == [
        (XK_Control_L, True),
        (XK_Return, True),
        (XK_Return, False),
        (XK_Control_L, False),
    ]
    assert key_events("F1") == [(XK_F1, True), (XK_F1, False)]


@pytest.mark.parametrize("name", ["", "Foo", "Hyper+a", "F0", "F36", "ab", "Ctrl+", "\x07"])
def test_unknown_key_names_are_refused_with_the_name(name: str) -> None:
    with pytest.raises(KeyNameError) as error:
        keys_bytes(["a", name], Modes())
    assert "key" in str(error.value) or "modifier" in str(error.value)


def test_too_many_keys_in_one_request_are_refused() -> None:
    keys_bytes(["a"] * MAX_KEYS, Modes())
    with pytest.raises(KeyNameError, match="more than"):
        keys_bytes(["a"] * (MAX_KEYS + 1), Modes())


# -- the screen ----------------------------------------------------------------------------


def test_row_spans_group_cells_that_look_alike() -> None:
    cells = [
        Cell("a", fg="red"),
        Cell("b", fg="red"),
        Cell("c", bold=True, bg="00ff00"),
        Cell(" "),
    ]
    assert row_spans(cells) == [
        {"col": 0, "width": 2, "text": "ab", "fg": "red", "bg": "default"},
        {"col": 2, "width": 1, "text": "c", "fg": "default", "bg": "00ff00", "bold": True},
        {"col": 3, "width": 1, "text": " ", "fg": "default", "bg": "default"},
    ]


def test_row_spans_keep_a_wide_character_in_one_span_of_two_columns() -> None:
    cells = [Cell("界"), Cell(""), Cell("e\u0301", underscore=True)]
    assert row_spans(cells) == [
        {"col": 0, "width": 2, "text": "界", "fg": "default", "bg": "default"},
        {
            "col": 2,
            "width": 1,
            "text": "e\u0301",
            "fg": "default",
            "bg": "default",
            "underscore": True,
        },
    ]


def fed_console(data: bytes, cols: int = 20, rows: int = 4) -> Console:
    clock = Clock()
    hub = Hub(clock)
    hub.deviceConnected(FakeDevice())
    console = Console(hub, clock, cols, rows)
    console.start()
    hub.deviceOutput(data)
    clock.advance(0)
    return console


def test_screen_state_has_text_cursor_title_and_modes() -> None:
    console = fed_console(b"\x1b]2;my title\x07hello\r\n\x1b[31mw\xc3\xb6rld\x1b[?1h\x1b[?25l")
    state = screen_state(console, 42)
    assert state["lines"] == ["hello", "wörld", "", ""]
    assert (state["cols"], state["rows"]) == (20, 4)
    assert state["cursor"] == {"row": 1, "col": 5, "visible": False}
    assert state["title"] == "my title"
    assert state["modes"]["application_cursor"] is True
    assert state["modes"]["alternate_screen"] is False
    assert state["offset"] == 42
    assert "spans" not in state
    spans = screen_state(console, 42, attrs=True)["spans"]
    assert spans[1][0] == {"col": 0, "width": 5, "text": "wörld", "fg": "red", "bg": "default"}


def test_screen_state_reports_the_alternate_screen() -> None:
    console = fed_console(b"main\x1b[?1049hALT")
    state = screen_state(console, None)
    assert state["modes"]["alternate_screen"] is True
    assert state["lines"][0] == "    ALT"  # the cursor stays where it was, as in xterm


def test_screen_text_ends_every_row_with_a_newline() -> None:
    assert screen_text(["a", "", "b"]) == "a\n\nb\n"


def test_match_position_counts_rows_and_characters() -> None:
    text = "first\nsecond row\nthird"
    assert match_position(text, text.index("row")) == (1, 7)
    assert match_position(text, 0) == (0, 0)
    assert match_position(text, text.index("third")) == (2, 0)


# -- status --------------------------------------------------------------------------------


def test_status_counts_bytes_reconnects_and_backends() -> None:
    clock = Clock()
    clock.advance(100)
    hub = Hub(clock)
    console = Console(hub, clock, 10, 2)
    console.start()
    device = FakeDevice()
    hub.deviceConnected(device, "dev connected")
    hub.deviceOutput(b"12345")
    hub.input(b"ab")
    clock.advance(5)
    hub.deviceLost("dev: gone")
    clock.advance(1)
    hub.deviceConnected(device, "dev connected")
    clock.advance(2)
    report = status(hub, clock.seconds(), console)
    assert report["device"]["up"] is True
    assert report["device"]["reconnects"] == 1
    assert report["device"]["since"] == 106
    assert report["device"]["for"] == 2
    assert report["bytes"] == {"out": 5, "in": 2, "input_dropped": 0}
    assert report["clients"]["backends"] == {"console": 1}
    assert report["clients"]["vnc_viewers"] == 0


def test_backend_kinds_name_unknown_backends_by_class() -> None:
    class Odd:
        pass

    assert backend_kinds([Odd(), Odd()]) == {"Odd": 2}


# -- options -------------------------------------------------------------------------------


def test_api_on_a_unix_socket_is_private_by_default() -> None:
    assert parse_api("unix:/run/x.api").endpoint == "unix:/run/x.api:mode=600"
    assert parse_api("unix:/run/x.api:mode=660").endpoint == "unix:/run/x.api:mode=660"


def test_api_on_tcp_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="needs --api-token-file"):
        parse_api("tcp:8700:interface=127.0.0.1")
    spec = parse_api("tcp:8700:interface=127.0.0.1", token_file="/t")
    assert spec.token_file == "/t" and spec.endpoint == "tcp:8700:interface=127.0.0.1"
    assert parse_api("tcp:8700", view_token_file="/v").view_token_file == "/v"


def test_api_endpoint_mistakes_name_the_api_option() -> None:
    with pytest.raises(ConfigError, match="^--api "):
        parse_api("udp:8700", token_file="/t")
    with pytest.raises(ConfigError, match="--api .*port"):
        parse_api("tcp:http", token_file="/t")


def test_build_config_carries_the_api() -> None:
    assert build_config().api is None
    config = build_config(api="unix:/tmp/a", api_token_file="/t", api_view_token_file="/v")
    assert config.api is not None and config.api.view_token_file == "/v"
    with pytest.raises(ConfigError, match="need --api"):
        build_config(api_token_file="/t")


def _token(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_preflight_reads_the_token_files(tmp_path: Path) -> None:
    full = _token(tmp_path, "full", "abc\nignored\n")
    view = _token(tmp_path, "view", "def\n")
    check_api(build_config(api="tcp:0", api_token_file=full, api_view_token_file=view))


def test_preflight_refuses_an_empty_or_shared_token(tmp_path: Path) -> None:
    empty = _token(tmp_path, "empty", "\n")
    with pytest.raises(ConfigError, match="empty"):
        check_api(build_config(api="tcp:0", api_token_file=empty))
    full = _token(tmp_path, "full", "same\n")
    view = _token(tmp_path, "view", "same\n")
    with pytest.raises(ConfigError, match="same token"):
        check_api(build_config(api="tcp:0", api_token_file=full, api_view_token_file=view))


def test_preflight_warns_about_a_readable_token_file(tmp_path: Path) -> None:
    full = _token(tmp_path, "full", "abc\n", mode=0o644)
    lines = warnings(build_config(api="tcp:0", api_token_file=full))
    assert any("--api-token-file" in line and "every user" in line for line in lines)


def test_an_api_beyond_loopback_over_plain_http_is_warned_about() -> None:
    def warned(endpoint: str) -> bool:
        config = build_config(api=endpoint, api_token_file="/t")
        return any("API" in line for line in exposure_warnings(config))

    assert warned("tcp:8700")
    assert warned("tcp:8700:interface=0.0.0.0")
    assert not warned("tcp:8700:interface=127.0.0.1")
    assert not warned("unix:/run/x.api")
    assert not warned("ssl:8700:privateKey=k.pem")
