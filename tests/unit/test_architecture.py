"""The shape docs/architecture.rst promises, checked on the source itself (its syntax tree):

- the console (``vncmux/console/``) knows nothing of the protocol: it never imports
  ``vncmux.rfb``;
- option parsing is pure: ``config.py`` and the modules it is built from import only an
  allowlist of pure modules (no ``os``, ``socket``, Twisted, nothing of vncmux that does
  I/O) and call no I/O builtin (``open``, ``print``, ...); looking at the machine is
  ``vncmux.preflight``'s job;
- no module grows past 650 lines (the guide says ~600), C files included.

Every import counts, wherever it sits (inside a function, under ``TYPE_CHECKING``): a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "vncmux"
MAX_LINES = 650

# The parsing layer: command-line strings in, dataclasses or ConfigError out.
PURE_MODULES = (
    "errors.py",
    "specs.py",
    "qemu_opts.py",
    "config.py",
    "addresses.py",
    "site_config.py",
    "token_opts.py",
    "font_opts.py",
)
PURE_ALLOWED = (
    "__future__",
    "codecs",
    "collections.abc",
    "dataclasses",
    "enum",
    "ipaddress",
    "inspect",
    "math",
    "re",
    "shlex",
    "tomli",
    "tomllib",
    "typing",
    "vncmux.addresses",
    "vncmux.config",
    "vncmux.errors",
    "vncmux.qemu_opts",
    "vncmux.specs",
    "vncmux.token_opts",
    "vncmux.font_opts",
)
IO_BUILTINS = frozenset({"open", "print", "input", "exec", "eval", "compile", "__import__"})


def module_name(path: Path) -> str:
    """'vncmux/console/vc.py' → 'vncmux.console.vc' (a package's __init__ is the package)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) for everything ``source`` imports; ``from a import b`` counts as
    'a.b' (b may be a module), relative imports are resolved against ``module``."""
    package = module.split(".")[:-1]
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            names.append((node.lineno, base))
    return names


def within(name: str, roots: tuple[str, ...]) -> bool:
    """``name`` is one of ``roots`` or inside one of them."""
    return any(name == root or name.startswith(root + ".") for root in roots)


def io_calls(source: str) -> list[tuple[int, str]]:
    """(line, name) for each call of an I/O builtin."""
    return [
        (node.lineno, node.func.id)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in IO_BUILTINS
    ]


def sources(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


# -- the checks can fail ---------------------------------------------------------------------


def test_the_checks_see_what_they_look_for() -> None:
    """Each rule below flags a violation written in any of the usual forms."""
    console = "vncmux.console.vc"
    for source in (
        "import vncmux.rfb.server",
        "from vncmux.rfb import server",
        "from vncmux import rfb",
        "from ..rfb.tls import peer_subject",
        "def f():\n    from ..rfb import auth\n",
    ):
        assert any(within(n, ("vncmux.rfb",)) for _, n in imported(source, console)), source
    assert not any(
        within(n, ("vncmux.rfb",)) for _, n in imported("from .damage import Damage", console)
    )
    for source in (
        "import os",
        "import os.path",
        "from twisted.internet import reactor",
        "from twisted.internet.endpoints import serverFromString",
        "import socket",
        "from vncmux import preflight",
        "from . import preflight",
        "def f():\n    from vncmux.rfb.tls import context_factory\n",
    ):
        names = [n for _, n in imported(source, "vncmux.config")]
        assert any(not within(n, PURE_ALLOWED) for n in names if n != "vncmux"), source
    assert io_calls("def f(p):\n    return open(p).read()\n") == [(2, "open")]
    assert io_calls("print('x')") == [(1, "print")]
    assert io_calls("x.open('y')") == []  # a method named open is not the builtin


# -- the rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sources(PACKAGE / "console"), ids=lambda p: str(p.relative_to(REPO))
)
def test_console_does_not_import_the_protocol(path: Path) -> None:
    module = module_name(path)
    found = [
        f"line {line}: {name}"
        for line, name in imported(path.read_text(encoding="utf-8"), module)
        if within(name, ("vncmux.rfb",))
    ]
    assert not found, f"{module} imports vncmux.rfb: {found}"


@pytest.mark.parametrize("name", PURE_MODULES)
def test_parsing_imports_only_pure_modules(name: str) -> None:
    path = PACKAGE / name
    found = sorted(
        {
            f"line {line}: {imp}"
            for line, imp in imported(path.read_text(encoding="utf-8"), module_name(path))
            if imp != "vncmux" and not within(imp, PURE_ALLOWED)
        }
    )
    assert not found, f"vncmux/{name} imports modules that may do I/O: {found}"


@pytest.mark.parametrize("name", PURE_MODULES)
def test_parsing_calls_no_io_builtin(name: str) -> None:
    found = io_calls((PACKAGE / name).read_text(encoding="utf-8"))
    assert not found, f"vncmux/{name} calls I/O builtins: {found}"


def test_no_module_is_over_650_lines() -> None:
    """Python modules, and the compiled token loop's C files alike."""
    c_files = sorted(PACKAGE.rglob("*.c")) + sorted(PACKAGE.rglob("*.h"))
    assert c_files, "the compiled token loop's sources are where this test looks"
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sources(PACKAGE) + c_files
    }
    over = {path: lines for path, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
