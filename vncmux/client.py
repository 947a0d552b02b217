"""A small synchronous client for vncmux's HTTP/JSON API (``--api``), for scripts.

Standard library only (``http.client``), over a UNIX socket or TCP, with a bearer token
when the API wants one::

    from vncmux.client import Client

    c = Client("unix:/run/vncmux/guest.api")          # or "tcp:127.0.0.1:8700", token=...
    c.wait_screen(r"login: ?$", timeout=300)
    c.send("root\\r")
    offset = c.send("uname -a; echo done-$?\\r")
    print(c.wait_output(r"done-(\\d+)", timeout=30, from_=offset)["groups"])

Every call opens its own connection (nothing to close, safe to use from several threads).
An answer other than 200 raises ``ApiError`` (``WaitTimeout`` for a wait that timed out).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = ["ApiError", "Client", "WaitTimeout"]

PREFIX = "/api/v1/"
#: Seconds a socket waits beyond a ``wait``'s own timeout before giving up on vncmux.
SLACK = 10.0


class ApiError(Exception):
    """vncmux answered with an error: ``status`` (an HTTP code) and its ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class WaitTimeout(ApiError):
    """A ``wait_screen``/``wait_output`` pattern did not show up in time (408)."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a UNIX socket (the host name only fills the Host header)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _endpoint_options(parts: list[str]) -> tuple[list[str], dict[str, str]]:
    """A Twisted endpoint string's fields after the type: positional ones and ``key=value``."""
    positional = [p for p in parts if "=" not in p]
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    return positional, options


def parse_address(address: str) -> tuple[str, str, int]:
    """``unix:PATH``, a path with a slash, ``tcp:HOST:PORT``, ``HOST:PORT`` or
    ``http://HOST:PORT`` → (kind, path or host, port).  The endpoint string given to
    vncmux's ``--api`` works too (``unix:PATH:mode=600``, ``tcp:PORT:interface=HOST``), so
    a script can reuse it as it is."""
    if address.startswith("unix:"):
        positional, options = _endpoint_options(address[len("unix:") :].split(":"))
        if options:  # vncmux's endpoint form: unix:PATH[:mode=...]
            return "unix", options.get("address", ":".join(positional)), 0
        return "unix", address[len("unix:") :], 0
    if address.startswith("tcp:") and ("=" in address or address.count(":") == 1):
        positional, options = _endpoint_options(address[len("tcp:") :].split(":"))
        port = options.get("port", positional[0] if positional else "")
        if port.isdigit():  # vncmux's endpoint form: tcp:PORT[:interface=HOST]
            return "tcp", options.get("interface", "127.0.0.1").strip("[]"), int(port)
    if "/" in address and not address.startswith("http://"):
        return "unix", address, 0
    rest = address.removeprefix("http://").removeprefix("tcp:").rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r}: expected unix:PATH or tcp:HOST:PORT")
    return "tcp", host.strip("[]") or "127.0.0.1", int(port)


