"""Fixtures shared by the end-to-end and robustness tests: ``vncmux`` starts real twistd
processes (stopped at teardown, their logs printed when a test fails) and ``pty`` gives
the far end of a serial line.  The helpers behind them live in ``tests.support``.

Under CI a skipped test fails (``tests.support.ci_skips`` says why and how).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.pty_device import Pty
from tests.support.vncmux_process import VncmuxProcess, start_vncmux

pytest_plugins = ["tests.support.ci_skips"]


@pytest.fixture
def vncmux(tmp_path: Path) -> Iterator[Callable[..., VncmuxProcess]]:
    """``vncmux(args, env=None) -> VncmuxProcess``; every process is stopped afterwards."""
    started: list[VncmuxProcess] = []

    def start(args: Sequence[str], env: dict[str, str] | None = None) -> VncmuxProcess:
        proc = start_vncmux(args, tmp_path / f"vncmux{len(started)}", env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(proc.describe())  # shown by pytest only when the test failed


@pytest.fixture
def pty() -> Iterator[Pty]:
    device = Pty()
    yield device
    device.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for UNIX socket paths (sun_path is limited to ~107 bytes, and
    pytest's tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="vmx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
