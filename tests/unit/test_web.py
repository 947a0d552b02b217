"""The web entry (vncmux/web/): the pure parts on fakes and a test clock, the resource tree
on a real port of 127.0.0.1 driven by the global reactor (with tests/support/ws_client.py,
as tests/unit/test_websocket.py does), with real hubs, a real console for the thumbnails
and real RFB factories.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.support.display_fakes import make_display
from tests.support.fakes import RecordingViewer
from tests.support.ws_client import WSClient, http_get, reactor
from vncmux.api.auth import Tokens
from vncmux.api.resource import Api
from vncmux.config import ConfigError, parse_web
from vncmux.console.console import Console
from vncmux.hub import Hub
from vncmux.rfb.server import RFBFactory
from vncmux.specs import DeviceSpec
from vncmux.web.health import verdict
from vncmux.web.index import describe_clients, index_page, listing
from vncmux.web.metrics import makeRegistry
from vncmux.web.service import WebService, endpoint_host, makeWebFactory
from vncmux.web.state import ConsoleStatus, console_status, device_state, statuses
from vncmux.web.thumbnails import Thumbnails

# -- fakes ---------------------------------------------------------------------------------


@dataclass
class FakeDevice:
    running: bool = True

    def write(self, data: bytes) -> None:
        pass


@dataclass
class FakeConfig:
    device: DeviceSpec


@dataclass
class FakeApiService:
    api: Api


@dataclass
class Instance:
    """What ``vncmux.service.ConsoleInstance`` offers the web entry."""

    name: str
    hub: Hub
    config: FakeConfig
    device: FakeDevice = field(default_factory=FakeDevice)
    console: Any = None
    vnc_factory: Any = None
    api: Any = None


class FakeSite:
    def __init__(self, *instances: Instance) -> None:
        self.consoles = {i.name: i for i in instances}

    def instances(self) -> list[Instance]:
        return list(self.consoles.values())

    def get(self, name: str) -> Instance | None:
        return self.consoles.get(name)


def instance(
    name: str, clock: Any, *, up: bool = True, wait: bool = False, password: bytes | None = None
) -> Instance:
    hub = Hub(clock)
    spec = DeviceSpec(kind="tty", path=f"/dev/tty-{name}", wait=wait)
    inst = Instance(name, hub, FakeConfig(spec))
    inst.console = Console(hub, clock, 80, 24)
    inst.console.start()
    inst.vnc_factory = RFBFactory(inst.console, password=password, clock=clock, name=name)
    if up:
        hub.deviceConnected(FakeDevice(), f"/dev/tty-{name} connected")  # type: ignore[arg-type]
    return inst


def feed(inst: Instance, clock: Clock, text: bytes) -> None:
    """Device output to the console, fed to its terminal (the vc batches per turn)."""
    inst.hub.deviceOutput(text)
    clock.advance(0)


# -- state, health, index ------------------------------------------------------------------


def test_device_state_up_reconnecting_down() -> None:
    clock = Clock()
    inst = instance("a", clock, up=False)
    assert device_state(inst) == "down"  # never opened
    inst.hub.deviceConnected(FakeDevice(), "up")  # type: ignore[arg-type]
    assert device_state(inst) == "up"
    inst.hub.deviceLost("gone")
    assert device_state(inst) == "reconnecting"  # the device service retries
    inst.device.running = False
    assert device_state(inst) == "down"


def test_status_of_a_public_and_a_protected_console() -> None:
    clock = Clock()
    open_, locked = instance("open", clock), instance("locked", clock, password=b"pw")
    a, b = statuses([open_, locked])
    assert (a.name, a.state, a.device, a.public, a.viewer) == (
        "open",
        "up",
        "/dev/tty-open",
        True,
        True,
    )
    assert not b.public and b.viewer
    assert a.clients == {} and a.last_output is None
    clock.advance(5)
    feed(open_, clock, b"hi")
    assert console_status(open_).last_output == 5


def test_health_is_503_naming_the_console_whose_device_is_down() -> None:
    clock = Clock()
    a, b = instance("a", clock), instance("b", clock)
    assert verdict(statuses([a, b])) == (200, ["ok: 2 consoles", "a: up", "b: up"])
    b.hub.deviceLost("/dev/tty-b: read error")
    code, lines = verdict(statuses([a, b]))
    assert code == 503
    assert lines[0] == "unhealthy: 1 of 2 consoles have no device"
    assert lines[2] == "b: device reconnecting: /dev/tty-b: read error"
    b.hub.deviceConnected(FakeDevice(), "back")  # type: ignore[arg-type]
    assert verdict(statuses([a, b]))[0] == 200


def test_a_waiting_device_never_up_is_allowed_until_it_has_been_up() -> None:
    clock = Clock()
    usb = instance("usb", clock, up=False, wait=True)
    code, lines = verdict(statuses([usb]))
    assert code == 200 and "waiting for its device, allowed" in lines[1]
    usb.hub.deviceConnected(FakeDevice(), "up")  # type: ignore[arg-type]
    usb.hub.deviceLost("unplugged")
    assert verdict(statuses([usb]))[0] == 503
    plain = instance("plain", clock, up=False)  # not told to wait: a fault from the start
    assert verdict(statuses([plain]))[0] == 503


def test_the_index_tells_nothing_but_name_and_state_of_a_protected_console() -> None:
    clock = Clock()
    locked = instance("locked", clock, password=b"secret")
    open_ = instance("open", clock)
    page = index_page(statuses([locked, open_]), 0.0).decode()
    assert page.count("<article") == 2
    assert "/dev/tty-locked" not in page and "c/locked/thumbnail.png" not in page
    assert "password required" in page and 'href="c/locked/"' in page
    assert "/dev/tty-open" in page and 'src="c/open/thumbnail.png"' in page
    items = listing(statuses([locked, open_]), 1.0)["consoles"]
    assert set(items[0]) == {"name", "state", "viewer", "public"}
    assert items[1]["thumbnail"] == "c/open/thumbnail.png"


def test_index_escapes_what_it_shows() -> None:
    status = ConsoleStatus(
        name="a", device="<script>", state="up", description="", since=0, connects=1,
        last_output=None, public=True, viewer=False,
    )  # fmt: skip
    page = index_page([status], 0.0, title="<b>").decode()
    assert "<script>" not in page.split("</script>", 1)[1]
    assert "&lt;script&gt;" in page and "&lt;b&gt;" in page


def test_describe_clients() -> None:
    assert describe_clients({}) == "no clients"
    assert describe_clients({"vnc": 2, "socket": 1, "pty": 0}) == "1 socket, 2 vnc"


# -- metrics -------------------------------------------------------------------------------


def samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_read_the_live_counters_of_every_console() -> None:
    clock = Clock()
    a, b = instance("a", clock), instance("b", clock, up=False)
    site = FakeSite(a, b)
    registry = makeRegistry(site.instances)
    clock.advance(7)
    feed(a, clock, b"12345")
    a.hub.input(b"xy")
    a.hub.deviceLost("gone")
    a.hub.deviceConnected(FakeDevice(), "back")  # type: ignore[arg-type]
    a.vnc_factory.stats.frames = 3
    a.vnc_factory.stats.auth_failures = 2
    a.vnc_factory.stats.encode_seconds = 0.25
    a.hub.stalledBackends = 1
    got = samples(registry)
    ca, cb = (("console", "a"),), (("console", "b"),)
    assert got[("vncmux_device_up", ca)] == 1 and got[("vncmux_device_up", cb)] == 0
    assert got[("vncmux_device_reconnects_total", ca)] == 1
    assert got[("vncmux_device_output_bytes_total", ca)] == 5
    assert got[("vncmux_device_input_bytes_total", ca)] == 2
    assert got[("vncmux_last_output_timestamp_seconds", ca)] == 7
    assert got[("vncmux_frames_sent_total", ca)] == 3
    assert got[("vncmux_auth_failures_total", ca)] == 2
    assert got[("vncmux_encode_seconds_total", ca)] == 0.25
    assert got[("vncmux_stalled_clients_dropped_total", (("console", "a"), ("kind", "byte")))] == 1
    assert got[("vncmux_clients", (("console", "b"), ("kind", "vnc")))] == 0
    assert ("vncmux_process_cpu_seconds_total", ()) in got
    del site.consoles["b"]  # removed by a reload: no longer reported
    assert ("vncmux_device_up", cb) not in samples(registry)


# -- thumbnails ----------------------------------------------------------------------------


def test_a_thumbnail_is_drawn_once_per_frame_and_at_most_once_per_interval() -> None:
    clock = Clock()
    inst = instance("a", clock)
    thumbs = Thumbnails(clock, width=320, min_interval=1.0)
    first = thumbs.png("a", inst.console)
    image = Image.open(io.BytesIO(first))
    assert image.format == "PNG" and image.width <= 320 and image.width * 2 >= 320
    assert thumbs.png("a", inst.console) is first and thumbs.drawn == 1
    feed(inst, clock, b"new text")
    assert thumbs.png("a", inst.console) is first  # within the interval: the last one
    clock.advance(1.0)
    second = thumbs.png("a", inst.console)
    assert second != first and thumbs.drawn == 2
    clock.advance(5.0)
    assert thumbs.png("a", inst.console) is second and thumbs.drawn == 2  # same frame
    thumbs.keep(set())
    assert thumbs.png("a", inst.console) == second and thumbs.drawn == 3


# -- the resource tree on a real port ------------------------------------------------------


@pytest.fixture
def web() -> Any:
    """Three consoles behind a WebService on an ephemeral port: ``alpha`` and ``beta``
    public (beta with an API on a token), ``gamma`` with a VNC password."""
    alpha = instance("alpha", reactor)
    beta = instance("beta", reactor)
    gamma = instance("gamma", reactor, password=b"pw")
    beta.api = FakeApiService(Api(beta.hub, reactor, Tokens(full="tok"), console=beta.console))
    site = FakeSite(alpha, beta, gamma)
    service = WebService("tcp:0:interface=127.0.0.1", site, reactor)
    port = service.port.getHost().port
    try:
        yield site, port
    finally:
        service.port.stopListening()
        for inst in site.instances():
            for c in list(inst.vnc_factory.clients):
                c.transport.abortConnection()
            inst.console.stop()
        reactor.iterate(0)


def test_index_health_metrics_and_listing_over_http(web: Any) -> None:
    site, port = web
    status, headers, body = http_get(port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert body.count(b"<article") == 3
    status, _, body = http_get(port, "/consoles.json")
    assert [c["name"] for c in json.loads(body)["consoles"]] == ["alpha", "beta", "gamma"]
    assert http_get(port, "/healthz")[0] == 200
    site.get("beta").hub.deviceLost("unplugged")
    status, _, body = http_get(port, "/healthz")
    assert status == 503 and b"beta: device reconnecting: unplugged" in body
    status, headers, body = http_get(port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"vncmux_device_up", "vncmux_frames_sent", "vncmux_clients"} <= names


def test_console_pages_thumbnails_and_refusals(web: Any) -> None:
    _, port = web
    status, _, body = http_get(port, "/c/alpha/")
    assert status == 200 and b"alpha: alpha" in body  # the page, titled by its console
    assert b"path=c/alpha/websockify" in body
    assert b'<a href="../../">all consoles</a>' in body
    status, headers, _ = http_get(port, "/c/alpha")
    assert status == 302 and headers["location"] == "/c/alpha/"
    status, headers, body = http_get(port, "/c/alpha/thumbnail.png")
    assert status == 200 and Image.open(io.BytesIO(body)).format == "PNG"
    assert http_get(port, "/c/gamma/thumbnail.png")[0] == 403  # password-protected
    assert http_get(port, "/c/nobody/")[0] == 404
    assert http_get(port, "/nothing")[0] == 404
    assert http_get(port, "/c/alpha/%00")[0] == 400  # the path check, as on the ws port


def test_the_api_of_a_console_is_mounted_under_its_name(web: Any) -> None:
    site, port = web
    auth = b"Authorization: Bearer tok\r\n"
    status, _, body = http_get(port, "/c/beta/api/v1/status", auth)
    assert status == 200 and json.loads(body)["device"]["up"] is True
    assert http_get(port, "/c/beta/api/v1/status")[0] == 401  # its token is needed
    status, _, body = http_get(port, "/c/beta/api/v1/nothing", auth)
    assert status == 404 and b"/api/v1/nothing" in body
    status, headers, body = http_get(port, "/c/alpha/api/v1/status", auth)
    assert status == 404 and "no API" in json.loads(body)["error"]  # alpha has no API
    assert headers["content-type"] == "application/json"
    site.get("alpha").api = FakeApiService(Api(site.get("alpha").hub, reactor, Tokens()))
    status, _, body = http_get(port, "/c/alpha/api/v1/status")
    assert status == 403 and "no token" in json.loads(body)["error"]  # not over the web


def server_name(client: WSClient) -> str:
    """Run the RFB handshake (security None) and return ServerInit's desktop name."""
    assert client.take(12) == b"RFB 003.008\n"
    client.send(b"RFB 003.008\n")
    assert client.take(2) == b"\x01\x01"
    client.send(b"\x01")
    assert client.take(4) == b"\0\0\0\0"
    client.send(b"\x01")
    head = client.take(24)
    (length,) = struct.unpack("!I", head[20:24])
    return client.take(length).decode()