class Client:
    """The API at ``address`` (see ``parse_address``), with ``token`` if it needs one;
    ``timeout`` is the socket timeout of calls that do not wait."""

    def __init__(self, address: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.kind, self.where, self.port = parse_address(address)
        self.token = token
        self.timeout = timeout

    # -- plumbing ------------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.kind == "unix":
            return _UnixConnection(self.where, timeout)
        return http.client.HTTPConnection(self.where, self.port, timeout=timeout)

    def _open(
        self,
        method: str,
        route: str,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = -1.0,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request, return the connection and a 200 response (``ApiError``
        otherwise).  ``timeout``: seconds, None for none, negative for ``self.timeout``."""
        path = PREFIX + route
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            path += "?" + urlencode(params)
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        conn = self._connection(self.timeout if timeout is not None and timeout < 0 else timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if response.status != 200:
            try:
                data = response.read()
            finally:
                conn.close()
            raise _error(response.status, data)
        return conn, response

    def _call(self, method: str, route: str, **kw: Any) -> tuple[bytes, http.client.HTTPResponse]:
        conn, response = self._open(method, route, **kw)
        try:
            return response.read(), response
        finally:
            conn.close()

    def _json(self, method: str, route: str, **kw: Any) -> dict[str, Any]:
        data, _response = self._call(method, route, **kw)
        value: dict[str, Any] = json.loads(data)
        return value

    # -- reading -------------------------------------------------------------------------------

    def screen(self, attrs: bool = False) -> dict[str, Any]:
        """The screen: ``lines`` (text per row), ``cursor``, ``title``, ``modes``,
        ``offset`` (the output offset it reflects); ``spans`` per row with ``attrs``."""
        return self._json("GET", "screen", query={"attrs": "1" if attrs else None})

    def screen_text(self) -> str:
        """The screen as text, one line per row."""
        data, _ = self._call("GET", "screen", query={"format": "text"})
        return data.decode("utf-8")

    def screenshot(self) -> bytes:
        """The console as viewers see it, as PNG."""
        return self._call("GET", "screen.png")[0]

    def output(self, from_: int | None = None, tail: int | None = None) -> tuple[int, bytes]:
        """(where the data really starts, the bytes): from offset ``from_`` (default: the
        oldest held), or the last ``tail`` bytes.  The start is later than ``from_`` when
        that part of the output is no longer held."""
        data, response = self._call("GET", "output", query={"from": from_, "tail": tail})
        return int(response.getheader("X-Output-Start") or 0), data

    def follow(self, from_: int | None = None, tail: int | None = None) -> OutputStream:
        """The output from ``from_`` (or the last ``tail`` bytes), then new output as it
        comes: iterate over the returned stream for chunks.  It ends when vncmux ends it
        (it stops, or this reader fell behind the history); ``stream.offset`` is then
        where to resume with ``follow(from_=stream.offset)``."""
        conn, response = self._open(
            "GET", "output", query={"from": from_, "tail": tail, "follow": "1"}, timeout=None
        )
        return OutputStream(conn, response)

    def status(self) -> dict[str, Any]:
        """Device state, clients by kind, byte counters."""
        return self._json("GET", "status")

    # -- waiting -------------------------------------------------------------------------------

    def wait_screen(self, regex: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until ``regex`` (multiline: ``^``/``$`` at each row) matches the screen;
        ``{"match", "groups", "row", "col", "offset"}``.  ``WaitTimeout`` if it does not."""
        return self._json(
            "GET", "wait", query={"screen": regex, "timeout": timeout}, timeout=timeout + SLACK
        )

    def wait_output(
        self, regex: str, timeout: float = 30.0, from_: int | None = None
    ) -> dict[str, Any]:
        """Wait until ``regex`` matches the output after offset ``from_`` (default: from
        now on); ``{"match", "groups", "offset", "end"}`` (byte offsets).  A match of up
        to 4 KiB is always found.  ``WaitTimeout`` if it does not come."""
        query = {"output": regex, "timeout": timeout, "from": from_}
        return self._json("GET", "wait", query=query, timeout=timeout + SLACK)

    # -- typing --------------------------------------------------------------------------------

    def send(self, text: str | bytes) -> int:
        """Type ``text`` (str: in the console's encoding; bytes: as they are), whole.
        Returns the output offset at that moment: wait for the answer from there."""
        if isinstance(text, str):
            body, kind = text.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            body, kind = bytes(text), "application/octet-stream"
        answer = self._json("POST", "input", body=body, content_type=kind)
        return int(answer.get("offset") or 0)

    def keys(self, *names: str) -> int:
        """Press keys by name (``"Enter"``, ``"Ctrl+C"``, ``"F5"``, ``"Up"``, ``"a"``) as
        a VNC viewer would: the terminal's modes apply.  Returns the output offset."""
        body = json.dumps({"keys": list(names)}).encode("utf-8")
        answer = self._json("POST", "keys", body=body, content_type="application/json")
        return int(answer.get("offset") or 0)

    def takeover(self) -> dict[str, Any]:
        """Take the keyboard (``--input-policy exclusive``): ``{"holder", "previous"}``.
        ``ApiError`` 409 under the shared policy."""
        return self._json("POST", "takeover", body=b"")


class OutputStream:
    """A followed output: ``start`` is where its data really starts (later than asked when
    that part is no longer held), ``offset`` where the next byte will be."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._conn = conn
        self._response = response
        self.start = int(response.getheader("X-Output-Start") or 0)
        self.offset = self.start

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(65536):
                self.offset += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._conn.close()


def _error(status: int, data: bytes) -> ApiError:
    try:
        message = str(json.loads(data)["error"])
    except (ValueError, KeyError, TypeError):
        message = data.decode("utf-8", "replace").strip() or http.client.responses.get(
            status, "error"
        )
    return (WaitTimeout if status == 408 else ApiError)(status, message)
