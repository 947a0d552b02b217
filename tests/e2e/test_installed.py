"""The installed package, as a user runs it: ``twistd -n vncmux`` from the virtualenv, in
a directory outside the checkout, with no PYTHONPATH — so the plugin, the package and the
fonts all come from what ``pip install .`` put in place."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_tcp_port
from tests.support.waiting import wait_until
from vncmux.console import compiled

REPO = Path(__file__).resolve().parents[2]
TWISTD = Path(sys.executable).with_name("twistd")


def outside_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = env.get("HOME", "/root")
    return env


def installed_elsewhere(tmp_path: Path) -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import vncmux, sys; print(vncmux.__file__)"],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return probe.returncode == 0 and not probe.stdout.strip().startswith(str(REPO / "vncmux"))


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    if not TWISTD.exists() or not installed_elsewhere(tmp_path):
        pytest.skip("vncmux is not installed in this environment (pip install . to run this)")
    return tmp_path


def test_help_lists_the_options_from_the_installed_plugin(installed: Path) -> None:
    result = subprocess.run(
        [str(TWISTD), "-n", "--pidfile=", "vncmux", "--help"],
        cwd=installed,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--device", "--vnc", "--socket", "--chardev", "--password-file"):
        assert option in result.stdout


def test_installed_vncmux_serves_the_console(installed: Path) -> None:
    port = free_tcp_port()
    password = installed / "pw"
    password.write_text("secret\n")
    command = [str(TWISTD), "-n", "--pidfile=", "vncmux", "--device", "exec:cat"]
    command += ["--vnc", f"127.0.0.1:{port - 5900}", "--password-file", str(password)]
    proc = subprocess.Popen(
        command, cwd=installed, env=outside_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        def greeting() -> bytes:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    return s.recv(12)
            except OSError:
                return b""

        assert wait_until(greeting, timeout=30) == b"RFB 003.008\n"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert b"Traceback" not in out, out.decode(errors="replace")
    assert b"virtual console 80x24" in out, "the console (and its fonts) came up"
    # The install built the compiled token loop where the checkout's build found a compiler
    # (the same machine, the same compiler), and the process says which loop it runs.
    loop = b"compiled" if compiled.LOOP is not None else b"Python"
    assert b"terminal token loop: " + loop in out, out.decode(errors="replace")