def test_each_websockify_reaches_its_own_console(web: Any) -> None:
    site, port = web
    for name in ("alpha", "beta"):
        client = WSClient(port, path=f"/c/{name}/websockify")
        assert client.accepted
        assert server_name(client) == name
        assert len(site.get(name).vnc_factory.clients) == 1
        client.close()


def test_cross_site_websocket_is_refused(web: Any) -> None:
    _, port = web
    evil = [(b"Origin", b"http://evil.example")]
    client = WSClient(port, path="/c/alpha/websockify", headers=evil)
    assert client.rejected == 403
    client.close()
    own = [(b"Origin", f"http://127.0.0.1:{port}".encode())]
    client = WSClient(port, path="/c/alpha/websockify", headers=own)
    assert client.accepted
    client.close()


def test_web_option_parsing() -> None:
    assert parse_web("8080") == "tcp:8080:interface=127.0.0.1"
    assert parse_web("tcp:8080:interface=0.0.0.0") == "tcp:8080:interface=0.0.0.0"
    assert parse_web("unix:/run/vncmux.web") == "unix:/run/vncmux.web:mode=600"
    with pytest.raises(ConfigError, match="^--web bogus:"):
        parse_web("bogus")
    assert endpoint_host(r"tcp:80:interface=\:\:1") == "::1"
    assert endpoint_host("unix:/x") == ""
    assert endpoint_host("tcp:80:interface=10.0.0.1") == "10.0.0.1"


