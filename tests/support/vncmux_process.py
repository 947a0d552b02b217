"""A real ``twistd -n vncmux`` for end-to-end tests, run from the checkout.

Nothing here sleeps as synchronisation: every wait is a poll of a condition with a deadline,
and a timeout raises with the process's log attached so a failure explains itself.

Typical use (the ``vncmux`` fixture in tests/conftest.py wraps ``start_vncmux`` and stops
the process at teardown)::

    proc = start_vncmux(["--vnc", "none", "--device", dev, "--socket", f"unix:{sock}"], workdir)
    proc.wait_for_log(r"Device .* opened")
    wait_until(lambda: os.path.exists(sock), 5, "socket never appeared")
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def twistd_command(args: Sequence[str]) -> list[str]:
    """The command line that runs ``twistd -n vncmux ARGS`` with this interpreter."""
    return [
        sys.executable,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        "vncmux",
        *args,
    ]


#: Every process started and not yet seen to exit: killed when the test run ends, so a
#: helper that failed half-way through setting up (or an interrupted run) leaves none behind.
_LIVE: set[VncmuxProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class VncmuxProcess:
    """A running ``twistd -n vncmux``; stdout (twistd's log) and stderr go to files so a
    chatty process can never block on a full pipe."""

    def __init__(
        self, args: Sequence[str], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "vncmux.log"
        self.stderr_path = workdir / "vncmux.stderr"
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(REPO) + (
            os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else ""
        )
        # twistd logs to stdout, a file here: unbuffered, so a test waiting for a log line
        # sees it when it is written, not when 8 KiB more have piled up behind it.
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        with open(self.log_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                twistd_command(self.args),
                cwd=str(REPO),
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        """Everything known, for failure messages."""
        return (
            f"vncmux {' '.join(self.args)} (returncode {self.returncode})\n"
            f"--- log ---\n{self.log}\n--- stderr ---\n{self.stderr}"
        )

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) occurs ``count`` times in the log; return the
        last match.  Fails at once, with the log, if the process exits meanwhile."""
        regex = re.compile(pattern)

        def check() -> re.Match[str] | None:
            matches = list(regex.finditer(self.log))
            if len(matches) >= count:
                return matches[count - 1]
            if self.returncode is not None:
                raise AssertionError(
                    f"vncmux exited while waiting for {pattern!r}\n{self.describe()}"
                )
            return None

        return wait_until(
            check, timeout, lambda: f"no {pattern!r} (x{count}) in the log\n{self.describe()}"
        )

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit by itself; its return code."""
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (twistd shuts down cleanly), SIGKILL after ``timeout``; the return code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        _LIVE.discard(self)
        return int(self.popen.returncode)


def start_vncmux(
    args: Sequence[str], workdir: Path | None = None, env: dict[str, str] | None = None
) -> VncmuxProcess:
    """Start ``twistd -n vncmux ARGS`` (cwd = the repository, PYTHONPATH set so the plugin in
    twisted/plugins is found).  The caller stops it (or use the ``vncmux`` fixture)."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="vncmux-e2e-"))
    return VncmuxProcess(args, workdir, env)
