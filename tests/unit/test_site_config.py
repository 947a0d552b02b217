"""The config file for many consoles: TOML → Site, and every mistake named by file, console
and key (vncmux.site_config, vncmux.config.build_site, vncmux.addresses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vncmux import preflight
from vncmux.config import ConfigError, build_config, build_site
from vncmux.site_config import console_keys, parse_site, site_keys

PATH = "/etc/vncmux/consoles.toml"

THREE = """
history = "64K"
baud = 9600

[[console]]
name = "router"
device = "/dev/ttyUSB0"
vnc = "127.0.0.1:1"
sockets = ["tcp:4001:interface=127.0.0.1"]

[[console]]
name = "switch"
device = "tcp:127.0.0.1:7000"
vnc = "none"
baud = 115200
chardevs = ["file,id=log,path=/var/log/switch.log"]

[[console]]
name = "vm-1"
device = "unix:/run/vm1.sock"
vnc = "127.0.0.1:3,websocket=5703"
wait-device = false
cols = 132
"""


def error(text: str, **kw: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_site(text, PATH, **kw)  # type: ignore[arg-type]
    return str(info.value)


def test_three_consoles_in_order_with_defaults_and_overrides() -> None:
    site = parse_site(THREE, PATH)
    assert site.source == PATH
    assert [c.name for c in site.consoles] == ["router", "switch", "vm-1"]
    router, switch, vm = site.consoles
    assert router.device.path == "/dev/ttyUSB0" and router.device.serial.baud == 9600
    assert switch.device.serial.baud == 115200  # its own value wins over the top level
    assert all(c.history == 64 * 1024 for c in site.consoles)
    assert router.vnc.port == 5901 and switch.vnc.kind == "none" and switch.console is None
    assert vm.vnc.websocket == 5703 and vm.console is not None and vm.console.cols == 132
    assert router.servers[0].endpoint == "tcp:4001:interface=127.0.0.1"
    assert switch.logfiles[0].path == "/var/log/switch.log"


def test_devices_in_a_file_wait_unless_a_console_says_otherwise() -> None:
    router, switch, vm = parse_site(THREE, PATH).consoles
    assert router.device.wait and switch.device.wait
    assert not vm.device.wait


def test_a_console_is_the_same_config_as_the_command_line_gives() -> None:
    """One code path: the file's values go through build_config as the options do."""
    site = parse_site(THREE, PATH)
    assert site.consoles[0] == build_config(
        name="router",
        device="/dev/ttyUSB0",
        vnc="127.0.0.1:1",
        sockets=["tcp:4001:interface=127.0.0.1"],
        baud="9600",
        history="64K",
        wait_device=True,
    )


def test_keys_are_the_builders_parameters() -> None:
    assert {"device", "vnc", "sockets", "chardevs", "wait_device", "name"} <= set(console_keys())
    assert "shell" not in console_keys()
    assert "consoles" not in site_keys() and "source" not in site_keys()


