"""The routes of ``/api/v1/`` and their small handlers.

One ``Api`` per console holds what the handlers read (console, hub, history) and the
watches and streams in flight; ``ApiResource`` is the twisted.web face.  Every request is
authorised first (``auth.Tokens``; a refusal is logged with the peer), then routed by
method and path.  Every error is a JSON object ``{"error": MESSAGE}`` with a 4xx/5xx status,
never a traceback: bad input (a bad regex, a wait pattern RE2 cannot run or that is too
large, an offset in the future, a body too large, an unknown key name) is 400, a
view-only token on an input route 403, an unknown route 404, a wait that timed out 408,
input while another client holds the keyboard 409 (``--input-policy exclusive``), input
while the device is down 503.

Routes (``GET`` unless said)::

    screen        JSON (?attrs=1 adds spans) or ?format=text
    screen.png    the framebuffer as viewers see it
    output        ?from=OFFSET or ?tail=BYTES (at most 16 MiB per answer), &follow=1
                  streams; X-Output-Start/-End say where the data starts and ends
    input   POST  raw bytes (application/octet-stream) or text (text/plain; charset=)
    keys    POST  {"keys": ["Ctrl+C", "Enter"]} or text/plain names separated by spaces
    takeover POST take the keyboard (exclusive input policy): {"holder", "previous"}
    break   POST  a serial BREAK to the device (?duration=SECONDS): {"sent": how}
    wait          ?screen=RE2 | ?output=RE2[&from=OFFSET], &timeout=SECONDS
    status        device state, clients, byte counters
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from vncmux.api.auth import Access, Tokens
from vncmux.api.follow import OutputFollower
from vncmux.api.keynames import KeyNameError, keys_bytes
from vncmux.api.pattern import PatternError, compile_pattern
from vncmux.api.screen import screen_state, screen_text
from vncmux.api.status import status
from vncmux.api.wait import MAX_TIMEOUT, OutputWatch, ScreenWatch, WaitTimeout
from vncmux.events import API, AUTH_FAILURE, NONE, Client
from vncmux.keyboard import describe
from vncmux.rfb.blacklist import Blacklist
from vncmux.rfb.http_limits import CountingRequest
from vncmux.sockets import peerLabel

log = Logger()

PREFIX = "/api/v1/"
#: Largest request body (input, keys); a larger one is read, dropped and answered 400.
MAX_BODY = 1 << 20
#: Most bytes one ``GET /output`` returns (``X-Output-End`` says where it stopped).
MAX_OUTPUT_READ = 16 << 20
#: Seconds ``POST /input`` waits for the device to take input before answering 503.
INPUT_ROOM_TIMEOUT = 10.0
DEFAULT_WAIT_TIMEOUT = 30.0
#: Waits in flight on one console (screen and output together): each is searched again at
#: every change, so their number bounds what a burst of output can cost.
MAX_WAITS = 64
#: Routes that type into the console: refused (403) to a view-only token.
INPUT_ROUTES = frozenset({"input", "keys", "takeover", "break"})
ROUTES = {
    "screen": "GET",
    "screen.png": "GET",
    "output": "GET",
    "input": "POST",
    "keys": "POST",
    "takeover": "POST",
    "break": "POST",
    "wait": "GET",
    "status": "GET",
}


class ApiError(Exception):
    """An answer other than 200: ``status`` and the message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ApiRequest(CountingRequest):
    """A request whose body is kept only up to ``MAX_BODY``: a larger one is read and
    dropped (memory stays bounded) and ``tooLarge`` tells the handler to answer 400."""

    tooLarge = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self.tooLarge = True
            self.content = io.BytesIO()  # type: ignore[assignment]
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > MAX_BODY:
            self.tooLarge = True
            return
        if not self.tooLarge:
            super().handleContentChunk(data)


def transport_peer(transport: Any) -> str:
    """The peer for log lines: host:port, or the socket path plus pid/uid for UNIX."""
    path = getattr(transport.getHost(), "name", None)
    fallback = f"unix:{path.decode() if isinstance(path, bytes) else path}"
    return peerLabel(transport, fallback)


