"""Fixtures for the robustness tests: real ``twistd -n vncmux`` processes on a pty device,
reusing tests/e2e/support.py (put on sys.path as tests/e2e/conftest.py does)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import Pty, VncmuxProcess, start_vncmux  # noqa: E402


@pytest.fixture
def vncmux(tmp_path: Path) -> Iterator[Callable[..., VncmuxProcess]]:
    """``vncmux(args, env=None) -> VncmuxProcess``; every process is stopped afterwards and
    its log printed (pytest shows it when the test failed)."""
    started: list[VncmuxProcess] = []

    def start(args: Sequence[str], env: dict[str, str] | None = None) -> VncmuxProcess:
        proc = start_vncmux(args, tmp_path / f"vncmux{len(started)}", env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(proc.describe())


@pytest.fixture
def pty() -> Iterator[Pty]:
    device = Pty()
    yield device
    device.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for UNIX socket paths (sun_path is ~107 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="vmx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