def test_underscores_spell_the_same_key() -> None:
    text = THREE.replace("wait-device", "wait_device")
    assert parse_site(text, PATH) == parse_site(THREE, PATH)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("baud = 9600", "baud = 'fast'"), f"{PATH}: console 'router': key 'baud': "),
        (("cols = 132", "cols = 5000"), f"{PATH}: console 'vm-1': key 'cols': "),
        (('vnc = "none"', 'vnc = "nowhere"'), f"{PATH}: console 'switch': key 'vnc': "),
        (('name = "vm-1"', 'name = "vm 1"'), f"{PATH}: console 'vm 1': key 'name': "),
        (("cols = 132", "colour = 1"), f"{PATH}: console 'vm-1': key 'colour': unknown key"),
        (
            ("wait-device = false", 'wait-device = "no"'),
            f"{PATH}: console 'vm-1': key 'wait-device': expected true or false",
        ),
        (
            ('sockets = ["tcp:4001:interface=127.0.0.1"]', "sockets = [4001]"),
            f"{PATH}: console 'router': key 'sockets': expected a list of strings",
        ),
        (
            ('chardevs = ["file,id=log,path=/var/log/switch.log"]', 'chardevs = ["bogus"]'),
            f"{PATH}: console 'switch': key 'chardevs': ",
        ),
        (('history = "64K"', 'histroy = "64K"'), f"{PATH}: key 'histroy': unknown key"),
    ],
)
def test_every_error_names_file_console_and_key(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in THREE
    message = error(THREE.replace(old, new, 1))
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_name_and_device_are_named() -> None:
    assert error('[[console]]\ndevice = "/dev/ttyS0"\n') == (
        f"{PATH}: console '#1': key 'name': missing: every console needs a name"
    )
    assert error('[[console]]\nname = "a"\n').startswith(f"{PATH}: console 'a': key 'device': ")


def test_no_consoles_and_bad_toml() -> None:
    assert error('history = "1M"\n').startswith(f"{PATH}: key 'console': no consoles")
    assert error("[[console]\n").startswith(f"{PATH}: not valid TOML: ")
    assert "[[console]] table" in error('name = "x"\n[[console]]\nname="a"\ndevice="/dev/x"\n')


def test_two_consoles_with_one_name() -> None:
    text = THREE.replace('name = "switch"', 'name = "router"')
    assert error(text) == f"{PATH}: two consoles are named 'router'"


def test_two_consoles_on_one_vnc_display_name_both() -> None:
    text = THREE.replace('vnc = "127.0.0.1:3,', 'vnc = ":1,')
    message = error(text)
    assert message.startswith(f"{PATH}: console 'vm-1' and console 'router' both listen on ")
    assert "VNC display 1" in message


def test_address_clashes_across_kinds_and_hosts() -> None:
    a = build_config(name="a", device="/dev/x", vnc="127.0.0.1:1", sockets=["tcp:4001"])
    # A websocket port on a VNC port of another console, a socket on another's socket.
    b = build_config(name="b", device="/dev/y", vnc="127.0.0.1:2,websocket=5901")
    c = build_config(name="c", device="/dev/z", vnc="none", sockets=["tcp:4001:interface=::1"])
    with pytest.raises(ConfigError, match="'b' and console 'a' both listen on 127.0.0.1:5901"):
        build_site([a, b])
    with pytest.raises(ConfigError, match="'c' and console 'a' both listen on"):
        build_site([a, c])
    # Different hosts, same port: fine; kernel-chosen ports (0) never clash.
    d = build_config(name="d", device="/dev/w", vnc="127.0.0.2:1", sockets=["tcp:0"])
    e = build_config(name="e", device="/dev/v", vnc="none", sockets=["tcp:0"])
    assert len(build_site([a, d, e]).consoles) == 3


def test_unix_paths_clash() -> None:
    a = build_config(name="a", device="/dev/x", vnc="unix:/run/v.sock")
    b = build_config(name="b", device="/dev/y", vnc="none", sockets=["unix:/run/v.sock"])
    with pytest.raises(ConfigError, match="both listen on /run/v.sock"):
        build_site([a, b])


def test_site_wide_keys_and_command_line_overrides() -> None:
    assert "web" in site_keys()
    text = 'web = "tcp:8080:interface=127.0.0.1"\n' + THREE
    assert parse_site(text, PATH).web is not None
    overridden = parse_site(text, PATH, overrides={"web": "tcp:8081:interface=127.0.0.1"})
    assert overridden.web != parse_site(text, PATH).web


def test_preflight_errors_are_placed_too(tmp_path: Path) -> None:
    text = THREE + (
        f'\n[[console]]\nname = "x"\ndevice = "/dev/null9"\nvnc = "none"\n'
        f'password-file = "{tmp_path}/nope"\n'
    )
    site = parse_site(text, PATH)
    with pytest.raises(ConfigError) as info:
        preflight.check_site(site)
    assert str(info.value) == (
        f"{PATH}: console 'x': key 'password-file': {tmp_path}/nope does not exist"
    )


def test_read_config_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"--config {tmp_path}/none: no such file"):
        preflight.read_config_file(str(tmp_path / "none"))
    good = tmp_path / "c.toml"
    good.write_text(THREE)
    assert preflight.read_config_file(str(good)) == THREE


def test_a_command_line_site_has_one_console_named_console() -> None:
    site = build_site([build_config(device="/dev/ttyS0", vnc="none")])
    assert [c.name for c in site.consoles] == ["console"] and site.source is None


def test_the_readme_sample_parses() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.rst").read_text(encoding="utf-8")
    section = readme.split("\nMany consoles\n-------------\n", 1)[1]
    block = section.split("::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    site = parse_site("\n".join(lines), "README.rst")
    assert [c.name for c in site.consoles] == ["router", "switch-2", "vm-build"]
    assert site.web is not None and site.consoles[1].device.serial.dtr is False
    assert all(c.password_file == "/etc/vncmux/vnc.passwd" for c in site.consoles)


def test_tap_reads_the_file_and_refuses_console_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vncmux import tap

    config = tmp_path / "c.toml"
    config.write_text(THREE.replace("/dev/ttyUSB0", "tcp:127.0.0.1:7001"))
    options = tap.Options()
    options.parseOptions(["--config", str(config)])
    assert options.config is None and options.site is not None
    assert options.site.source == str(config) and len(options.site.consoles) == 3
    assert options.loadSite() == options.site  # what SIGHUP reads: the same, by value
    with pytest.raises(SystemExit) as info:
        tap.Options().parseOptions(["--config", str(config), "--baud", "9600"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f"vncmux: error: --baud describes a console: with --config {config}, put it in the "
        "file (a [[console]] table, or the top level for every console)\n"
    )
    with pytest.raises(SystemExit):
        tap.Options().parseOptions(["--config", str(tmp_path / "missing.toml")])
    assert capsys.readouterr().err == (
        f"vncmux: error: --config {tmp_path}/missing.toml: no such file or directory\n"
    )
