"""``vncmux.client`` and ``vncmux-ctl`` against a stand-in HTTP server (stdlib, in a thread):
what they send (path, query, token, body) and how they read answers and errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vncmux import ctl
from vncmux.client import ApiError, Client, WaitTimeout, parse_address


class Handler(BaseHTTPRequestHandler):
    """Records each request; answers what the test queued for its path."""

    server: Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        status, headers, payload = self.server.answers.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []

    def json(self, value: Any, status: int = 200) -> None:
        self.answers.append(
            (status, {"Content-Type": "application/json"}, json.dumps(value).encode())
        )

    @property
    def address(self) -> str:
        return f"tcp:127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("unix:/run/x.api", ("unix", "/run/x.api", 0)),
        ("/run/x.api", ("unix", "/run/x.api", 0)),
        ("tcp:127.0.0.1:8700", ("tcp", "127.0.0.1", 8700)),
        ("localhost:8700", ("tcp", "localhost", 8700)),
        ("http://[::1]:8700/", ("tcp", "::1", 8700)),
        # the endpoint strings given to vncmux's --api, as they are
        ("unix:/run/x.api:mode=600", ("unix", "/run/x.api", 0)),
        ("tcp:8700:interface=127.0.0.1", ("tcp", "127.0.0.1", 8700)),
        ("tcp:port=8700:interface=localhost", ("tcp", "localhost", 8700)),
        ("tcp:8700", ("tcp", "127.0.0.1", 8700)),
    ],
)
def test_addresses(address: str, parsed: tuple[str, str, int]) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["nonsense", "tcp:host:port", "tcp:interface=localhost"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


def test_the_token_and_the_query_go_with_every_call(server: Server) -> None:
    server.json({"match": "ok", "groups": []})
    found = Client(server.address, token="t0k").wait_screen("a b$", timeout=2.5)
    assert found["match"] == "ok"
    method, path, headers, _ = server.seen[0]
    assert (method, path) == ("GET", "/api/v1/wait?screen=a+b%24&timeout=2.5")
    assert headers["Authorization"] == "Bearer t0k"


def test_send_posts_text_and_returns_the_offset(server: Server) -> None:
    server.json({"sent": 3, "offset": 77})
    server.json({"sent": 2, "offset": 80})
    client = Client(server.address)
    assert client.send("hé") == 77
    assert client.send(b"\x00\xff") == 80
    assert server.seen[0][2]["Content-Type"] == "text/plain; charset=utf-8"
    assert server.seen[0][3] == "hé".encode()
    assert server.seen[1][2]["Content-Type"] == "application/octet-stream"


def test_keys_posts_json(server: Server) -> None:
    server.json({"sent": 2, "offset": 5})
    Client(server.address).keys("Ctrl+C", "Enter")
    assert json.loads(server.seen[0][3]) == {"keys": ["Ctrl+C", "Enter"]}


def test_output_returns_where_the_data_really_starts(server: Server) -> None:
    server.answers.append((200, {"X-Output-Start": "40"}, b"data"))
    assert Client(server.address).output(from_=10) == (40, b"data")
    assert server.seen[0][1] == "/api/v1/output?from=10"


def test_a_followed_stream_counts_its_offset(server: Server) -> None:
    server.answers.append((200, {"X-Output-Start": "7"}, b"abcdef"))
    stream = Client(server.address).follow(from_=3)
    assert (stream.start, stream.offset) == (7, 7)
    assert b"".join(stream) == b"abcdef"
    assert stream.offset == 13


def test_errors_carry_the_status_and_message(server: Server) -> None:
    server.json({"error": "nope"}, status=403)
    server.json({"error": "no match within 1 s"}, status=408)
    server.answers.append((500, {}, b"not json"))
    client = Client(server.address)
    with pytest.raises(ApiError) as refused:
        client.send("x")
    assert (refused.value.status, refused.value.message) == (403, "nope")
    with pytest.raises(WaitTimeout):
        client.wait_output("x", 1)
    with pytest.raises(ApiError, match="not json"):
        client.status()


def test_ctl_wait_prints_the_match_and_exits_1_on_timeout(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json({"match": "login:", "groups": []})
    assert ctl.run(["--api", server.address, "wait", "--screen", "login:"]) == 0
    assert capsys.readouterr().out == "login:\n"
    server.json({"error": "no match within 0.1 s"}, status=408)
    assert ctl.run(["--api", server.address, "wait", "--output", "x", "--timeout", "0.1"]) == 1
    assert "no match" in capsys.readouterr().err


def test_ctl_send_line_appends_a_carriage_return(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.json({"sent": 5, "offset": 12})
    assert ctl.run(["--api", server.address, "send", "--line", "--offset", "root"]) == 0
    assert server.seen[0][3] == b"root\r"
    assert capsys.readouterr().out == "12\n"


def test_ctl_reads_the_token_from_a_file(server: Server, tmp_path: Any) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server.json({"sent": 1, "offset": 1})
    assert ctl.run(["--api", server.address, "--token-file", str(token), "keys", "Enter"]) == 0
    assert server.seen[0][2]["Authorization"] == "Bearer s3cret"


def test_ctl_without_an_api_or_with_an_error_exits_2(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNCMUX_API", raising=False)
    assert ctl.run(["screen"]) == 2
    assert "--api" in capsys.readouterr().err
    server.json({"error": "the device is down"}, status=503)
    assert ctl.run(["--api", server.address, "send", "x"]) == 2
    assert "the device is down (HTTP 503)" in capsys.readouterr().err


def test_ctl_tail_from_offset_zero_reads_from_zero(
    server: Server, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    server.answers.append((200, {"X-Output-Start": "0"}, b"all of it"))
    assert ctl.run(["--api", server.address, "tail", "--from", "0"]) == 0
    assert server.seen[0][1] == "/api/v1/output?from=0"
    assert capsysbinary.readouterr().out == b"all of it"