def peer_of(request: Any) -> str:
    """``transport_peer`` of the request's connection."""
    channel = getattr(request, "channel", None)
    if channel is None or channel.transport is None:
        return "?"
    return transport_peer(channel.transport)


class Api:
    """One console's API: the handlers and the waits and streams in flight.

    ``console`` may be None (a pure byte multiplexer: the screen routes answer 404), and
    so may ``history`` (then the output routes do).  With ``--history 0`` the history
    holds nothing but still counts offsets: output reads are empty from ``end`` on, and
    ``X-Output-Start`` says so."""

    def __init__(
        self,
        hub: Any,
        clock: IReactorTime,
        tokens: Tokens,
        console: Any = None,
        history: Any = None,
        encoding: str = "utf-8",
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.tokens = tokens
        # the same per-host limits as the VNC port: 5 wrong tokens block a host, doubling
        self.blacklist = Blacklist(clock, what="API")
        self.console = console
        self.history = history
        self.encoding = encoding
        self.screenWatch = (
            ScreenWatch(console, clock, self.screenOffset) if console is not None else None
        )
        self.outputWatch = OutputWatch(history, clock) if history is not None else None
        self.followers: set[OutputFollower] = set()
        self._pending: set[Deferred[Any]] = set()

    # -- the request -----------------------------------------------------------------------

    def handle(self, request: Any, path: bytes | None = None) -> bytes | int:
        """Answer ``request``; ``path`` is its path below where the API is mounted
        (default: the request's own path)."""
        peer = peer_of(request)
        address = request.getClientAddress()
        wait = self.blacklist.blockedFor(address)
        if wait > 0:
            request.setHeader(b"Retry-After", str(int(wait) + 1).encode())
            return self.error(
                request, ApiError(429, f"too many failed tokens: try again in {wait:.0f} s")
            )
        access = self.tokens.access(request.getHeader(b"authorization"))
        if access is None:
            self.blacklist.failed(address)
            log.warn(
                "API client {peer}: authentication failed for {method} {path}",
                peer=peer,
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
            )
            self.hub.events.emit(AUTH_FAILURE, Client(API, peer, NONE), detail="bad token")
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="vncmux"')
            return self.error(request, ApiError(401, "a valid bearer token is required"))
        try:
            route = self._route(request, access, peer, path)
            return route(request, peer)
        except ApiError as e:
            return self.error(request, e)
        except Exception:  # noqa: BLE001 -- a bug answers 500, the process stays up
            log.failure("API client {peer}: {path} failed", peer=peer, path=request.path)
            return self.error(request, ApiError(500, "internal error (see vncmux's log)"))

    def _route(
        self, request: Any, access: Access, peer: str, local: bytes | None = None
    ) -> Callable[[Any, str], Any]:
        path = (request.path if local is None else local).decode("utf-8", "replace")
        if not path.startswith(PREFIX):
            raise ApiError(404, f"no such endpoint {path!r} (the API is under {PREFIX})")
        name = path[len(PREFIX) :]
        method = ROUTES.get(name)
        if method is None:
            known = ", ".join(PREFIX + r for r in ROUTES)
            raise ApiError(404, f"no such endpoint {path!r} (known: {known})")
        verb = request.method.decode("ascii", "replace")
        if verb != method and not (verb == "HEAD" and method == "GET"):
            request.setHeader(b"Allow", method.encode())
            raise ApiError(405, f"{path} takes {method}, not {verb}")
        if name in INPUT_ROUTES and access is not Access.FULL:
            log.warn("API client {peer}: view-only token refused {path}", peer=peer, path=path)
            raise ApiError(403, f"{path} needs the full-access token, not the view-only one")
        if getattr(request, "tooLarge", False):
            raise ApiError(400, f"request body larger than {MAX_BODY} bytes")
        handler: Callable[[Any, str], Any] = getattr(self, "route_" + name.replace(".", "_"))
        return handler

    # -- answers ---------------------------------------------------------------------------

    @staticmethod
    def json(request: Any, value: Any, code: int = 200) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(value, ensure_ascii=False).encode("utf-8") + b"\n"

    def error(self, request: Any, error: ApiError) -> bytes:
        return self.json(request, {"error": error.message}, error.status)

    def _later(self, request: Any, d: Deferred[Any], answer: Callable[[Any], bytes]) -> int:
        """Answer ``request`` when ``d`` fires (``answer`` builds the body; an ``ApiError``
        it raises, or one ``d`` fails with, is the error answer); cancel ``d`` when the
        client goes away first."""
        gone: list[bool] = []
        self._pending.add(d)

        def done(result: Any) -> None:
            self._pending.discard(d)
            if gone or (isinstance(result, Failure) and result.check(CancelledError)):
                return
            try:
                if isinstance(result, Failure):
                    result.raiseException()
                body = answer(result)
            except ApiError as e:
                body = self.error(request, e)
            except Exception:  # noqa: BLE001
                log.failure("API: answering {path} failed", path=request.path)
                body = self.error(request, ApiError(500, "internal error (see vncmux's log)"))
            request.write(body)
            request.finish()

        def lost(_: object) -> None:
            gone.append(True)
            d.cancel()

        request.notifyFinish().addErrback(lost)
        d.addBoth(done)
        return NOT_DONE_YET

    def close(self) -> None:
        """vncmux is stopping: end every stream, drop every wait."""
        for follower in list(self.followers):
            follower.close()
        for d in list(self._pending):
            d.cancel()

    # -- arguments -------------------------------------------------------------------------

    @staticmethod
    def arg(request: Any, name: str) -> str | None:
        values = request.args.get(name.encode())
        if not values:
            return None
        return str(values[-1].decode("utf-8", "replace"))

    def int_arg(self, request: Any, name: str, default: int | None = None) -> int | None:
        value = self.arg(request, name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ApiError(400, f"{name}={value!r} is not a whole number") from None
        if number < 0:
            raise ApiError(400, f"{name}={value} is negative")
        return number

    def flag(self, request: Any, name: str) -> bool:
        return (self.arg(request, name) or "0").lower() in ("1", "true", "yes", "on")

    def _console(self) -> Any:
        if self.console is None:
            raise ApiError(404, "this vncmux has no virtual console (--vnc none, no vc)")
        return self.console

    def _history(self) -> Any:
        if self.history is None:
            raise ApiError(404, "this vncmux keeps no output history")
        return self.history

    def screenOffset(self) -> int | None:
        """The output offset the screen shows: what the history holds minus what the
        console has not fed to its terminal yet (the history is the hub's first backend)."""
        if self.history is None or self.console is None:
            return None
        vc = getattr(self.console, "vc", None)
        backlog = getattr(vc, "backlog", 0) if vc is not None else 0
        return int(max(0, self.history.end - backlog))

    # -- routes ----------------------------------------------------------------------------

    def route_screen(self, request: Any, peer: str) -> bytes:
        console = self._console()
        fmt = self.arg(request, "format") or "json"
        if fmt == "text":
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return screen_text(console.text()).encode("utf-8")
        if fmt != "json":
            raise ApiError(400, f"format={fmt!r}: use json (the default) or text")
        return self.json(
            request, screen_state(console, self.screenOffset(), self.flag(request, "attrs"))
        )

    def route_screen_png(self, request: Any, peer: str) -> bytes:
        console = self._console()
        console.display.refresh()  # bring the framebuffer up to date even with no viewer
        image = console.crop((0, 0, console.width, console.height))
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=1)
        request.setHeader(b"Content-Type", b"image/png")
        request.setHeader(b"Cache-Control", b"no-store")
        return out.getvalue()

    def route_output(self, request: Any, peer: str) -> bytes | int:
        history = self._history()
        tail = self.int_arg(request, "tail")
        from_ = self.int_arg(request, "from")
        if tail is not None and from_ is not None:
            raise ApiError(400, "give from= or tail=, not both")
        if tail is not None:
            from_ = max(history.start, history.end - tail)
        if from_ is None:
            from_ = history.start
        if from_ > history.end:
            raise ApiError(400, f"from={from_} is in the future: the output ends at {history.end}")
        start = max(from_, history.start)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Output-Start", str(start).encode())
        if self.flag(request, "follow"):
            log.info(
                "API client {peer}: following the output from offset {start}",
                peer=peer,
                start=start,
            )
            request.write(b"")  # the headers now, so the client knows where it starts
            self.followers.add(
                OutputFollower(history, request, start, peer, done=self.followers.discard)
            )
            return NOT_DONE_YET
        start, data = history.read(start, MAX_OUTPUT_READ)
        request.setHeader(b"X-Output-End", str(start + len(data)).encode())
        return bytes(data)

    def _body_bytes(self, request: Any) -> bytes:
        request.content.seek(0)
        body: bytes = request.content.read()
        kind = (request.getHeader(b"content-type") or b"application/octet-stream").decode("latin-1")
        mime, _sep, params = kind.partition(";")
        mime = mime.strip().lower()
        if mime.startswith("text/"):
            charset = "utf-8"
            for param in params.split(";"):
                key, _eq, value = param.strip().partition("=")
                if key.lower() == "charset" and value:
                    charset = value.strip('"')
            try:
                text = body.decode(charset)
            except (LookupError, UnicodeError) as e:
                raise ApiError(400, f"the body is not text in {charset}: {e}") from None
            return text.encode(self.encoding, "replace")
        return body

    def _send(self, request: Any, data: bytes, peer: str, what: str) -> bytes | int:
        """``data`` to the device whole, once it takes input (503 if it is down, or does
        not take input for ``INPUT_ROOM_TIMEOUT``)."""
        hub = self.hub
        lock = hub.keyboard
        if not lock.allow(Client(API, peer), len(data)):  # --input-policy exclusive
            holder = describe(lock.holder) if lock.holder is not None else "another client"
            raise ApiError(409, f"{holder} has the keyboard: nothing sent ({PREFIX}takeover)")
        if hub.device is None:
            raise ApiError(503, f"the device is down ({hub.deviceDescription}): nothing sent")

        def write(_: object = None) -> bytes:
            if not hub.input(data, client=Client(API, peer)):
                raise ApiError(503, "the device did not take the input (down or not reading)")
            log.info("API client {peer}: {what}", peer=peer, what=what)
            offset = self.history.end if self.history is not None else None
            return self.json(request, {"sent": len(data), "offset": offset})

        if hub.inputRoom():
            return write()
        d = hub.whenInputRoom()
        timedOut: list[bool] = []

        def expire() -> None:
            timedOut.append(True)
            d.cancel()

        timer = self.clock.callLater(INPUT_ROOM_TIMEOUT, expire)

        def waited(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if timedOut and isinstance(result, Failure) and result.check(CancelledError):
                return Failure(ApiError(503, "the device is not taking input"))
            return result

        d.addBoth(waited)
        return self._later(request, d, write)

    def route_input(self, request: Any, peer: str) -> bytes | int:
        data = self._body_bytes(request)
        if not data:
            raise ApiError(400, "an empty body: nothing to send")
        return self._send(request, data, peer, f"sent {len(data)} bytes of input")

    def route_keys(self, request: Any, peer: str) -> bytes | int:
        request.content.seek(0)
        body = request.content.read()
        kind = (request.getHeader(b"content-type") or b"").decode("latin-1").lower()
        try:
            if kind.startswith("application/json"):
                names = json.loads(body.decode("utf-8")).get("keys")
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise ApiError(400, 'expected {"keys": ["Enter", "Ctrl+C", ...]}')
            else:
                names = body.decode("utf-8").split()
        except (UnicodeError, ValueError, AttributeError) as e:
            raise ApiError(400, f"cannot read the key names: {e}") from None
        if not names:
            raise ApiError(400, "no key names given")
        console = self.console
        modes = console.modes if console is not None else None
        if modes is None:
            from vncmux.console.modes import Modes

            modes = Modes()
        try:
            data = keys_bytes(names, modes, self.encoding)
        except KeyNameError as e:
            raise ApiError(400, str(e)) from None
        if not data:
            raise ApiError(400, "these keys send nothing")
        return self._send(request, data, peer, f"keys {' '.join(names)[:200]}")

    def route_takeover(self, request: Any, peer: str) -> bytes:
        """Take the keyboard (``--input-policy exclusive``); 409 under the shared policy."""
        lock = self.hub.keyboard
        if not lock.exclusive:
            raise ApiError(409, "the input policy is shared: everybody may type already")
        previous = lock.holder
        lock.takeover(Client(API, peer))
        holder = lock.holder
        return self.json(
            request,
            {
                "holder": describe(holder) if holder is not None else None,
                "previous": describe(previous) if previous is not None else None,
            },
        )

    def route_break(self, request: Any, peer: str) -> bytes:
        """A serial BREAK (``Hub.sendBreak``): 503 while the device is down, 409 when it is
        refused (a raw socket device, another client holding the keyboard)."""
        text = self.arg(request, "duration")
        try:
            duration = float(text) if text is not None else None
        except ValueError:
            raise ApiError(400, f"duration={text!r} is not a number of seconds") from None
        if duration is not None and not 0 < duration <= 10:  # also refuses NaN
            raise ApiError(400, f"duration={text} is not more than 0 and at most 10 seconds")
        if self.hub.device is None:
            raise ApiError(503, f"the device is down ({self.hub.deviceDescription})")
        done = self.hub.sendBreak(Client(API, peer), duration, how=f"POST {PREFIX}break")
        if done is None:
            raise ApiError(409, "BREAK refused (see vncmux's log for why)")
        return self.json(request, {"sent": done})

    def route_wait(self, request: Any, peer: str) -> bytes | int:
        screen = self.arg(request, "screen")
        output = self.arg(request, "output")
        if (screen is None) == (output is None):
            raise ApiError(400, "give exactly one of screen=REGEX or output=REGEX")
        timeout_text = self.arg(request, "timeout")
        try:
            timeout = float(timeout_text) if timeout_text is not None else DEFAULT_WAIT_TIMEOUT
        except ValueError:
            raise ApiError(400, f"timeout={timeout_text!r} is not a number") from None
        if not 0 <= timeout <= MAX_TIMEOUT:  # also refuses NaN
            raise ApiError(400, f"timeout={timeout_text} is not between 0 and {MAX_TIMEOUT:g}")
        if self._waits() >= MAX_WAITS:
            log.warn("API client {peer}: wait refused: {n} waits in flight", peer=peer, n=MAX_WAITS)
            request.setHeader(b"Retry-After", b"1")
            raise ApiError(503, f"{MAX_WAITS} waits are in flight on this console: try again")
        try:
            if screen is not None:
                watch = self.screenWatch
                if watch is None:
                    raise ApiError(404, "this vncmux has no virtual console")
                d = watch.wait(compile_pattern(screen), timeout)
            else:
                history = self._history()
                assert self.outputWatch is not None and output is not None
                from_ = self.int_arg(request, "from", history.end)
                assert from_ is not None
                if from_ > history.end:
                    raise ApiError(400, f"from={from_} is in the future (end {history.end})")
                d = self.outputWatch.wait(compile_pattern(output, as_bytes=True), from_, timeout)
        except PatternError as e:  # a bad pattern, or one RE2 cannot or will not run
            log.info("API client {peer}: wait refused: {why}", peer=peer, why=str(e))
            raise ApiError(400, str(e)) from None

        def answer(result: Any) -> bytes:
            return self.json(request, result)

        def timedOut(failure: Failure) -> Any:
            failure.trap(WaitTimeout)
            raise ApiError(408, f"no match within {timeout:g} s")

        d.addErrback(timedOut)
        return self._later(request, d, answer)

    def _waits(self) -> int:
        """Waits in flight, on the screen and the output."""
        return (self.screenWatch.waiting if self.screenWatch else 0) + (
            self.outputWatch.waiting if self.outputWatch else 0
        )

    def route_status(self, request: Any, peer: str) -> bytes:
        api = {"api_streams": len(self.followers), "api_waiters": self._waits()}
        return self.json(
            request, status(self.hub, self.clock.seconds(), self.console, self.history, api)
        )


class ApiResource(Resource):
    """The whole API as one leaf resource: ``Api.handle`` routes on the path, less
    ``mount`` (the path it is mounted under, e.g. ``/c/NAME`` on the web entry)."""

    isLeaf = True

    def __init__(self, api: Api, mount: bytes = b"") -> None:
        super().__init__()
        self.api = api
        self.mount = mount

    def render(self, request: Request) -> bytes | int:
        path = request.path
        if self.mount and path.startswith(self.mount + b"/"):
            return self.api.handle(request, path[len(self.mount) :])
        return self.api.handle(request)