def test_a_port_in_use_is_a_config_error(web: Any) -> None:
    _, port = web
    with pytest.raises(ConfigError, match=f"cannot listen on --web tcp:{port}"):
        WebService(f"tcp:{port}:interface=127.0.0.1", FakeSite(), reactor)


def test_web_is_a_site_wide_option_of_the_command_line_and_the_config_file() -> None:
    from vncmux.site_config import parse_site
    from vncmux.tap import Options

    options = Options()
    options.parseOptions(["--device", "exec:true", "--vnc", "none", "--web", "8123"])
    assert options.site is not None
    assert options.site.web == "tcp:8123:interface=127.0.0.1"
    text = 'web = "tcp:8124"\n[[console]]\nname = "a"\ndevice = "exec:true"\n'
    assert parse_site(text, "site.toml").web == "tcp:8124"
    with pytest.raises(ConfigError, match="web"):
        parse_site('web = "nonsense"\n' + text.split("\n", 1)[1], "site.toml")


# -- the counters the metrics read, where the work is done ------------------------------------


def test_the_rfb_server_counts_frames_encode_time_auth_failures_and_stalls() -> None:
    from tests.support.rfb_client import Client, connected, make_factory
    from vncmux.rfb import auth

    factory, display, clock = make_factory(stall_timeout=5)
    c = connected(factory)
    c.send(struct.pack("!BBHHHH", 3, 0, 0, 0, 80, 64))  # FramebufferUpdateRequest
    assert c.take()[0] == 0  # a FramebufferUpdate
    assert factory.stats.frames == 1 and factory.stats.encode_seconds > 0
    c.send(struct.pack("!BBHHHH", 3, 1, 0, 0, 80, 64))
    c.proto.pauseProducing()
    clock.advance(5.1)
    assert c.closed and factory.stats.stalled == 1

    locked, _, _ = make_factory(password=b"pw")
    v = Client(locked)
    v.take()
    v.send(b"RFB 003.008\n")
    assert v.take() == b"\x01\x02"
    v.send(b"\x02")
    v.send(auth.vnc_auth_response(v.take(), b"wrong"))
    assert locked.stats.auth_failures == 1


