"""The code stays typed and lint-clean (mypy with the zope plugin, ruff), CI's script is
valid bash, nothing in the repository points at files outside it, and no test module
imports another (shared helpers live in tests/support/).

mypy and ruff are in the ``test`` extra: when one is missing these tests fail, saying so,
rather than skip, since a skipped lint check would let untyped code through unnoticed."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"{module} is not installed, though the test extra needs it: pip install '.[test]'"
        )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mypy_is_clean() -> None:
    result = run("mypy", "vncmux")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(REPO / ".ci" / "run")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# Directories that are not part of the repository's content: git's own, and what tools and
# the test command create in a checkout (all in .gitignore).
NOT_CONTENT = {
    ".git",
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "node_modules",
    "_trial_temp",
}

# References to material that exists only on the machine the project was developed on.
# Written so that this file does not match them itself.
OUTSIDE = {
    r"\.\./shared": "a sibling directory of the checkout",
    r"shared/(?:notes|tools)": "notes or tools kept outside the repository",
    r"/wor[k]/": "an absolute path of the development machine",
    r"\bdesign\.md\b": "a design document that is not in the repository",
    r"\bnotes/[\w.-]+\.md\b": "notes that are not in the repository",
}


# Files built in a checkout: the compiled token loop, which the test command's editable
# install builds in place (in .gitignore; its debug data names the build's paths).
BUILT = (".so", ".pyd")


def repository_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in NOT_CONTENT and not d.endswith(".egg-info")]
        for name in files:
            if not name.endswith(BUILT):
                yield Path(directory, name)


def test_nothing_points_outside_the_repository() -> None:
    """Every file must stand alone: a comment citing a file elsewhere sends the reader to
    something they do not have."""
    patterns = [(re.compile(p.encode()), why) for p, why in OUTSIDE.items()]
    found = []
    for path in repository_files(REPO):
        data = path.read_bytes()
        for number, line in enumerate(data.splitlines(), 1):
            for pattern, why in patterns:
                if pattern.search(line):
                    text = line.decode(errors="replace").strip()[:120]
                    found.append(f"{path.relative_to(REPO)}:{number}: {why}: {text}")
    assert not found, "\n".join(found)


# Known pointers, with an "@" that keeps this file itself clean; removed before matching.
@pytest.mark.parametrize(
    "line",
    [
        "see ..@/shared/x.md",
        "in /wor@k/shared@/notes@/rfb.md",
        "shared@/tools/run.sh",
        "/wor@k/venv/bin/python bench/x.py",
        "the budgets in design@.md section 4",
        "pyte's bugs (see notes@/pyte.md)",
    ],
)
def test_outside_patterns_catch_known_pointers(line: str) -> None:
    line = line.replace("@", "")
    assert any(re.search(p, line) for p in OUTSIDE), line


def test_outside_patterns_spare_ordinary_text() -> None:
    for line in ("vncmux/rfb/encodings/shared.py", "/novnc/../../etc/passwd", "README.rst"):
        assert not any(re.search(p, line) for p in OUTSIDE), line


# -- the test tree: test modules stand alone -------------------------------------------------

TESTS = REPO / "tests"

# Imports of one test module by another that are still to be undone, as (importer, imported
# module).  Each is checked to be still there, so a fix must also remove it from this list.
PENDING_TEST_IMPORTS: set[tuple[str, str]] = set()


def is_test_module(name: str) -> bool:
    """A dotted module name whose last part names a test module (``test_*``)."""
    return name.rpartition(".")[2].startswith("test_")


def imported_test_modules(source: str, package: str) -> set[str]:
    """The test modules ``source`` imports, as absolute dotted names; ``package`` is the
    package the source lives in, for its relative imports.  Every form counts:
    ``import tests.unit.test_x``, ``from tests.unit.test_x import y``,
    ``from tests.unit import test_x`` and their relative spellings."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if is_test_module(alias.name)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            if is_test_module(base):
                found.add(base)
            else:
                found |= {
                    f"{base}.{alias.name}" for alias in node.names if is_test_module(alias.name)
                }
    return found


def test_no_test_module_imports_another() -> None:
    """A helper two test modules share lives in tests/support/: a test module imported by
    another is a dependency nobody sees when running or changing it alone."""
    found = set()
    for path in sorted(TESTS.rglob("*.py")):
        if "artifacts" in path.parts:
            continue
        package = ".".join(path.relative_to(REPO).parent.parts)
        for module in imported_test_modules(path.read_text(), package):
            found.add((path.relative_to(REPO).as_posix(), module))
    new = sorted(found - PENDING_TEST_IMPORTS)
    assert not new, "move the shared helpers to tests/support/:\n" + "\n".join(
        f"{path} imports {module}" for path, module in new
    )
    done = sorted(PENDING_TEST_IMPORTS - found)
    assert not done, "no longer imported, remove from PENDING_TEST_IMPORTS: " + repr(done)


@pytest.mark.parametrize(
    "source",
    [
        "from tests.unit.test_render import FakeTerminal, crop",
        "from tests.e2e import test_web_e2e",
        "import tests.unit.test_display as fakes",
        "def f():\n    from tests.robustness.test_slots import x",
        "from .test_render import crop",
        "from . import test_display",
        "from ..e2e.test_web_e2e import site",
    ],
)
def test_test_module_imports_are_found_in_every_form(source: str) -> None:
    assert imported_test_modules(source, "tests.unit")


def test_imports_of_support_modules_are_not_test_imports() -> None:
    source = (
        "import tests.support.net\n"
        "from tests.support import waiting\n"
        "from tests.support.browser import CDP, browser\n"
        "from vncmux.rfb import server\n"
        "from . import conftest\n"
    )
    assert imported_test_modules(source, "tests.unit") == set()
