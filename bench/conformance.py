"""Terminal conformance, measured with esctest: vncmux against xterm in the same run.

esctest (esctest2) runs *inside* a terminal, sends control sequences and checks the
terminal's state through its replies (cursor reports, DECRQCRA checksums, DECRQSS, DECRQM,
window reports).  It is a separate test tool (GPL): it is not part of this repository and is
never copied into it.  Point this script at an unmodified checkout of it with ``--esctest
DIR`` or the ``ESCTEST_DIR`` environment variable (the directory holding ``esctest.py``, or
its parent).

The suite runs twice with the same options:

  - inside a real vncmux, as its device (``twistd -n --pidfile= vncmux --cols 80 --rows 25
    --device exec:sh run-esctest.sh --vnc unix:...``); the script keeps the device open
    after the suite ends (an ``exec:`` command that exits would be started again);
  - inside xterm under Xvfb (``xvfb-run xterm ...``), the reference, with the resources the
    suite needs (``decTerminalID 420``, window operations allowed, no window manager wait).

Each log is parsed into passed / failed / expected failures and skips, by family (the
suite's test class), and printed as one table with the totals.  Budget: vncmux passes at
least 450 of the 567 tests run (``MISS`` otherwise).  The full run takes several minutes
(each unanswered query waits ``--timeout`` seconds); both terminals run at the same time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BenchError, Vncmux, machine_line, rmtree, table, tempdir  # noqa: E402

BUDGET = 450
# The one test left out: it asks the window manager for full screen and hangs xterm
# without one (the same exclusion for both terminals).
INCLUDE = "^(?!XtermWinopsTests.test_XtermWinops_Fullscreen$)"
XTERM_RESOURCES = (
    "XTerm*decTerminalID: 420",
    "XTerm*allowWindowOps: true",
    "XTerm*disallowedWindowOps:",
    "*waitForWm: false",
)

_RUN = re.compile(r"Run test: (\w+)\.(\w+)")
_FAILED = re.compile(r"\*\*\* TEST (\w+)\.(\w+) FAILED")


@dataclass
class Results:
    """One terminal's results: test name -> outcome (passed, failed, expected, skipped)."""

    outcomes: dict[str, str] = field(default_factory=dict)
    totals_line: str = ""
    failures: dict[str, str] = field(default_factory=dict)  # test -> first error line

    def count(self, outcome: str, family: str | None = None) -> int:
        return sum(
            1
            for name, o in self.outcomes.items()
            if o == outcome and (family is None or name.split(".")[0] == family)
        )


def parse_log(text: str) -> Results:
    """An esctest log -> Results.  A test that started but has no outcome (the run was cut
    short) counts as failed."""
    res = Results()
    current: str | None = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _RUN.search(line)
        if m:
            current = f"{m.group(1)}.{m.group(2)}"
            res.outcomes[current] = "failed"
            continue
        m = _FAILED.search(line)
        if m:
            name = f"{m.group(1)}.{m.group(2)}"
            res.outcomes[name] = "failed"
            for later in lines[i + 1 : i + 60]:
                if _RUN.search(later):
                    break
                stripped = later.strip()
                if stripped and not stripped.startswith(("Traceback", "File ", "^")):
                    res.failures[name] = stripped
            continue
        if current is None:
            continue
        if line.rstrip().endswith("Passed."):
            res.outcomes[current] = "passed"
        elif "Fails as expected" in line:
            res.outcomes[current] = "expected"
        elif "Skipped because" in line:
            res.outcomes[current] = "skipped"
        if "tests passed" in line or "test passed" in line:
            res.totals_line = line.strip()
    return res


def suite_command(esctest: Path, logfile: Path, timeout: float, include: str) -> str:
    args = [
        "python3",
        "esctest.py",
        "--expected-terminal=xterm",
        "--max-vt-level=4",
        "--options",
        "xtermWinopsEnabled",
        "--no-print-logs",
        f"--logfile={logfile}",
        f"--timeout={timeout}",
        f"--include={include}",
    ]
    return f"cd {shlex.quote(str(esctest))} && " + " ".join(shlex.quote(a) for a in args)


def wait_done(
    done: Callable[[], bool], log: Path, limit: float, stall: float, alive: object = None
) -> bool:
    """Poll until ``done()``; returns False when the run hung: its log did not grow for
    ``stall`` seconds (a terminal that stops answering, or stops altogether)."""
    deadline = time.monotonic() + limit
    last_size, last_change = -1, time.monotonic()
    while not done():
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"the suite did not finish within {limit:.0f} s")
        size = log.stat().st_size if log.exists() else 0
        if size != last_size:
            last_size, last_change = size, now
        elif now - last_change > stall:
            return False
        if callable(alive):
            alive()
        time.sleep(0.5)  # polling files another process writes; not synchronisation
    return True


def run_vncmux(
    esctest: Path, work: Path, timeout: float, include: str, limit: float, stall: float
) -> tuple[Path, bool]:
    """The suite as vncmux's device; returns the log's path once the suite has ended, and
    False if it hung."""
    log = work / "vncmux-esctest.log"
    rc = work / "vncmux-esctest.rc"
    script = work / "run-esctest.sh"
    script.write_text(
        "export LANG=C.UTF-8\n"
        f"( {suite_command(esctest, log, timeout, include)} ); echo $? > {shlex.quote(str(rc))}\n"
        "exec sleep 100000\n"
    )
    vnc = work / "vnc.sock"
    args = ["--cols", "80", "--rows", "25", "--device", f"exec:sh {script}", "--vnc", f"unix:{vnc}"]
    with Vncmux(args, str(work), ready_socket=str(vnc)) as mux:
        finished = wait_done(rc.exists, log, limit, stall, mux.check_alive)
    return log, finished


