"""vncmux.tap and vncmux.service: option handling, the one-line error contract, and wiring.

The wiring tests replace the worker modules (devices, sockets, the console's services) with
recording fakes, so they check exactly which factory gets which arguments, without opening
anything.
The subprocess tests run the real ``twistd`` with the plugin, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from twisted.application.service import MultiService, Service
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent

from vncmux import service, tap
from vncmux.config import build_config
from vncmux.errors import ConfigError
from vncmux.hub import Hub

REPO = Path(__file__).resolve().parents[2]
TWISTD = "from twisted.scripts.twistd import run; run()"
MUX_BE_EXAMPLE = [
    "--chardev",
    "mux-be,id=mux0",
    "--chardev",
    "socket,path=/tmp/sock,server=on,wait=off,id=sock0,mux-be-id=mux0",
    "--chardev",
    "vc,id=vc0,mux-be-id=mux0",
]


# -- Options -------------------------------------------------------------------------------------


def test_options_build_the_config() -> None:
    options = tap.Options()
    options.parseOptions(
        [
            "--device",
            "unix:/tmp/guest.sock",
            "--vnc",
            "0.0.0.0:1,share=ignore",
            "--socket",
            "tcp:4555",
            "--socket",
            "unix:/tmp/b.sock",
            *MUX_BE_EXAMPLE,
            "--cols",
            "100",
            "--rows",
            "40",
            "--baud",
            "9600",
            "--rtscts",
            "--dtr",
            "on",
            "--stall-timeout",
            "2.5",
            "--max-clients",
            "7",
            "--encoding",
            "cp437",
        ]
    )
    config = options.config
    assert config is not None
    assert config.device.label == "unix:/tmp/guest.sock"
    assert (config.vnc.host, config.vnc.port, config.vnc.share) == (
        "0.0.0.0",
        5901,
        "ignore",
    )
    assert [s.endpoint for s in config.servers] == [
        "tcp:4555",
        "unix:/tmp/b.sock:mode=600",
        "unix:/tmp/sock:mode=600",
    ]
    assert config.console is not None
    assert (config.console.cols, config.console.rows) == (100, 40)
    assert (
        config.device.serial.baud,
        config.device.serial.rtscts,
        config.device.serial.dtr,
    ) == (9600, True, True)
    assert (config.stall_timeout, config.max_clients, config.encoding) == (
        2.5,
        7,
        "cp437",
    )


def test_options_default_device_is_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/dash")
    options = tap.Options()
    options.parseOptions([])
    assert options.config is not None
    assert options.config.device.command == ("/bin/dash",)
    assert options.config.device.default_shell


def test_options_error_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = tap.Options()
    with pytest.raises(SystemExit) as info:
        options.parseOptions(["--chardev", "vc,id=a", "--chardev", "vc,id=b"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("vncmux: error: more than one vc chardev")
    assert err.count("\n") == 1


def test_wait_device_flag(capsys: pytest.CaptureFixture[str]) -> None:
    options = tap.Options()
    options.parseOptions(["--device", "/dev/ttyUSB9", "--wait-device", "--vnc", "none"])
    assert options.config is not None
    assert (options.config.device.path, options.config.device.wait) == ("/dev/ttyUSB9", True)
    with pytest.raises(SystemExit) as info:  # without the flag: refused at start
        tap.Options().parseOptions(["--device", "/dev/ttyUSB9", "--vnc", "none"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("vncmux: error: device /dev/ttyUSB9 does not exist")


def test_options_check_the_files_they_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parsing is pure; the Options run the start-up checks (preflight) right after it."""
    full = tmp_path / "full"
    full.write_text("same\n")
    view = tmp_path / "view"
    view.write_text("same\n")
    with pytest.raises(SystemExit) as info:
        tap.Options().parseOptions(
            ["--password-file", str(full), "--view-password-file", str(view)]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("vncmux: error: --view-password-file") and err.count("\n") == 1
    assert "same password" in err


# -- service wiring with recording fakes ------------------------------------------------------------


class Recorder:
    """Fake factories: each call is recorded and answered with a fresh named Service."""

    def __init__(self, failOn: str | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.failOn = failOn

    def factory(self, name: str) -> Any:
        def make(*args: Any, **kwargs: Any) -> Service:
            self.calls.append((name, args + tuple(sorted(kwargs.items()))))
            if name == self.failOn:
                raise ConfigError("cannot listen on tcp:4555: address already in use")
            svc = Service()
            svc.setName(f"{name}#{len(self.calls)}")
            return svc

        return make

    def install(self, monkeypatch: pytest.MonkeyPatch, console: bool = True) -> None:
        devices = types.ModuleType("vncmux.devices")
        devices.makeDeviceService = self.factory("device")  # type: ignore[attr-defined]
        sockets = types.ModuleType("vncmux.sockets")
        for attr, name in [
            ("makeByteServerService", "server"),
            ("makeByteClientService", "client"),
            ("makeLogFileService", "logfile"),
            ("makePtyService", "pty"),
        ]:
            setattr(sockets, attr, self.factory(name))
        monkeypatch.setitem(sys.modules, "vncmux.devices", devices)
        monkeypatch.setitem(sys.modules, "vncmux.sockets", sockets)
        if console:
            make = self.factory("console")
            monkeypatch.setattr(service, "makeConsoleServices", lambda *a, **k: [make(*a, **k)])
        else:
            # Importing the console stack in byte-only mode would now raise ImportError.
            for name in ("vncmux.console.console", "vncmux.rfb.service"):
                monkeypatch.setitem(sys.modules, name, None)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def test_byte_only_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch, console=False)
    config = build_config(
        device="tcp:qemu:4444",
        vnc="none",
        sockets=["tcp:4555"],
        max_clients=5,
        stall_timeout=3,
        chardevs=["socket,id=up,host=h,port=1", "file,id=log,path=/tmp/l", "pty,id=p"],
    )
    reactor = MemoryReactorClock()
    top = service.makeService(config, reactor).get("console")  # the one console's tree
    assert isinstance(top, MultiService)
    assert recorder.names() == ["device", "server", "client", "logfile", "pty"]
    calls = dict(recorder.calls)
    spec, hub, devReactor, cols, rows = calls["device"]
    assert (spec, devReactor, cols, rows) == (config.device, reactor, 80, 24)
    assert isinstance(hub, Hub) and hub.stallTimeout == 3
    assert calls["server"] == (
        "tcp:4555",
        hub,
        reactor,
        5,
        "tcp:4555",
        False,
        ("replay", None),
        ("rfc2217", False),
        ("telnet", False),
    )
    assert calls["client"] == ("tcp:host=h:port=1", hub, reactor, "up", ("replay", None))
    assert calls["logfile"] == ("/tmp/l", hub)
    assert calls["pty"] == (hub, reactor, ("label", "p"))
    assert len(list(top)) == 5  # every service is a child of the returned tree
    assert not top.running  # built, not started


def test_console_wiring_and_summary_log(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    config = build_config(
        device="unix:/tmp/g.sock", vnc=":0", chardevs=["vc,id=v,cols=132,rows=43"]
    )
    reactor = MemoryReactorClock()
    with capturedLogs() as events:
        top = service.makeService(config, reactor).get("console")  # the one console's tree
    assert recorder.names() == ["device", "console"]
    calls = dict(recorder.calls)
    assert calls["device"][3:] == (132, 43)
    assert calls["console"][:4] == (config, config.console, calls["device"][1], reactor)
    assert len(list(top)) == 2
    text = "\n".join(formatEvent(e) for e in events)
    assert "unix:/tmp/g.sock" in text
    assert "all interfaces:5900" in text and "132x43" in text


def test_tap_makeService_turns_a_busy_port_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = Recorder(failOn="server")
    recorder.install(monkeypatch, console=False)
    options = tap.Options()
    options.parseOptions(["--device", "tcp:h:1", "--vnc", "none", "--socket", "tcp:4555"])
    with pytest.raises(SystemExit) as info:
        tap.makeService(options)
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "vncmux: error: cannot listen on tcp:4555: address already in use\n"
    )


def test_tap_makeService_warns_about_readable_password_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch, console=False)
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    pw.chmod(0o644)
    args = ["--device", "tcp:h:1", "--vnc", "none", "--password-file", str(pw)]
    options = tap.Options()
    options.parseOptions(args)
    with capturedLogs() as events:
        tap.makeService(options)
    err = capsys.readouterr().err
    assert err == (
        f"vncmux: WARNING: --password-file {pw} is readable by its group and every user "
        f"(mode 0644): whoever reads it can use it to reach the console (chmod 600 {pw})\n"
    )
    assert any("WARNING: --password-file" in formatEvent(e) for e in events)
    pw.chmod(0o600)
    options.parseOptions(args)
    tap.makeService(options)
    assert capsys.readouterr().err == ""


