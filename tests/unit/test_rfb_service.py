"""The wiring of consoles and their VNC servers: ``vncmux.service.makeConsoleServices`` (one
call per console, resize reaching an exec: device) and ``vncmux.rfb.service`` (the factory on
the console, the ports, the password, closing on stop or on a failed bind)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.application.service import Service
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock

from vncmux import service
from vncmux.config import build_config
from vncmux.console.console import Console, ConsoleService
from vncmux.errors import ConfigError
from vncmux.hub import Hub
from vncmux.rfb.service import VncService, makeVncService, vncPassword


class ResizableDevice(Service):
    """Stands for ExecDeviceService: remembers the sizes it was told."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))


def test_each_call_makes_an_independent_console_and_resizes_reach_the_device() -> None:
    config = build_config(
        device="unix:/tmp/g.sock", vnc="none", chardevs=["vc,id=v,cols=30,rows=6"]
    )
    assert config.console is not None
    reactor = MemoryReactorClock()
    hub, device = Hub(reactor), ResizableDevice()
    one = service.makeConsoleServices(config, config.console, hub, reactor, device)
    two = service.makeConsoleServices(config, config.console, hub, reactor, device)
    assert [type(s) for s in one] == [ConsoleService], "--vnc none: no VNC service"
    a, b = one[0].console, two[0].console  # type: ignore[attr-defined]
    assert isinstance(a, Console) and a is not b
    assert (a.cols, a.rows) == (30, 6) and a.name == "vncmux: unix:/tmp/g.sock"
    a.resize(40, 10)
    assert device.sizes == [(40, 10)]
    assert (b.cols, b.rows) == (30, 6), "the other console keeps its size"
    one[0].startService()
    two[0].startService()
    assert hub.backends == (a.vc, b.vc)
    one[0].stopService()
    assert hub.backends == (b.vc,)


def test_a_device_that_cannot_resize_is_left_alone() -> None:
    config = build_config(device="unix:/tmp/g.sock", vnc="none", chardevs=["vc,id=v"])
    assert config.console is not None
    reactor = MemoryReactorClock()
    (svc,) = service.makeConsoleServices(config, config.console, Hub(reactor), reactor, Service())
    svc.console.resize(10, 3)  # type: ignore[attr-defined]
    assert svc.console.cols == 10  # type: ignore[attr-defined]


def make_console(reactor: Any) -> Console:
    return Console(Hub(reactor), reactor, 10, 3)


class Port:
    def __init__(self, number: int) -> None:
        self.number = number
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False


class Ports(MemoryReactorClock):
    """Records the ports it opens (and can refuse one, as when it is in use)."""

    def __init__(self, busy: int | None = None) -> None:
        super().__init__()
        self.busy = busy
        self.ports: list[Port] = []

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        if port == self.busy:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        super().listenTCP(port, factory, backlog, interface)
        self.ports.append(Port(port))
        return self.ports[-1]


def test_the_vnc_service_serves_the_console_and_closes_its_ports() -> None:
    reactor = Ports()
    console = make_console(reactor)
    config = build_config(vnc="127.0.0.1:2,websocket=5800,share=allow-exclusive")
    vnc = makeVncService(console, config.vnc, reactor, stall_timeout=7)
    assert isinstance(vnc, VncService) and vnc.name == "vnc"
    assert vnc.factory.console is console
    assert (vnc.factory.share, vnc.factory.stall_timeout) == ("allow-exclusive", 7)
    assert [(port, iface) for port, _f, _b, iface in reactor.tcpServers] == [
        (5902, "127.0.0.1"),
        (5800, "127.0.0.1"),
    ]
    assert vnc.ports == reactor.ports
    vnc.startService()
    done = vnc.stopService()
    assert [p.listening for p in reactor.ports] == [False, False]
    assert vnc.ports == []
    results: list[object] = []
    done.addCallback(results.append)
    assert results, "stopping finishes"


def test_a_port_that_cannot_be_bound_leaves_nothing_listening() -> None:
    reactor = Ports(busy=5800)
    config = build_config(vnc="127.0.0.1:0,websocket=5800")
    with pytest.raises(ConfigError, match="5800"):
        makeVncService(make_console(reactor), config.vnc, reactor, stall_timeout=7)
    assert [(p.number, p.listening) for p in reactor.ports] == [(5900, False)]


def test_the_password_comes_from_the_file_or_is_generated_and_printed(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pw"
    path.write_text("sekrit\n")
    path.chmod(0o600)
    assert vncPassword(str(path), generate=True) == b"sekrit"
    assert capsys.readouterr().err == ""
    assert vncPassword(None, generate=False) is None
    made = vncPassword(None, generate=True)
    assert made is not None and len(made) >= 8
    assert made.decode() in capsys.readouterr().err