def test_the_hub_counts_stalled_backends_and_the_time_of_the_last_output() -> None:
    from zope.interface import implementer

    from vncmux.interfaces import IBackend

    @implementer(IBackend)
    class Stuck:
        label = "stuck"
        stallable = True

        def write(self, data: bytes) -> None:
            pass

        def deviceStateChanged(self, up: bool, description: str) -> None:
            pass

        def stalled(self) -> None:
            pass

    clock = Clock()
    hub = Hub(clock, stallTimeout=2.0)
    stuck = Stuck()
    hub.attach(stuck)
    hub.blocked(stuck)
    clock.advance(2.5)
    assert hub.stalledBackends == 1 and hub.lastOutput is None
    hub.deviceOutput(b"x")
    assert hub.lastOutput == 2.5


def test_a_thumbnail_drawn_inside_the_frame_interval_does_not_strand_a_waiting_viewer() -> None:
    """A thumbnail (like the API's screen.png) renders the terminal's damage itself: the
    frame the display had scheduled for a waiting viewer must still go out."""
    clock = Clock()
    display, term, _ = make_display(clock)
    viewer = RecordingViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([0])
    display.changed()
    assert viewer.events == ["update"]  # the first frame goes at once
    acc.clear()
    display.requestUpdate(viewer)
    term.pending.mark([1])
    display.changed()  # the next one waits for the frame interval...
    assert display.refresh()  # ...and a thumbnail is drawn meanwhile
    clock.advance(display.min_interval)
    assert viewer.events == ["update", "update"] and acc.rows == {1}


