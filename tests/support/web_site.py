"""A site of consoles behind vncmux's web entry, for end-to-end tests: the ``site``
fixture (a real vncmux serving ``NAMES``, one pty each, from a config file written by
``write_site``) and ``get``, a plain GET that returns error answers too.

``site`` is a pytest fixture (over tests/conftest.py's ``vncmux``): a test module imports it
by name to use it."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.net import free_tcp_port
from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess

#: The consoles of ``site``, in the order of its config file.
NAMES = ("alpha", "beta", "gamma")


def get(port: int, path: str) -> tuple[int, str, bytes]:
    """GET ``path``: (status, content type, body), 4xx/5xx included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.headers["content-type"], answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read()


def write_site(
    path: Path,
    web_port: int,
    consoles: list[tuple[str, str]],
    displays: dict[str, int] | None = None,
) -> dict[str, int]:
    """A config file: ``web`` on ``web_port``, one console per (name, device), each with a
    VNC display: from ``displays`` if named there, else on a free port.  Returns the
    displays used, by name."""
    used = dict(displays or {})
    lines = [f'web = "tcp:{web_port}:interface=127.0.0.1"', ""]
    for name, device in consoles:
        display = used.setdefault(name, free_tcp_port() - 5900)
        lines += ["[[console]]", f'name = "{name}"', f'device = "{device}"']
        lines += [f'vnc = "127.0.0.1:{display}"', ""]
    path.write_text("\n".join(lines))
    return used


@pytest.fixture
def site(
    vncmux: Callable[..., VncmuxProcess], tmp_path: Path
) -> Iterator[tuple[int, dict[str, Pty], VncmuxProcess]]:
    """Three consoles on ptys behind ``--web``: (web port, ptys by name, the process)."""
    ptys = {name: Pty() for name in NAMES}
    try:
        port = free_tcp_port()
        config = tmp_path / "consoles.toml"
        write_site(config, port, [(name, pty.path) for name, pty in ptys.items()])
        proc = vncmux(["--config", str(config)])
        proc.wait_for_log(r"Web entry on tcp:", timeout=45)
        proc.wait_for_log(r"Device /dev/pts/\d+ opened", timeout=45, count=3)
        yield port, ptys, proc
    finally:
        for pty in ptys.values():
            pty.close()
