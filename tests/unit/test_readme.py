"""README.rst keeps its promises: every option exists and every option is documented."""

from __future__ import annotations

import re
from pathlib import Path

from vncmux.tap import Options

README = (Path(__file__).resolve().parents[2] / "README.rst").read_text(encoding="utf-8")


def option_names() -> set[str]:
    opts = Options()
    names = {p[0] for p in opts.optParameters} | {f[0] for f in opts.optFlags}
    names |= {
        name[len("opt_") :].replace("_", "-") for name in dir(opts) if name.startswith("opt_")
    }
    return names - {"help", "version"}


def test_every_option_is_documented() -> None:
    missing = sorted(n for n in option_names() if f"``--{n}" not in README)
    assert not missing, f"README.rst does not document {missing}"


def test_every_documented_option_exists() -> None:
    documented = set(re.findall(r"``--([a-z][a-z0-9-]*)", README))
    unknown = sorted(documented - option_names())
    assert not unknown, f"README.rst documents options that do not exist: {unknown}"


def test_the_ci_reads_a_test_command_from_the_readme() -> None:
    block = README.split(".. test-command", 1)[1]
    command = next(line.strip() for line in block.splitlines() if line.startswith("    "))
    assert "pytest" in command and "pip install" in command