# -- the port's limits (a test clock, an in-memory transport) ---------------------------------


def web_connection(clock: Clock, site: FakeSite, **options: Any) -> tuple[Any, Any, Any]:
    """One HTTP connection to the web entry built on ``clock``, over a StringTransport."""
    factory = makeWebFactory(site, clock, {"localhost"}, **options)
    peer = IPv4Address("TCP", "192.0.2.7", 40000)
    proto = factory.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    proto.makeConnection(transport)
    return factory, proto, transport


def test_the_web_port_has_the_request_deadline_and_the_connection_cap() -> None:
    clock = Clock()
    site = FakeSite(instance("a", clock))
    factory, proto, transport = web_connection(clock, site, request_timeout=4)
    proto.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert b"HTTP/1.1 200 OK" in transport.value() and b"a: up" in transport.value()
    clock.advance(3.9)
    assert not transport.disconnecting  # keep-alive: the next request has 4 s
    proto.dataReceived(b"GET /metr")
    clock.advance(0.1)
    assert transport.disconnected  # a request that did not arrive whole: aborted
    factory.max_connections = len(factory.protocols) + 1
    kept = factory.buildProtocol(IPv4Address("TCP", "192.0.2.8", 1))
    assert kept is not None
    kept.makeConnection(StringTransport())
    assert factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 1)) is None  # past the cap
