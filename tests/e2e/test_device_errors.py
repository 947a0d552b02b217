"""A device that cannot be opened is one line and a non-zero exit, not a retry loop
(issue 13, item 11); ``--wait-device`` keeps waiting instead, saying why.

We run as root, whom permission bits do not stop: "permission denied" is covered by the
unit tests with an injected opener; here the uncurable errors are a character device that
is not a tty (/dev/null), a tty held by another program, and a command that does not exist.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess


def one_error_line(proc: VncmuxProcess) -> str:
    """The process exited non-zero with exactly one line on stderr, which is returned."""
    code = proc.wait(timeout=20)
    assert code != 0, proc.describe()
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.describe()
    assert lines[0].startswith("vncmux: error: "), proc.describe()
    assert "Traceback" not in proc.log, proc.describe()
    return lines[0]


def test_a_device_that_is_not_a_tty_is_one_line_and_exit(
    vncmux: Callable[..., VncmuxProcess],
) -> None:
    line = one_error_line(vncmux(["--vnc", "none", "--device", "/dev/null"]))
    assert line.startswith("vncmux: error: cannot open device /dev/null: not a tty"), line


def test_a_missing_command_is_one_line_and_exit(vncmux: Callable[..., VncmuxProcess]) -> None:
    proc = vncmux(["--vnc", "none", "--device", "exec:/nonexistent/vncmux-shell -l"])
    line = one_error_line(proc)
    assert line == (
        "vncmux: error: cannot run device exec:/nonexistent/vncmux-shell -l: "
        "command not found: /nonexistent/vncmux-shell"
    )


def test_a_tty_held_by_another_program_is_one_line_and_exit(
    vncmux: Callable[..., VncmuxProcess], pty: Pty
) -> None:
    holder = os.open(pty.path, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as minicom, screen, tio do
        line = one_error_line(vncmux(["--vnc", "none", "--device", pty.path]))
    finally:
        os.close(holder)
    assert f"cannot open device {pty.path}: in use by another program" in line, line
    assert "--wait-device" in line


def test_wait_device_keeps_waiting_and_says_why(vncmux: Callable[..., VncmuxProcess]) -> None:
    proc = vncmux(["--vnc", "none", "--wait-device", "--device", "/dev/null"])
    proc.wait_for_log(r"waiting for /dev/null: not a tty .*retrying in 0\.5s", timeout=20)
    proc.wait_for_log(r"waiting for /dev/null: not a tty .*retrying in 1\.0s", timeout=20)
    assert proc.returncode is None
