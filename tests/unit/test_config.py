"""vncmux.config and vncmux.qemu_opts: every --device, --vnc, --socket and --chardev form,
and every error; vncmux.preflight: what the options name on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import clientFromString, serverFromString

from vncmux import preflight
from vncmux.config import (
    ByteClient,
    ByteServer,
    Config,
    ConsoleSpec,
    LogFile,
    PtyBackend,
    SerialSettings,
    TlsSettings,
    build_config,
    parse_chardevs,
    parse_device,
    parse_encoding,
    parse_serial,
    parse_socket,
    parse_vnc,
)
from vncmux.errors import ConfigError

SERIAL = SerialSettings()

MUX_BE_EXAMPLE = [
    "mux-be,id=mux0",
    "socket,path=/tmp/sock,server=on,wait=off,id=sock0,mux-be-id=mux0",
    "vc,id=vc0,mux-be-id=mux0",
]
HUB_EXAMPLE = [
    "socket,path=/tmp/sock,server=on,wait=off,id=sock0",
    "vc,id=vc0",
    "hub,id=hub0,chardevs.0=sock0,chardevs.1=vc0",
]


def error(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    """The ConfigError message of a call that must fail; one line."""
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def checked(**kwargs: object) -> Config:
    """What tap does: parse every option, then check what they name on this machine."""
    config = build_config(**kwargs)  # type: ignore[arg-type]
    preflight.check(config)
    return config


# -- --device -----------------------------------------------------------------------------


def test_device_default_is_the_users_shell() -> None:
    spec = parse_device(None, SERIAL, "/bin/zsh")
    assert (spec.kind, spec.command, spec.default_shell) == (
        "exec",
        ("/bin/zsh",),
        True,
    )


def test_device_default_without_shell_is_bin_sh() -> None:
    spec = parse_device(None, SERIAL, None)
    assert spec.command == ("/bin/sh",) and spec.default_shell


def test_device_tty_path_must_be_a_character_device() -> None:
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        serial = SerialSettings(baud=9600)
        spec = parse_device(path, serial, None)
        preflight.check_device(spec)  # a character device: accepted
        assert (spec.kind, spec.path, spec.serial, spec.default_shell) == (
            "tty",
            path,
            serial,
            False,
        )
        assert spec.label == path
    finally:
        os.close(master)
        os.close(slave)


def test_device_missing_tty() -> None:
    spec = parse_device("/dev/ttyUSB9", SERIAL, None)  # parsing looks at nothing
    assert (spec.kind, spec.path, spec.wait) == ("tty", "/dev/ttyUSB9", False)
    message = error(preflight.check_device, spec)
    assert message.startswith("device /dev/ttyUSB9 does not exist")
    assert "--wait-device" in message


def test_wait_device_accepts_a_tty_that_is_not_there_yet() -> None:
    spec = parse_device("/dev/ttyUSB9", SERIAL, None, wait=True)
    assert spec.wait
    preflight.check_device(spec)  # no error: it may be plugged in later
    assert build_config(device="/dev/ttyUSB9", wait_device=True).device.wait
    assert build_config(device="unix:/x", wait_device=True).device.wait
    assert not build_config(device="/dev/ttyUSB9").device.wait


def test_device_regular_file_is_not_a_tty(tmp_path: Path) -> None:
    regular = tmp_path / "notatty"
    regular.write_text("x")
    for wait in (False, True):  # waiting does not turn a file into a tty
        spec = parse_device(str(regular), SERIAL, None, wait=wait)
        assert "not a character device" in error(preflight.check_device, spec)


def test_device_unix() -> None:
    spec = parse_device("unix:/tmp/guest.sock", SERIAL, None)
    assert (spec.kind, spec.path, spec.label) == (
        "unix",
        "/tmp/guest.sock",
        "unix:/tmp/guest.sock",
    )
    assert "needs a path" in error(parse_device, "unix:", SERIAL, None)


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        ("tcp:localhost:4555", "localhost", 4555),
        ("tcp:[::1]:23", "::1", 23),
        ("tcp:10.0.0.1:1", "10.0.0.1", 1),
    ],
)
def test_device_tcp(value: str, host: str, port: int) -> None:
    spec = parse_device(value, SERIAL, None)
    assert (spec.kind, spec.host, spec.port) == ("tcp", host, port)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("tcp:host:0", "out of range"),
        ("tcp:host:70000", "out of range"),
        ("tcp:host:http", "not a whole number"),
        ("tcp::4555", "needs a host"),
        ("tcp:4555", "HOST:PORT"),
        ("tcp:[::1", "[ADDRESS]:PORT"),
    ],
)
def test_device_tcp_errors(value: str, needle: str) -> None:
    assert needle in error(parse_device, value, SERIAL, None)


def test_device_exec_is_shell_split() -> None:
    spec = parse_device("exec:bash -c 'echo hi there'", SERIAL, None)
    assert (spec.kind, spec.command, spec.default_shell) == (
        "exec",
        ("bash", "-c", "echo hi there"),
        False,
    )
    assert "needs a command" in error(parse_device, "exec:  ", SERIAL, None)
    assert "exec:" in error(parse_device, "exec:echo 'unterminated", SERIAL, None)


# -- serial options -------------------------------------------------------------------------


def test_serial_settings_from_strings() -> None:
    s = parse_serial("9600", "7", "e", "1.5", True, True, "on", "off")
    assert s == SerialSettings(
        baud=9600,
        bytesize=7,
        parity="E",
        stopbits=1.5,
        rtscts=True,
        xonxoff=True,
        dtr=True,
        rts=False,
    )
    assert parse_serial().dtr is None and parse_serial().rts is None
    assert parse_serial(stopbits="2").stopbits == 2


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"baud": "0"}, "--baud"),
        ({"baud": "fast"}, "--baud"),
        ({"bytesize": "9"}, "--bytesize"),
        ({"bytesize": "4"}, "--bytesize"),
        ({"parity": "X"}, "--parity"),
        ({"parity": "NE"}, "--parity"),
        ({"stopbits": "3"}, "--stopbits"),
        ({"dtr": "maybe"}, "--dtr"),
        ({"rts": "2"}, "--rts"),
    ],
)
def test_serial_errors(kwargs: dict[str, str], needle: str) -> None:
    assert error(parse_serial, **kwargs).startswith(needle)


# -- --vnc --------------------------------------------------------------------------------------


def test_vnc_none() -> None:
    assert parse_vnc("none").kind == "none"
    assert "no options" in error(parse_vnc, "none,share=ignore")


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        (":0", "", 5900),
        ("127.0.0.1:1", "127.0.0.1", 5901),
        ("[::1]:2", "::1", 5902),
        ("0.0.0.0:0", "0.0.0.0", 5900),
        ("localhost:10", "localhost", 5910),
    ],
)
def test_vnc_tcp_displays(value: str, host: str, port: int) -> None:
    spec = parse_vnc(value)
    assert (spec.kind, spec.host, spec.port) == ("tcp", host, port)
    assert (spec.share, spec.connections, spec.websocket, spec.tls, spec.cleartext) == (
        "force-shared",
        64,
        None,
        None,
        False,
    )


def test_vnc_default_value_is_loopback_display_0() -> None:
    config = build_config()
    assert (config.vnc.kind, config.vnc.host, config.vnc.port) == (
        "tcp",
        "127.0.0.1",
        5900,
    )


def test_vnc_unix() -> None:
    spec = parse_vnc("unix:/x")
    assert (spec.kind, spec.path) == ("unix", "/x")
    assert parse_vnc("unix:/a,,b,share=ignore").path == "/a,b"  # ',,' is a literal comma
    assert "needs a path" in error(parse_vnc, "unix:")


def test_vnc_options() -> None:
    spec = parse_vnc(
        ":3,share=allow-exclusive,connections=5,websocket=5800,password=off,"
        "tls-cert=/c.pem,tls-key=/k.pem,tls-ca=/ca.pem,x509verify=/d,cleartext=on"
    )
    assert (spec.share, spec.connections, spec.websocket) == (
        "allow-exclusive",
        5,
        5800,
    )
    assert spec.tls == TlsSettings(cert="/c.pem", key="/k.pem", ca="/ca.pem", verify=True)
    assert spec.cleartext
    assert parse_vnc(":3,websocket=on").websocket == 5703
    assert parse_vnc(":0,share=ignore").share == "ignore"
    assert parse_vnc("unix:/v,tls-cert=/c,cleartext").cleartext  # bare key = on


def test_vnc_tls_settings() -> None:
    assert parse_vnc(":0").tls is None
    assert parse_vnc(":0,tls-cert=/c").tls == TlsSettings("/c", "/c")  # key in the cert file
    assert parse_vnc(":0,tls-cert=/c,tls-key=/k,tls-ca=/a,x509verify=on").tls == (
        TlsSettings("/c", "/k", "/a", True)
    )
    assert parse_vnc(":0,tls-cert=/c,tls-ca=/a,x509verify=off").tls == TlsSettings(
        "/c", "/c", "/a", False
    )
    assert parse_vnc(":0,x509verify=/etc/pki/vnc/").tls == TlsSettings(  # QEMU's old form
        "/etc/pki/vnc/server-cert.pem",
        "/etc/pki/vnc/server-key.pem",
        "/etc/pki/vnc/ca-cert.pem",
        True,
    )


def test_vnc_password_on_is_refused() -> None:
    """QEMU's password=on means 'set later through the monitor'; vncmux has no monitor, so
    accepting it would leave the server open while the user believes it is protected."""
    for value in (":0,password=on", ":0,password", "unix:/v,password=yes"):
        message = error(parse_vnc, value)
        assert "password=on" in message and "--password-file" in message
    assert "password=on" in error(build_config, vnc="0.0.0.0:0,password=on")
    assert parse_vnc(":0,password=off").tls is None  # QEMU's default: accepted


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("foo", "expected [HOST]:DISPLAY"),
        ("", "expected [HOST]:DISPLAY"),
        (":x", "not a whole number"),
        (":-1", "out of range"),
        (":60000", "out of range"),
        ("[::1:0", "expected [HOST]:DISPLAY"),
        (":0,lossy=on", "unknown option 'lossy'"),
        (":0,bogus", "unknown option 'bogus'"),
        (":0,share=sometimes", "share=sometimes"),
        (":0,connections=0", "connections"),
        (":0,websocket=99999", "websocket"),
        ("unix:/x,websocket=on", "websocket=on"),
        (":0,share=ignore,share=ignore", "twice"),
        (":0,password=maybe", "password"),
        (":0,tls-cert=", "needs a value"),
        (":0,tls-key=/k", "tls-key= needs tls-cert="),
        (":0,tls-ca=/a", "tls-ca= needs tls-cert="),
        (":0,x509verify=on", "x509verify= needs tls-cert="),
        (":0,tls-cert=/c,x509verify=on", "needs tls-ca=FILE"),
        (":0,tls-cert=/c,x509verify=", "needs a value"),
        (":0,cleartext=on", "cleartext=on only makes sense with tls-cert="),
        (":0,tls-cert=/c,cleartext=sometimes", "cleartext"),
    ],
)
def test_vnc_errors(value: str, needle: str) -> None:
    assert needle in error(parse_vnc, value)


# -- --socket -------------------------------------------------------------------------------


def test_socket_unix_gets_mode_600_unless_given() -> None:
    assert parse_socket("unix:/run/c.sock").endpoint == "unix:/run/c.sock:mode=600"
    assert parse_socket("unix:/run/c.sock:mode=660").endpoint == "unix:/run/c.sock:mode=660"
    assert parse_socket("unix:/run/c.sock:lockfile=0").endpoint == (
        "unix:/run/c.sock:lockfile=0:mode=600"
    )
    assert parse_socket("unix:/r:mode=644").label == "unix:/r:mode=644"


def test_socket_tcp_forms_are_kept_verbatim() -> None:
    for value in (
        "tcp:4555",
        "tcp:4555:interface=127.0.0.1",
        "tcp6:4555:interface=\\:\\:1",
        "tcp:0",
    ):
        assert parse_socket(value) == ByteServer(endpoint=value, label=value)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("udp:53", "expected tcp:PORT"),
        ("tcp:", "expected tcp:PORT"),
        ("unix:", "expected"),
        ("tcp:99999", "out of range"),
        ("tcp:http", "not a whole number"),
        ("unix:/x:mode=999", "--socket unix:/x:mode=999"),
        ("tcp:80:nonsense=1", "--socket"),
        ("tcp:80:nonsense=1", "unknown key 'nonsense'"),
        ("unix:/x:port=4", "unknown key 'port'"),
    ],
)
def test_socket_errors(value: str, needle: str) -> None:
    assert needle in error(parse_socket, value)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("ssl:4443:privateKey=/nonexistent.pem", "--socket ssl"),
        ("ssl:4443:privateKey=/nonexistent.pem", "No such file"),
        ("tcp:80:backlog=many", "--socket tcp:80:backlog=many"),
        ("tcp:80:127.0.0.1:5:6", "positional"),
    ],
)
def test_socket_errors_found_at_start(value: str, needle: str) -> None:
    """Parsing reads no key file: the endpoint is built (not listened on) by preflight."""
    spec = parse_socket(value)
    assert needle in error(preflight.check_endpoint, spec)


def test_socket_endpoint_error_names_the_chardev() -> None:
    server = ByteServer(endpoint="tcp:80:backlog=x", label="sock0")
    assert error(preflight.check_endpoint, server).startswith("chardev sock0 (tcp:80:backlog=x)")


# -- --chardev: the two QEMU examples ------------------------------------------------------------


def test_mux_be_example_parses_verbatim() -> None:
    plan = parse_chardevs(MUX_BE_EXAMPLE)
    assert plan.mux == "mux0"
    assert plan.servers == (ByteServer(endpoint="unix:/tmp/sock:mode=600", label="sock0"),)
    assert plan.console == ConsoleSpec(cols=80, rows=24)
    assert (plan.clients, plan.logfiles, plan.ptys) == ((), (), ())


def test_hub_example_parses_verbatim() -> None:
    plan = parse_chardevs(HUB_EXAMPLE)
    assert plan.mux == "hub0"
    assert plan.servers == (ByteServer(endpoint="unix:/tmp/sock:mode=600", label="sock0"),)
    assert plan.console is not None


def test_chardev_endpoints_are_valid_twisted_strings() -> None:
    plan = parse_chardevs(
        [
            "socket,id=a,path=/tmp/odd:name=x,server=on",
            "socket,id=b,host=127.0.0.1,port=4555,server=on",
            "socket,id=c,host=::1,port=4556,server=on",
            "socket,id=d,port=4557,server=on",
            "socket,id=e,path=/tmp/q.sock",
            "socket,id=f,host=example.org,port=23",
            "socket,id=g,path=/tmp/m.sock,server=on,mode=660",
        ]
    )
    assert [s.endpoint for s in plan.servers] == [
        "unix:/tmp/odd\\:name\\=x:mode=600",
        "tcp:4555:interface=127.0.0.1",
        "tcp6:4556:interface=\\:\\:1",
        "tcp:4557",
        "unix:/tmp/m.sock:mode=660",
    ]
    assert plan.clients == (
        ByteClient(endpoint="unix:path=/tmp/q.sock", label="e"),
        ByteClient(endpoint="tcp:host=example.org:port=23", label="f"),
    )
    reactor = object()
    unixServer = serverFromString(reactor, plan.servers[0].endpoint)
    assert unixServer._address == "/tmp/odd:name=x"  # type: ignore[attr-defined]
    assert unixServer._mode == 0o600  # type: ignore[attr-defined]
    assert serverFromString(reactor, plan.servers[2].endpoint)._interface == "::1"  # type: ignore[attr-defined]
    assert clientFromString(reactor, plan.clients[1].endpoint)._host == "example.org"  # type: ignore[attr-defined]


def test_chardev_legacy_flags_and_comma_escape() -> None:
    plan = parse_chardevs(["socket,id=s,path=/tmp/a,,b,server,nowait"])
    assert plan.servers == (ByteServer(endpoint="unix:/tmp/a,b:mode=600", label="s"),)


def test_chardev_client_host_defaults_to_loopback() -> None:
    plan = parse_chardevs(["socket,id=s,port=4000"])
    assert plan.clients == (ByteClient(endpoint="tcp:host=127.0.0.1:port=4000", label="s"),)


def test_chardev_file_pty_vc() -> None:
    plan = parse_chardevs(
        [
            "file,id=log,path=/var/log/console.log",
            "pty,id=p0",
            "pty,id=p1",
            "vc,id=vc0,cols=132,rows=43",
        ]
    )
    assert plan.logfiles == (LogFile(path="/var/log/console.log", label="log"),)
    assert plan.ptys == (PtyBackend(label="p0"), PtyBackend(label="p1"))
    assert plan.console == ConsoleSpec(cols=132, rows=43)
    assert plan.mux is None
    assert parse_chardevs(["file,id=l,path=/x,append=on"]).logfiles[0].path == "/x"


def test_chardev_vc_pixels_and_default_size() -> None:
    plan = parse_chardevs(["vc,id=v,width=1024,height=768"], cols=100, rows=30)
    assert plan.console == ConsoleSpec(cols=100, rows=30, width=1024, height=768)


def test_no_chardevs_is_an_empty_plan() -> None:
    plan = parse_chardevs([])
    assert (plan.servers, plan.console, plan.mux) == ((), None, None)


# -- --chardev: every error class ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "needle"),
    [
        (["bogus,id=x"], "unknown chardev type 'bogus'"),
        (["id=x,path=/y"], "must start with the type"),
        (
            ["socket,id=s,path=/x,colour=red"],
            "unknown key 'colour' for a socket chardev",
        ),
        (["vc,id=v,path=/x"], "unknown key 'path' for a vc chardev"),
        (["pty,id=p,path=/x"], "unknown key 'path' for a pty chardev"),
        (["mux-be,id=m,chardevs.0=x"], "unknown key 'chardevs.0' for a mux-be chardev"),
        (["socket,path=/x,server=on"], "missing id"),
        (["vc,id="], "missing id"),
        (["vc,id=0bad"], "not valid"),
        (["pty,id=a", "pty,id=a"], "duplicate chardev id 'a'"),
        (
            ["pty,id=a,mux-be-id=nowhere"],
            "mux-be-id=nowhere names no chardev (dangling)",
        ),
        (
            ["pty,id=a", "hub,id=h,chardevs.0=a", "pty,id=b,mux-be-id=h"],
            "names a hub chardev, not a mux-be (dangling)",
        ),
        (["pty,id=a,mux-be-id=b", "pty,id=b"], "names a pty chardev, not a mux-be"),
        (["hub,id=h,chardevs.0=ghost"], "chardevs.0=ghost names no chardev (dangling)"),
        (["mux-be,id=m0", "mux-be,id=m1,mux-be-id=m0"], "stacked mux"),
        (["mux-be,id=m0", "hub,id=h,chardevs.0=m0"], "stacked mux"),
        (
            ["pty,id=a", "hub,id=h0,chardevs.0=a", "hub,id=h1,chardevs.0=h0"],
            "stacked mux",
        ),
        (
            ["pty,id=a", "hub,id=h0,chardevs.0=a", "hub,id=h1,chardevs.0=a"],
            "chardev a is attached to both h0 and h1",
        ),
        (
            ["pty,id=a,mux-be-id=m", "mux-be,id=m", "hub,id=h,chardevs.0=a"],
            "chardev a is attached to both m and h",
        ),
        (["pty,id=a", "hub,id=h,chardevs.0=a,chardevs.1=a"], "attached to h twice"),
        (
            [
                "pty,id=a,mux-be-id=m0",
                "pty,id=b,mux-be-id=m1",
                "mux-be,id=m0",
                "mux-be,id=m1",
            ],
            "more than one mux-be/hub",
        ),
        (["vc,id=v0", "vc,id=v1"], "more than one vc"),
        (
            ["mux-be,id=m", "pty,id=a,mux-be-id=m", "pty,id=b"],
            "chardev b is not attached to the hub m",
        ),
        (
            ["hub,id=h,chardevs.0=a", "pty,id=a", "vc,id=v"],
            "chardev v is not attached to the hub h",
        ),
        (["hub,id=h"], "a hub needs chardevs.0"),
        (["socket,id=s,server=on"], "socket needs path= (UNIX) or port= (TCP)"),
        (["socket,id=s,host=localhost,server=on"], "socket needs path="),
        (["socket,id=s,path=/x,port=4"], "either path= or host=/port="),
        (["socket,id=s,path=/x,server=maybe"], "server"),
        (["socket,id=s,port=99999,server=on"], "out of range"),
        (["socket,id=s,port=4000,wait=off"], "wait= only applies to server=on"),
        (["socket,id=s,path=/x,telnet=on"], "telnet= is supported on server=on sockets only"),
        (["socket,id=s,path=/x,server=on,rfc2217=on"], "rfc2217=on needs telnet=on"),
        (["socket,id=s,path=/x,server=on,mode=rw"], "not an octal file mode"),
        (["socket,id=s,port=5,server=on,mode=600"], "mode= only applies to UNIX"),
        (["socket,id=s,path=/x,path=/y"], "given twice"),
        (["file,id=f"], "needs path="),
        (["vc,id=v,cols"], "cols needs a value"),
        (["socket,id=s,path=,server=on"], "path needs a value"),
        (["socket,id=s,path=/x,server="], "server needs a value"),
        (["file,id=f,path=/x,append=off"], "append=off is not supported"),
        (["vc,id=v,cols=0"], "cols"),
        (["vc,id=v,rows=1001"], "rows"),
        (["vc,id=v,width=wide"], "width"),
    ],
)
def test_chardev_errors(specs: list[str], needle: str) -> None:
    assert needle in error(parse_chardevs, specs)


def test_chardev_telnet_off_is_accepted() -> None:
    plan = parse_chardevs(["socket,id=s,port=4000,server=on,telnet=off,wait=on"])
    assert plan.servers == (ByteServer(endpoint="tcp:4000", label="s"),)


# -- build_config -------------------------------------------------------------------------------------


def test_build_config_defaults() -> None:
    config = build_config(shell="/bin/bash")
    assert config.device.command == ("/bin/bash",) and config.device.default_shell
    assert config.console == ConsoleSpec(cols=80, rows=24)
    assert (
        config.max_clients,
        config.stall_timeout,
        config.encoding,
        config.password_file,
    ) == (64, 10.0, "utf-8", None)


def test_vnc_none_without_vc_is_a_pure_byte_multiplexer() -> None:
    config = build_config(vnc="none", sockets=["tcp:4555"])
    assert config.console is None
    assert config.servers == (ByteServer(endpoint="tcp:4555", label="tcp:4555"),)


def test_vc_without_vnc_still_has_a_console() -> None:
    config = build_config(vnc="none", chardevs=["vc,id=v,cols=100"], rows="30")
    assert config.console == ConsoleSpec(cols=100, rows=30)


def test_cols_rows_size_the_implied_console_and_vc_overrides() -> None:
    assert build_config(cols="132", rows="50").console == ConsoleSpec(cols=132, rows=50)
    config = build_config(cols="132", rows="50", chardevs=["vc,id=v,rows=20"])
    assert config.console == ConsoleSpec(cols=132, rows=20)


def test_build_config_merges_sockets_and_chardevs_in_order() -> None:
    config = build_config(
        device="unix:/tmp/guest.sock",
        sockets=["unix:/run/a.sock", "tcp:4555:interface=127.0.0.1"],
        chardevs=[
            *MUX_BE_EXAMPLE,
            "file,id=log,path=/tmp/l,mux-be-id=mux0",
            "socket,id=up,host=h,port=1,mux-be-id=mux0",
        ],
        stall_timeout="0",
        max_clients="3",
        encoding="latin-1",
    )
    assert [s.endpoint for s in config.servers] == [
        "unix:/run/a.sock:mode=600",
        "tcp:4555:interface=127.0.0.1",
        "unix:/tmp/sock:mode=600",
    ]
    assert config.clients == (ByteClient(endpoint="tcp:host=h:port=1", label="up"),)
    assert config.logfiles == (LogFile(path="/tmp/l", label="log"),)
    assert (config.stall_timeout, config.max_clients, config.encoding) == (
        0.0,
        3,
        "iso8859-1",
    )
    assert config.device.kind == "unix"


def test_build_config_serial_goes_to_the_device() -> None:
    config = build_config(device="tcp:h:1", baud="9600", parity="O", dtr="off")
    assert config.device.serial == SerialSettings(baud=9600, parity="O", dtr=False)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cols": "0"}, "--cols"),
        ({"rows": "1001"}, "--rows"),
        ({"cols": "wide"}, "--cols"),
        ({"stall_timeout": "-1"}, "--stall-timeout"),
        ({"stall_timeout": "soon"}, "--stall-timeout"),
        ({"stall_timeout": "nan"}, "--stall-timeout"),
        ({"max_clients": "0"}, "--max-clients"),
        ({"encoding": "klingon"}, "--encoding: unknown encoding 'klingon'"),
        ({"encoding": "hex"}, "not a text encoding"),
        ({"baud": "-5"}, "--baud"),
        (
            {"password_file": "/nonexistent/pw"},
            "--password-file /nonexistent/pw does not exist",
        ),
        ({"device": "/dev/ttyUSB9"}, "device /dev/ttyUSB9 does not exist"),
        ({"vnc": "nope"}, "--vnc"),
        ({"sockets": ["bogus:1"]}, "--socket bogus:1"),
        ({"chardevs": ["bogus,id=x"]}, "unknown chardev type"),
    ],
)
def test_build_config_errors(kwargs: dict[str, object], needle: str) -> None:
    assert needle in error(checked, **kwargs)


def test_password_file_must_be_readable(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    assert checked(password_file=str(pw)).password_file == str(pw)
    assert "does not exist" in error(checked, password_file=str(tmp_path))  # a directory
    if os.geteuid() != 0:  # root reads anything
        pw.chmod(0)
        assert "not readable" in error(checked, password_file=str(pw))


def test_encodings() -> None:
    assert parse_encoding("UTF8") == "utf-8"
    assert parse_encoding("cp437") == "cp437"
    assert parse_encoding("latin-1") == "iso8859-1"


# -- robustness: any text is either parsed or refused with a ConfigError ---------------------------

_OPTION_TEXT = st.text(alphabet="socketvhubmx-pfilrdnaw=,.:/[]0123456789 ", max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(_OPTION_TEXT, max_size=4))
def test_chardev_parser_only_raises_config_error(specs: list[str]) -> None:
    try:
        parse_chardevs(specs)
    except ConfigError as e:
        assert "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(_OPTION_TEXT, _OPTION_TEXT)
def test_vnc_and_socket_parsers_only_raise_config_error(vnc: str, socket: str) -> None:
    for parse, value in ((parse_vnc, vnc), (parse_socket, socket)):
        try:
            parse(value)  # type: ignore[operator]
        except ConfigError as e:
            assert "\n" not in str(e)


# -- --history, --socket-replay, chardev replay= (sizes as QEMU spells them) --------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("65536", 65536),
        ("64K", 64 * 1024),
        ("64k", 64 * 1024),
        ("64KiB", 64 * 1024),
        ("1M", 1 << 20),
        (" 16m ", 16 << 20),
        ("1G", 1 << 30),
        ("512B", 512),
    ],
)
def test_history_sizes(text: str, size: int) -> None:
    assert build_config(history=text).history == size


def test_history_defaults_to_one_mebibyte_and_replay_to_none() -> None:
    config = build_config(sockets=["tcp:4555"], chardevs=["socket,id=s,port=4556,server=on"])
    assert config.history == 1 << 20
    assert [s.replay for s in config.servers] == [0, 0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"history": "lots"}, "--history: 'lots' is not a size"),
        ({"history": "-1"}, "--history: '-1' is not a size"),
        ({"history": "1.5M"}, "--history: '1.5M' is not a size"),
        ({"history": "2G"}, "--history: 2G is too large (at most 1024M)"),
        ({"history": "1T"}, "--history: 1T is too large"),
        ({"socket_replay": "64Q", "sockets": ["tcp:1"]}, "--socket-replay: '64Q' is not a size"),
        (
            {"chardevs": ["socket,id=s0,port=1,server=on,replay=big"]},
            "chardev s0 replay: 'big' is not a size",
        ),
        (
            {"history": "0", "socket_replay": "64K", "sockets": ["tcp:1"]},
            "--socket-replay needs the output history, which --history 0 turns off",
        ),
        (
            {"history": "0", "chardevs": ["socket,id=up,host=h,port=1,replay=1K"]},
            "chardev up replay= needs the output history, which --history 0 turns off",
        ),
    ],
)
def test_history_and_replay_errors(kwargs: dict[str, object], needle: str) -> None:
    assert needle in error(build_config, **kwargs)


def test_socket_replay_applies_to_every_socket_and_socket_ro_endpoint() -> None:
    config = build_config(
        sockets=["tcp:4555"],
        sockets_ro=["unix:/run/ro.sock"],
        chardevs=["socket,id=s,port=4556,server=on"],
        socket_replay="64K",
    )
    assert [(s.endpoint, s.readonly, s.replay) for s in config.servers] == [
        ("tcp:4555", False, 65536),
        ("unix:/run/ro.sock:mode=600", True, 65536),
        ("tcp:4556", False, 0),  # a chardev socket says its own replay=
    ]


def test_chardev_socket_replay_for_servers_and_clients() -> None:
    plan = parse_chardevs(
        [
            "socket,id=a,path=/tmp/a.sock,server=on,replay=64K",
            "socket,id=b,host=::1,port=4000,server=on,replay=1M",
            "socket,id=c,host=h,port=1,replay=4096",
            "socket,id=d,path=/tmp/d.sock,replay=0",
        ]
    )
    assert plan.servers == (
        ByteServer(endpoint="unix:/tmp/a.sock:mode=600", label="a", replay=65536),
        ByteServer(endpoint="tcp6:4000:interface=\\:\\:1", label="b", replay=1 << 20),
    )
    assert plan.clients == (
        ByteClient(endpoint="tcp:host=h:port=1", label="c", replay=4096),
        ByteClient(endpoint="unix:path=/tmp/d.sock", label="d", replay=0),
    )


def test_history_options_reach_the_config_from_the_command_line() -> None:
    from vncmux.tap import Options

    options = Options()
    options.parseOptions(
        ["--vnc", "none", "--socket", "tcp:0", "--history", "256K", "--socket-replay", "8K"]
    )
    assert options.config is not None
    assert options.config.history == 256 * 1024
    assert [s.replay for s in options.config.servers] == [8192]
