"""The CI rule for skips, a pytest plugin loaded by tests/conftest.py: under CI (``CI`` set
to ``true``/``1``/``yes``, as CI services set it and .ci/run does) a skipped test fails.

Why: .ci/run installs every tool the tests look for, so a skip there means a tool went
missing or a new skip condition crept in, and the test it hides must not pass silently.
Outside CI a skip stays a skip (``pytest -rs`` lists them with their reasons).

What counts: a test skipped by a marker, by ``pytest.skip`` in its body or in a fixture
(reported as a failure or error naming the reason), and a module skipped at import by
``pytest.importorskip`` or a module-level ``pytest.skip`` (listed in the summary and failing
the session; as a collection error it would stop the whole run).  Expected failures
(``xfail``) are declared outcomes and stay as they are.  Hypothesis never skips a test: an
unsatisfiable ``assume`` is already an error.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def skips_fail() -> bool:
    """True under CI: skipped tests (and skipped modules) are reported as failures."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, reason = longrepr
        return f"{reason} ({path}:{line})"
    return str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, which counts as a failure: {_skip_reason(report)}\n"
        "(.ci/run installs everything the tests need; install what is missing there)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    # An expected failure (xfail) also reports "skipped", with ``wasxfail``.
    if report.skipped and not hasattr(report, "wasxfail") and skips_fail():
        _fail_skip(report)


_skipped_modules: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A whole module skipped at import: stays a skip here, fails the session below.
    if report.skipped and skips_fail():
        _skipped_modules.append(_skip_reason(report))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for reason in _skipped_modules:
        terminalreporter.write_line(f"FAILED (module skipped under CI=true): {reason}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_modules and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
