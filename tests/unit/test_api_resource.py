"""The API's routes on fake requests: authorisation, every route's answer, JSON errors for
bad input, waits answered later, streams that pause and catch up."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from twisted.internet.address import UNIXAddress
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.web.test.requesthelper import DummyChannel
from zope.interface.verify import verifyObject

from tests.support.api_setup import FULL, VIEW, Request, Setup
from tests.support.fakes import FakeDevice
from vncmux.api import resource
from vncmux.api.auth import Tokens
from vncmux.api.follow import OutputFollower
from vncmux.api.resource import INPUT_ROOM_TIMEOUT, MAX_BODY, ApiRequest
from vncmux.api.service import makeApiService
from vncmux.hub import Hub
from vncmux.specs import ApiSpec


@pytest.fixture
def s() -> Setup:
    return Setup()


# -- authorisation -------------------------------------------------------------------------


def test_a_request_without_a_valid_token_is_refused_and_logged(s: Setup) -> None:
    with capturedLogs() as events:
        request = s.call("GET", "/api/v1/screen", auth=b"Bearer nope")
    assert request.responseCode == 401
    assert request.json() == {"error": "a valid bearer token is required"}
    assert request.responseHeaders.getRawHeaders(b"www-authenticate") == [b'Bearer realm="vncmux"']
    assert any("authentication failed" in formatEvent(e) for e in events)
    assert s.call("GET", "/api/v1/screen", auth=None).responseCode == 401


def test_a_host_guessing_tokens_is_blocked_like_a_vnc_guesser(s: Setup) -> None:
    """Five wrong tokens block the host for 10 s (429, even with the right token), as on
    the VNC port; the block ends on time."""
    for _ in range(5):
        assert s.call("GET", "/api/v1/screen", auth=b"Bearer guess").responseCode == 401
    blocked = s.call("GET", "/api/v1/screen")
    assert blocked.responseCode == 429
    assert blocked.responseHeaders.getRawHeaders(b"retry-after") == [b"11"]
    s.clock.advance(10.5)
    assert s.call("GET", "/api/v1/screen").responseCode == 200


@pytest.mark.parametrize("route", ["input", "keys"])
def test_the_view_token_reads_but_cannot_type(s: Setup, route: str) -> None:
    assert s.call("GET", "/api/v1/screen", auth=VIEW).responseCode == 200
    request = s.call("POST", f"/api/v1/{route}", b"Enter", auth=VIEW)
    assert request.responseCode == 403
    assert "full-access token" in request.json()["error"]
    assert s.device.written == []


def test_an_open_api_lets_every_request_in() -> None:
    s = Setup(Tokens())
    assert s.call("POST", "/api/v1/input", b"x", auth=None).responseCode == 200
    assert s.device.written == [b"x"]


# -- routing and errors --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/v2/screen", "/api/v1/nothing", "/api/v1/"])
def test_unknown_paths_are_404_json(s: Setup, path: str) -> None:
    request = s.call("GET", path)
    assert request.responseCode == 404 and "no such endpoint" in request.json()["error"]


def test_a_wrong_method_is_405_with_allow(s: Setup) -> None:
    request = s.call("GET", "/api/v1/input")
    assert request.responseCode == 405
    assert request.responseHeaders.getRawHeaders(b"allow") == [b"POST"]


def test_a_body_too_large_is_400(s: Setup) -> None:
    request = Request("POST", "/api/v1/input", b"x")
    request.requestHeaders.setRawHeaders(b"authorization", [FULL])
    request.tooLarge = True  # type: ignore[attr-defined]  # ApiRequest's flag past MAX_BODY
    answer = s.api.handle(request)
    assert request.responseCode == 400 and isinstance(answer, bytes) and b"larger than" in answer
    assert s.device.written == []


def test_a_failing_handler_is_500_json_and_logged(s: Setup, monkeypatch: Any) -> None:
    monkeypatch.setattr(s.api, "route_status", lambda request, peer: 1 / 0)
    with capturedLogs() as events:
        request = s.call("GET", "/api/v1/status")
    assert request.responseCode == 500
    assert "Traceback" not in request.body.decode() and "internal error" in request.json()["error"]
    assert any(e.get("log_failure") is not None for e in events)


# -- screen --------------------------------------------------------------------------------


def test_screen_as_json_and_text(s: Setup) -> None:
    s.feed(b"hello\r\n\x1b[1;32mworld")
    state = s.call("GET", "/api/v1/screen").json()
    assert state["lines"] == ["hello", "world", ""]
    assert state["offset"] == s.history.end
    assert "spans" not in state
    spans = s.call("GET", "/api/v1/screen?attrs=1").json()["spans"]
    assert spans[1][0] == {
        "col": 0,
        "width": 5,
        "text": "world",
        "fg": "green",
        "bg": "default",
        "bold": True,
    }
    text = s.call("GET", "/api/v1/screen?format=text")
    assert text.body == b"hello\nworld\n\n"
    assert text.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain; charset=utf-8"]
    assert s.call("GET", "/api/v1/screen?format=xml").responseCode == 400


def test_screen_offset_leaves_out_what_the_terminal_has_not_read_yet(s: Setup) -> None:
    s.feed(b"abc")
    s.hub.deviceOutput(b"pending")  # not fed to the terminal until the next turn
    assert s.call("GET", "/api/v1/screen").json()["offset"] == 3


def test_screen_png_is_the_current_framebuffer(s: Setup) -> None:
    s.feed(b"\x1b[41m  red  ")
    request = s.call("GET", "/api/v1/screen.png")
    image = Image.open(io.BytesIO(request.body))
    assert image.size == (s.console.width, s.console.height)
    pixel = image.convert("RGB").getpixel((2, 2))
    assert isinstance(pixel, tuple) and pixel[0] > 150 > pixel[1]  # red, rendered now


# -- output --------------------------------------------------------------------------------


def test_output_from_an_offset_with_its_real_start(s: Setup) -> None:
    s.feed(b"0123456789")
    request = s.call("GET", "/api/v1/output?from=4")
    assert request.body == b"456789"
    assert request.responseHeaders.getRawHeaders(b"x-output-start") == [b"4"]
    assert request.responseHeaders.getRawHeaders(b"x-output-end") == [b"10"]
    assert s.call("GET", "/api/v1/output?tail=3").body == b"789"


def test_output_says_where_it_starts_when_the_start_was_overwritten(s: Setup) -> None:
    s.feed(bytes(range(100)))  # the history holds 64 bytes
    request = s.call("GET", "/api/v1/output?from=10")
    assert request.responseHeaders.getRawHeaders(b"x-output-start") == [b"36"]
    assert request.body == bytes(range(36, 100))


@pytest.mark.parametrize("query", ["from=11", "from=-1", "from=x", "from=1&tail=2", "tail=-5"])
def test_bad_output_offsets_are_400(s: Setup, query: str) -> None:
    s.feed(b"0123456789")
    request = s.call("GET", f"/api/v1/output?{query}")
    assert request.responseCode == 400 and request.json()["error"]


def test_followed_output_streams_new_output_and_ends_when_the_client_goes(s: Setup) -> None:
    s.feed(b"abc")
    request = s.call("GET", "/api/v1/output?from=1&follow=1")
    assert request.body == b"bc" and not request.finished
    s.feed(b"def")
    assert request.body == b"bcdef"
    verifyObject(IPushProducer, request.producer)
    assert s.call("GET", "/api/v1/status").json()["clients"]["api_streams"] == 1
    request.processingFailed(Exception("client gone"))  # fires notifyFinish's errback
    s.feed(b"ghi")
    assert request.body == b"bcdef" and not s.api.followers


def test_a_paused_stream_catches_up_from_the_history(s: Setup) -> None:
    request = s.call("GET", "/api/v1/output?follow=1")
    request.producer.pauseProducing()
    s.feed(b"one ")
    s.feed(b"two")
    assert request.body == b""
    request.producer.resumeProducing()
    assert request.body == b"one two"
    s.feed(b"!")
    assert request.body == b"one two!"


def test_a_stream_that_fell_behind_the_history_ends(s: Setup) -> None:
    request = s.call("GET", "/api/v1/output?follow=1")
    follower = request.producer
    assert isinstance(follower, OutputFollower)
    follower.pauseProducing()
    s.feed(b"x" * 100)  # more than the 64 bytes held
    with capturedLogs() as events:
        follower.resumeProducing()
    assert request.finished and request.body == b""
    assert any("fell behind" in formatEvent(e) for e in events)
    assert not s.api.followers and not s.history._subscribers


# -- input and keys ------------------------------------------------------------------------


def test_input_raw_and_text_reaches_the_device_whole(s: Setup) -> None:
    s.feed(b"12345")
    answer = s.call("POST", "/api/v1/input", b"\x00\xffraw").json()
    assert answer == {"sent": 5, "offset": 5}
    body = "é\n".encode("latin-1")
    s.call("POST", "/api/v1/input", body, content_type="text/plain; charset=latin-1")
    assert s.device.written == [b"\x00\xffraw", "é\n".encode()]  # in the console's encoding


def test_empty_or_undecodable_input_is_400(s: Setup) -> None:
    assert s.call("POST", "/api/v1/input", b"").responseCode == 400
    bad = s.call("POST", "/api/v1/input", b"\xff", content_type="text/plain; charset=utf-8")
    assert bad.responseCode == 400 and "not text" in bad.json()["error"]


def test_input_while_the_device_is_down_is_503(s: Setup) -> None:
    s.hub.deviceLost("gone")
    request = s.call("POST", "/api/v1/input", b"x")
    assert request.responseCode == 503 and "down" in request.json()["error"]


def test_input_waits_while_the_device_is_not_taking_input(s: Setup) -> None:
    producer = s.hub.inputProducer(s.device)
    producer.pauseProducing()  # the device's write buffer is full
    request = s.call("POST", "/api/v1/input", b"later")
    assert not request.finished and s.device.written == []
    producer.resumeProducing()
    assert request.finished and s.device.written == [b"later"]
    producer.pauseProducing()
    slow = s.call("POST", "/api/v1/input", b"never")
    s.clock.advance(INPUT_ROOM_TIMEOUT)
    assert slow.responseCode == 503 and slow.finished
    assert s.device.written == [b"later"]


def test_keys_go_through_the_key_mapper_with_the_terminal_modes(s: Setup) -> None:
    s.call("POST", "/api/v1/keys", b'{"keys": ["Up", "Ctrl+C"]}', content_type="application/json")
    s.feed(b"\x1b[?1h")  # application cursor keys
    s.call("POST", "/api/v1/keys", b"Up Enter", content_type="text/plain")
    assert s.device.written == [b"\x1b[A\x03", b"\x1bOA\r"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"keys": ["Nope"]}', "application/json"),
        (b'{"keys": "Enter"}', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"{", "application/json"),
        (b"", "text/plain"),
    ],
)
def test_bad_key_requests_are_400(s: Setup, body: bytes, kind: str) -> None:
    request = s.call("POST", "/api/v1/keys", body, content_type=kind)
    assert request.responseCode == 400 and request.json()["error"]
    assert s.device.written == []


# -- wait ----------------------------------------------------------------------------------


def test_a_screen_wait_is_answered_when_the_text_shows(s: Setup) -> None:
    request = s.call("GET", "/api/v1/wait?screen=ok%20(%5Cd)&timeout=5")
    assert not request.finished
    s.feed(b"all ok 3")
    assert request.finished and request.responseCode == 200
    assert request.json()["groups"] == ["3"]


def test_waits_in_flight_are_bounded_per_console(s: Setup) -> None:
    """Past ``MAX_WAITS`` a wait is refused (503, Retry-After) and logged; once one is
    answered there is room again."""
    waits = [
        s.call("GET", f"/api/v1/wait?{kind}=never{i}&timeout=60")
        for i in range(resource.MAX_WAITS)
        for kind in ["screen" if i % 2 else "output"]
    ]
    assert not any(w.finished for w in waits)
    with capturedLogs() as events:
        refused = s.call("GET", "/api/v1/wait?screen=x&timeout=60")
    assert refused.responseCode == 503 and "in flight" in refused.json()["error"]
    assert refused.responseHeaders.getRawHeaders(b"retry-after") == [b"1"]
    assert any("waits in flight" in formatEvent(e) for e in events)
    s.feed(b"never1")  # (answers the screen wait for "never1")
    assert waits[1].finished and waits[1].responseCode == 200
    again = s.call("GET", "/api/v1/wait?screen=x&timeout=60")
    assert not again.finished


def test_a_wait_that_times_out_is_408(s: Setup) -> None:
    request = s.call("GET", "/api/v1/wait?output=never&timeout=2")
    s.clock.advance(2)
    assert request.responseCode == 408 and "no match" in request.json()["error"]


def test_an_output_wait_from_an_offset(s: Setup) -> None:
    s.feed(b"done\n")
    request = s.call("GET", "/api/v1/wait?output=done&from=0")
    assert request.json() == {"match": "done", "groups": [], "offset": 0, "end": 4}
    later = s.call("GET", "/api/v1/wait?output=done")  # default: from now on
    assert not later.finished
    s.feed(b"done")
    assert later.json()["offset"] == 5


def test_a_wait_whose_client_left_is_forgotten(s: Setup) -> None:
    request = s.call("GET", "/api/v1/wait?screen=never")
    assert s.api.screenWatch is not None and s.api.screenWatch.waiting == 1
    request.processingFailed(Exception("client gone"))
    assert s.api.screenWatch.waiting == 0
    assert s.clock.getDelayedCalls() == []


@pytest.mark.parametrize(
    "query",
    [
        "screen=(",
        "output=(",
        "",
        "screen=a&output=b",
        "screen=a&timeout=x",
        "screen=a&timeout=-1",
        "screen=a&timeout=nan",
        "screen=a&timeout=99999",
        "output=a&from=999",
    ],
)
def test_bad_waits_are_400(s: Setup, query: str) -> None:
    request = s.call("GET", f"/api/v1/wait?{query}")
    assert request.responseCode == 400 and request.json()["error"]


@pytest.mark.parametrize(
    ("query", "re2_says"),
    [
        ("output=%28a%29%5C1", r"invalid escape sequence: \1"),  # (a)\1
        ("screen=%28%3F%3D.%2Ax%29", "invalid perl operator: (?="),  # (?=.*x)
        ("screen=x%28%3F%3C%21y%29", "invalid perl operator: (?<!"),  # x(?<!y)
    ],
)
def test_a_back_reference_or_look_around_is_400_in_plain_words_and_logged(
    s: Setup, query: str, re2_says: str
) -> None:
    with capturedLogs() as events:
        request = s.call("GET", f"/api/v1/wait?{query}&timeout=5")
    assert request.responseCode == 400
    error = request.json()["error"]
    assert "back-references and look-around are not supported: patterns are RE2 syntax" in error
    assert f"(RE2: {re2_says})" in error
    logged = [formatEvent(e) for e in events]
    assert any(line.startswith("API client ") and "wait refused" in line for line in logged)
    assert any(re2_says in line for line in logged)
    assert s.api.screenWatch is not None and s.api.screenWatch.waiting == 0


def test_patterns_that_backtrack_without_end_in_re_are_run(s: Setup) -> None:
    s.feed(b"a" * 60)  # the whole screen: what these would take minutes over in re
    found = s.call("GET", "/api/v1/wait?screen=%28a%2B%29%2B%24&timeout=5")  # (a+)+$
    assert found.responseCode == 200 and found.json()["match"] == "a" * 20
    found = s.call("GET", "/api/v1/wait?output=%28.%2Aa%29%7B20%7D&from=0")  # (.*a){20}
    assert found.responseCode == 200 and found.json()["end"] == 60
    s.call("GET", "/api/v1/wait?screen=%28a%7Caa%29%2Ab&timeout=5")  # (a|aa)*b: not there
    assert s.api.screenWatch is not None and s.api.screenWatch.waiting == 1


# -- status and closing --------------------------------------------------------------------


def test_status_reports_the_device_and_the_api_clients(s: Setup) -> None:
    s.feed(b"abc")
    s.call("GET", "/api/v1/wait?screen=never")
    state = s.call("GET", "/api/v1/status").json()
    assert state["device"]["up"] is True and state["device"]["reconnects"] == 0
    assert state["bytes"]["out"] == 3
    assert state["clients"]["api_waiters"] == 1
    assert state["clients"]["backends"] == {"history": 1, "console": 1}
    assert state["history"] == {"start": 0, "end": 3, "size": 64}


def test_close_ends_streams_and_drops_waits(s: Setup) -> None:
    stream = s.call("GET", "/api/v1/output?follow=1")
    wait = s.call("GET", "/api/v1/wait?screen=never")
    s.api.close()
    assert stream.finished and not s.api.followers
    assert s.api.screenWatch is not None and s.api.screenWatch.waiting == 0
    assert wait.body == b""  # nothing answered: the connection goes with the process


# -- the listening service, over HTTP in memory ------------------------------------------------


class Served:
    """makeApiService on a MemoryReactorClock, and one in-memory HTTP connection to it."""

    def __init__(self, tmp_path: Path) -> None:
        token = tmp_path / "token"
        token.write_text("tok\n")
        self.reactor = MemoryReactorClock()
        self.hub = Hub(self.reactor)
        self.hub.deviceConnected(FakeDevice())
        spec = ApiSpec(endpoint=f"unix:{tmp_path}/api.sock:mode=600", token_file=str(token))
        with capturedLogs() as events:
            self.service = makeApiService(spec, self.hub, self.reactor)
        self.logged = [formatEvent(e) for e in events]

    def connect(self) -> StringTransport:
        factory = self.reactor.unixServers[0][1]
        protocol = factory.buildProtocol(UNIXAddress(None))
        transport = StringTransport(
            hostAddress=UNIXAddress(b"/run/api.sock"), peerAddress=UNIXAddress(None)
        )
        protocol.makeConnection(transport)
        self.protocol = protocol
        return transport


def test_the_service_listens_privately_and_answers_http(tmp_path: Path) -> None:
    served = Served(tmp_path)
    assert served.reactor.unixServers[0][3] == 0o600  # the socket's mode
    assert any("API on unix:" in line and "bearer token" in line for line in served.logged)
    transport = served.connect()
    served.protocol.dataReceived(
        b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n"
    )
    head, _sep, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b'"up": true' in body


def test_a_body_over_the_limit_is_read_dropped_and_answered_400(tmp_path: Path) -> None:
    served = Served(tmp_path)
    transport = served.connect()
    size = MAX_BODY + 1000
    served.protocol.dataReceived(
        b"POST /api/v1/input HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
        b"Content-Length: %d\r\n\r\n" % size
    )
    for _ in range(size // 65536 + 1):
        served.protocol.dataReceived(b"x" * 65536)
    assert transport.value().startswith(b"HTTP/1.1 400 ")
    assert b"larger than" in transport.value()
    assert served.hub.inputBytes == 0


def test_a_chunked_body_over_the_limit_is_kept_bounded() -> None:
    request = ApiRequest(DummyChannel())
    request.gotLength(None)
    for _ in range(MAX_BODY // 65536 + 2):
        request.handleContentChunk(b"y" * 65536)
    assert request.tooLarge
    assert request.content is not None and request.content.tell() <= MAX_BODY


def test_one_output_answer_is_bounded_and_says_where_it_stopped(
    s: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resource, "MAX_OUTPUT_READ", 4)
    s.feed(b"0123456789")
    request = s.call("GET", "/api/v1/output?from=2")
    assert request.body == b"2345"
    assert request.responseHeaders.getRawHeaders(b"x-output-end") == [b"6"]
