"""The config file for many consoles (``--config FILE``, TOML) → a ``Site``; and what a reload
changes (``diff_sites``).

Pure: the caller reads the file (``vncmux.preflight.read_config_file``) and hands over its
text.  The keys are not listed here: they are the keyword parameters of
``vncmux.config.build_config`` (one console's options, spelled as on the command line:
``wait-device``, ``password-file``; ``_`` works too; the repeatable ones are lists:
``sockets``, ``chardevs``...) and of ``vncmux.config.build_site``
(settings the consoles share).  At the top level, a console key is a default for every
console; each ``[[console]]`` table is one console, with a ``name``.  So an option added to
the command line is a key of the file as soon as the builder takes it.

Devices in a file are waited for (``wait-device = true`` unless a console says otherwise):
one console whose adapter is unplugged must not keep the others from starting.

Every mistake is one ``ConfigError`` naming the file, the console and the key.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[no-redef]

from vncmux.config import build_config, build_site
from vncmux.errors import ConfigError
from vncmux.specs import Config, Site

#: build_config parameters that are not keys of the file (``shell`` is ``$SHELL``).
NOT_KEYS = frozenset({"shell"})


def _keywords(function: Callable[..., Any], skip: frozenset[str]) -> dict[str, Any]:
    """Parameter name → default, for the keyword parameters of ``function``."""
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in skip
    }


def console_keys() -> dict[str, Any]:
    """The keys of a ``[[console]]`` table (and console defaults at the top level)."""
    return _keywords(build_config, NOT_KEYS)


def site_keys() -> dict[str, Any]:
    """The site-wide keys of the top level."""
    return _keywords(build_site, frozenset({"source"}))


def spelled(key: str) -> str:
    """A key as the README and the command line spell it."""
    return key.replace("_", "-")


@dataclass(frozen=True)
class Where:
    """Where a value came from, for error messages."""

    path: str
    console: str | None = None

    def error(self, key: str | None, message: str) -> ConfigError:
        place = self.path
        if self.console is not None:
            place += f": console {self.console!r}"
        if key is not None:
            place += f": key {spelled(key)!r}"
        return ConfigError(f"{place}: {message}")


def _value(where: Where, key: str, default: Any, value: Any) -> Any:
    """A TOML value checked against what the builder takes for ``key``: lists of strings
    for repeatable options, booleans for flags, and for the rest a string or number (numbers
    and booleans are handed over as the strings one would type)."""
    if isinstance(default, (tuple, list)):  # a repeatable option: a list of strings
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise where.error(key, "expected a list of strings")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise where.error(key, f"expected true or false, not {value!r}")
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise where.error(key, f"expected a string or a number, not {type(value).__name__}")
    return value


def _table(where: Where, table: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    """``table``'s keys as builder parameters, values checked; unknown keys refused."""
    out: dict[str, Any] = {}
    for raw, value in table.items():
        key = raw.replace("-", "_")
        if key not in known:
            raise where.error(raw, "unknown key (see the README's options section)")
        out[key] = _value(where, key, known[key], value)
    return out


_OPTION = re.compile(r"--([a-z0-9-]+)")


def blame(message: str, given: Sequence[str]) -> str | None:
    """The key a builder's error message is about (it names the command-line option), if
    it is one of ``given``."""
    if message.startswith("chardev "):
        return "chardevs" if "chardevs" in given else None
    if message.startswith(("name ", "device ")):
        key = message.split(" ", 1)[0]
        return key if key in given else None
    match = _OPTION.search(message)
    if match is None:
        return None
    key = match.group(1).replace("-", "_")
    for candidate in (key, key + "s", key.replace("socket", "sockets")):
        if candidate in given:
            return candidate
    return None


def console_error(path: str, name: str, message: str, given: Sequence[str]) -> ConfigError:
    """A builder's or a preflight check's error about console ``name``, placed: the file,
    the console and (when the message names one) the key."""
    key = blame(message, given)
    if key is not None:
        message = unprefixed(message, key)
    return Where(path, name).error(key, message)


def unprefixed(message: str, key: str) -> str:
    """``message`` without the option it starts with, when the key already says it."""
    for prefix in (f"--{spelled(key)}: ", f"--{spelled(key)} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def parse_site(
    text: str,
    path: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    shell: str | None = None,
) -> Site:
    """The ``Site`` a config file's ``text`` describes (``path`` names it in errors).
    ``overrides``: site-wide values from the command line (build_site's parameters), which
    win over the file's."""
    where = Where(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise where.error(None, f"not valid TOML: {e}") from None
    consoleKeys, siteKeys = console_keys(), site_keys()
    tables = document.pop("console", None)
    if tables is None or not isinstance(tables, list) or not tables:
        raise where.error(
            "console", "no consoles: add one [[console]] table per console, each with a name"
        )
    defaults: dict[str, Any] = {}
    siteValues: dict[str, Any] = {}
    for raw, value in document.items():
        key = raw.replace("-", "_")
        if key in siteKeys:
            siteValues[key] = _value(where, key, siteKeys[key], value)
        elif key in consoleKeys and key != "name":
            defaults[key] = _value(where, key, consoleKeys[key], value)
        else:
            hint = (
                " (a console's own key: put it in its [[console]] table)" if key == "name" else ""
            )
            raise where.error(raw, "unknown key" + hint)
    consoles = [
        _console(path, index, table, defaults, consoleKeys, shell)
        for index, table in enumerate(tables)
    ]
    siteValues.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return build_site(consoles, source=path, **siteValues)
    except ConfigError as e:
        message = str(e)
        blamed = blame(message, list(siteValues))
        if blamed is not None:
            message = unprefixed(message, blamed)
        raise where.error(blamed, message) from None


def _console(
    path: str,
    index: int,
    table: Any,
    defaults: Mapping[str, Any],
    known: Mapping[str, Any],
    shell: str | None,
) -> Config:
    """The ``Config`` of the ``index``-th ``[[console]]`` table."""
    if not isinstance(table, dict):
        raise Where(path).error("console", "expected [[console]] tables")
    name = table.get("name")
    label = name if isinstance(name, str) else f"#{index + 1}"
    where = Where(path, label)
    if name is None:
        raise where.error("name", "missing: every console needs a name")
    given = _table(where, table, known)
    if "device" not in given and "device" not in defaults:
        raise where.error("device", "missing: every console in a config file names its device")
    options = {"wait_device": True, **defaults, **given}
    try:
        return build_config(shell=shell, **options)
    except ConfigError as e:
        raise console_error(path, label, str(e), list(options)) from None


# --------------------------------------------------------------------------------------
# Reload


@dataclass(frozen=True)
class SiteDiff:
    """What a reload does: consoles (by name) to start, stop, restart and leave alone, and
    site-wide settings that changed (they take a restart of the process)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    site_settings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_sites(old: Site, new: Site) -> SiteDiff:
    """Compare two sites console by console, by value: a console whose ``Config`` is equal
    is unchanged (its device stays open, its clients connected)."""
    before = {c.name: c for c in old.consoles}
    after = {c.name: c for c in new.consoles}
    settings = tuple(
        f.name
        for f in fields(Site)
        if f.name not in ("consoles", "source") and getattr(old, f.name) != getattr(new, f.name)
    )
    return SiteDiff(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        changed=tuple(n for n in after if n in before and before[n] != after[n]),
        unchanged=tuple(n for n in after if n in before and before[n] == after[n]),
        site_settings=settings,
    )
