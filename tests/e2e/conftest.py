"""Fixtures for end-to-end tests: ``vncmux`` starts real twistd processes, stopped at
teardown; their logs are printed when a test fails (pytest shows captured output)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import VncmuxProcess, start_vncmux


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
def short_tmp() -> Iterator[Path]:
    """A short directory for UNIX socket paths (sun_path is limited to ~107 bytes, and
    pytest's tmp_path can be longer)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="vmx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