def test_describe_vnc() -> None:
    assert "[::1]:5902" in service.describeVnc(build_config(vnc="[::1]:2,websocket=5800"))
    assert "websocket port 5800" in service.describeVnc(build_config(vnc=":0,websocket=5800"))
    assert "unix:/x" in service.describeVnc(build_config(vnc="unix:/x"))
    assert service.describeVnc(build_config(vnc="none")) == "no VNC server"


# -- the real twistd, as a subprocess -------------------------------------------------------------------


def twistd(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "vncmux", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chardev", "bogus,id=x"], "unknown chardev type 'bogus'"),
        (["--chardev", "socket,id=s,path=/tmp/x,colour=red"], "unknown key 'colour'"),
        (
            ["--chardev", "pty,id=p,mux-be-id=mux9"],
            "mux-be-id=mux9 names no chardev (dangling)",
        ),
        (
            ["--chardev", "mux-be,id=m0", "--chardev", "mux-be,id=m1,mux-be-id=m0"],
            "stacked mux",
        ),
        (["--device", "/dev/ttyUSB9"], "device /dev/ttyUSB9 does not exist"),
        (["--vnc", "bogus"], "--vnc 'bogus'"),
        (["--baud", "fast"], "--baud: 'fast' is not a whole number"),
        (["--devise", "/dev/ttyS0"], "option --devise not recognized"),
        (["--vnc", ":0,password=on"], "vncmux has no monitor"),
        (["--socket", "ssl:4443:privateKey=/nonexistent.pem"], "No such file"),
    ],
)
def test_twistd_reports_one_line_and_fails(args: list[str], message: str) -> None:
    result = twistd(*args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == 2
    assert lines[0].startswith("vncmux: error: ")
    assert message in lines[0]
    assert "Usage" not in result.stdout


def test_twistd_help_lists_every_option() -> None:
    result = twistd("--help")
    assert result.returncode == 0, result.stderr
    for option in [
        "device",
        "vnc",
        "socket",
        "chardev",
        "cols",
        "rows",
        "baud",
        "bytesize",
        "parity",
        "stopbits",
        "rtscts",
        "xonxoff",
        "dtr",
        "rts",
        "stall-timeout",
        "max-clients",
        "encoding",
        "password-file",
        "wait-device",
    ]:
        assert f"--{option}" in result.stdout, option
    assert "[default: 127.0.0.1:0]" in result.stdout
