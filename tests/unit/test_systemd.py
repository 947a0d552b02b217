"""systemd notification (vncmux.systemd) against a real datagram socket, and the shipped
unit files (contrib/) read as systemd reads them: sections of key=value lines."""

from __future__ import annotations

import configparser
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from tests.support.notify import notify_listener, receive_state
from vncmux.systemd import Notifier, NotifyService, describeSite, socketAddress

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with notify_listener(path, timeout=5) as sock:
        yield sock, path


def test_socket_address_forms() -> None:
    assert socketAddress("/run/systemd/notify") == "/run/systemd/notify"
    assert socketAddress("@abstract/name") == b"\0abstract/name"
    assert socketAddress("relative") is None


def test_from_environment_takes_the_variables_out() -> None:
    env = {"NOTIFY_SOCKET": "/x/notify", "WATCHDOG_USEC": "4000000", "OTHER": "1"}
    notifier = Notifier.fromEnvironment(env)
    assert notifier.address == "/x/notify"
    assert notifier.watchdog_usec == 4_000_000
    assert env == {"OTHER": "1"}  # an exec: device's program does not inherit them


def test_watchdog_of_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "10", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.fromEnvironment(env).watchdog_usec == 0


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.fromEnvironment({})
    assert not notifier.enabled
    assert notifier.send(READY="1") is False


def test_send_to_a_dead_socket_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    assert notifier.send(READY="1") is False


def test_send_abstract_namespace() -> None:
    name = f"vncmux-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert Notifier.fromEnvironment({"NOTIFY_SOCKET": "@" + name}).send(READY="1")
        assert receive_state(sock) == {"READY": "1"}
    finally:
        sock.close()


def test_service_ready_status_and_stopping(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    reactor = MemoryReactorClock()
    states = ["up", "reconnecting"]
    service = NotifyService(reactor, lambda: describeSite(states), Notifier(path), interval=5.0)
    service.startService()
    reactor.run()  # fires callWhenRunning: READY
    assert receive_state(sock) == {"READY": "1", "STATUS": "2 consoles, 1 device up, 1 waiting"}
    reactor.advance(5)  # unchanged: nothing sent
    states[1] = "up"
    reactor.advance(5)
    assert receive_state(sock) == {"STATUS": "2 consoles, 2 devices up"}
    service.stopService()
    assert receive_state(sock) == {"STOPPING": "1", "STATUS": "stopping"}
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.recv(4096)  # the status loop has stopped: nothing else comes


def test_watchdog_pings(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    reactor = MemoryReactorClock()
    service = NotifyService(reactor, lambda: "ok", Notifier(path, watchdog_usec=2_000_000))
    service.startService()
    reactor.run()
    assert receive_state(sock)["READY"] == "1"
    assert receive_state(sock) == {"WATCHDOG": "1"}
    reactor.advance(1.0)
    assert receive_state(sock) == {"WATCHDOG": "1"}
    service.stopService()


def test_describe_site() -> None:
    assert describeSite(["up"]) == "1 console, 1 device up"
    assert describeSite(["up", "down", "up"]) == "3 consoles, 2 devices up, 1 waiting"


# --------------------------------------------------------------------------------------
# contrib/: the units and the udev rule


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((REPO / "contrib" / "systemd" / name).read_text(encoding="utf-8"))
    return parser


def test_template_unit_is_bound_to_its_device() -> None:
    parsed = unit("vncmux@.service")
    assert parsed["Unit"]["BindsTo"] == "dev-%i.device"
    assert "dev-%i.device" in parsed["Unit"]["After"].split()
    service = parsed["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[:3] == ["/usr/bin/twistd", "--nodaemon", "--pidfile="]
    assert "--device /dev/%i" in service["ExecStart"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a configuration error: do not loop


def test_multi_console_unit_reloads_with_sighup() -> None:
    parsed = unit("vncmux.service")
    service = parsed["Service"]
    assert service["Type"] == "notify"
    assert "--config /etc/vncmux/consoles.toml" in service["ExecStart"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_socket_unit_matches_the_activated_service() -> None:
    parsed = unit("vncmux-socket.socket")
    assert parsed["Socket"]["ListenStream"]
    assert parsed["Socket"]["Service"] == "vncmux-socket.service"
    service = unit("vncmux-socket.service")["Service"]
    assert "systemd:0" in service["ExecStart"]


def test_udev_rule_starts_an_instance_per_adapter() -> None:
    text = (REPO / "contrib" / "udev" / "99-vncmux.rules").read_text(encoding="utf-8")
    rules = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert rules
    for rule in rules:
        assert 'SUBSYSTEM=="tty"' in rule
        assert 'TAG+="systemd"' in rule
        assert 'ENV{SYSTEMD_WANTS}+="vncmux@%k.service"' in rule


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """systemd's own checker (Debian package ``systemd``) on the shipped units, with
    /usr/bin/twistd pointed at this environment's twistd (it must exist and run)."""
    import shutil
    import subprocess
    import sys

    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    twistd = str(Path(sys.executable).parent / "twistd")
    names = {
        "vncmux.service": "vncmux.service",
        "vncmux@.service": "vncmux@ttyUSB0.service",
        "vncmux-socket.socket": "vncmux-socket.socket",
        "vncmux-socket.service": "vncmux-socket.service",
    }
    for source, target in names.items():
        text = (REPO / "contrib" / "systemd" / source).read_text(encoding="utf-8")
        (tmp_path / target).write_text(text.replace("/usr/bin/twistd", twistd))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / t) for t in names.values())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------
# socket activation options


def test_vnc_systemd_display_parses() -> None:
    from vncmux.qemu_opts import parse_vnc

    spec = parse_vnc("systemd:0,share=allow-exclusive")
    assert (spec.kind, spec.path, spec.share) == ("systemd", "0", "allow-exclusive")
    assert parse_vnc("systemd:vnc").path == "vnc"
    from vncmux.errors import ConfigError

    with pytest.raises(ConfigError, match="systemd"):
        parse_vnc("systemd:")
    with pytest.raises(ConfigError, match="websocket=on"):
        parse_vnc("systemd:0,websocket=on")


def test_byte_socket_takes_systemd_endpoints() -> None:
    from vncmux.config import parse_socket
    from vncmux.errors import ConfigError

    assert parse_socket("systemd:domain=INET:index=1").endpoint == "systemd:domain=INET:index=1"
    with pytest.raises(ConfigError, match="unknown key 'port'"):
        parse_socket("systemd:domain=INET:port=1")


def test_preflight_names_a_missing_systemd_socket() -> None:
    from vncmux.errors import ConfigError
    from vncmux.preflight import check_endpoint
    from vncmux.specs import ByteServer

    with pytest.raises(ConfigError, match="systemd passed no such socket"):
        check_endpoint(ByteServer(endpoint="systemd:domain=INET:index=7", label="x"))