def start_xterm(
    esctest: Path, work: Path, timeout: float, include: str
) -> tuple[subprocess.Popen[bytes], Path]:
    for tool in ("xvfb-run", "xterm"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is missing (apt-get install -y xvfb xterm)")
    log = work / "xterm-esctest.log"
    rc = work / "xterm-esctest.rc"
    inner = f"export LANG=C.UTF-8; ( {suite_command(esctest, log, timeout, include)} ); echo $? > {shlex.quote(str(rc))}"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "xterm"]
    for res in XTERM_RESOURCES:
        cmd += ["-xrm", res]
    cmd += ["-geometry", "80x25", "-e", "sh", "-c", inner]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, log


def report(results: dict[str, Results]) -> str:
    families = sorted({n.split(".")[0] for r in results.values() for n in r.outcomes})
    names = list(results)
    header = ["family"] + [f"{n} pass/fail" for n in names]
    rows: list[list[object]] = []
    for fam in families:
        row: list[object] = [fam]
        for n in names:
            r = results[n]
            row.append(f"{r.count('passed', fam)}/{r.count('failed', fam)}")
        rows.append(row)
    total: list[object] = ["TOTAL"]
    for n in names:
        r = results[n]
        total.append(f"{r.count('passed')}/{r.count('failed')}")
    rows.append(total)
    out = [table(rows, header), ""]
    for n in names:
        r = results[n]
        out.append(
            f"{n}: {r.count('passed')} passed, {r.count('expected')} expected failures, "
            f"{r.count('skipped')} skipped, {r.count('failed')} failed, "
            f"of {len(r.outcomes)} run"
        )
    return "\n".join(out)


def find_esctest(arg: str | None) -> Path:
    raw = arg or os.environ.get("ESCTEST_DIR")
    if not raw:
        raise BenchError("give esctest's directory with --esctest DIR or ESCTEST_DIR")
    base = Path(raw).resolve()
    for cand in (base, base / "esctest"):
        if (cand / "esctest.py").is_file():
            return cand
    raise BenchError(f"no esctest.py in {base} or {base / 'esctest'}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--esctest", help="esctest's directory (default: $ESCTEST_DIR)")
    ap.add_argument("--terminals", choices=("both", "vncmux", "xterm"), default="both")
    ap.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for each reply")
    ap.add_argument("--include", default=INCLUDE, help="regular expression of tests to run")
    ap.add_argument("--limit", type=float, default=1800.0, help="seconds allowed per terminal")
    ap.add_argument(
        "--stall", type=float, default=120.0, help="seconds without progress that mean a hang"
    )
    ap.add_argument("--failures", action="store_true", help="list vncmux's failed tests")
    ap.add_argument("--log", help="parse this esctest log instead of running anything")
    args = ap.parse_args()
    print(machine_line())
    if args.log:
        res = parse_log(Path(args.log).read_text(errors="replace"))
        print(report({"log": res}))
        return 0
    work = Path(tempdir())
    keep = bool(os.environ.get("VNCMUX_BENCH_KEEP"))
    results: dict[str, Results] = {}
    hung: list[str] = []
    xterm: subprocess.Popen[bytes] | None = None
    try:
        esctest = find_esctest(args.esctest)
        xlog: Path | None = None
        if args.terminals in ("both", "xterm"):
            xterm, xlog = start_xterm(esctest, work, args.timeout, args.include)
        if args.terminals in ("both", "vncmux"):
            vlog, finished = run_vncmux(
                esctest, work, args.timeout, args.include, args.limit, args.stall
            )
            if not finished:
                hung.append("vncmux")
            results["vncmux"] = parse_log(vlog.read_text(errors="replace"))
        if xterm is not None and xlog is not None:
            proc = xterm
            if not wait_done(lambda: proc.poll() is not None, xlog, args.limit, args.stall):
                hung.append("xterm")
                os.killpg(xterm.pid, signal.SIGTERM)
                xterm.wait()
            if not xlog.exists():
                raise BenchError("xterm's run left no log (is Xvfb working?)")
            results["xterm"] = parse_log(xlog.read_text(errors="replace"))
    except BenchError as e:
        print(f"FAILED: {e}")
        return 2
    finally:
        if xterm is not None and xterm.poll() is None:
            os.killpg(xterm.pid, signal.SIGTERM)
            xterm.wait()
        if keep:
            print(f"kept {work}")
        else:
            rmtree(str(work))
    print(report(results))
    for name in hung:
        print(
            f"HUNG: {name}'s run made no progress for {args.stall:.0f} s and was stopped; "
            "its unfinished test counts as failed and the tests after it are missing"
        )
    v = results.get("vncmux")
    if v is not None:
        passed = v.count("passed")
        mark = "" if passed >= BUDGET else "  MISS"
        print(f"budget: vncmux passes >= {BUDGET}: {passed}{mark}")
        if args.failures:
            for name, outcome in sorted(v.outcomes.items()):
                if outcome == "failed":
                    print(f"  FAILED {name}: {v.failures.get(name, '')[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
