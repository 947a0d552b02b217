"""Which regular expressions ``/wait`` runs, and how: RE2, with bounds.

A wait pattern comes from a client, and Python's ``re`` backtracks while holding the GIL:
``(a+)+$`` over a few KiB would stall every console for minutes.  RE2 (``google-re2``)
searches in time linear in the text and refuses what would need backtracking
(back-references, look-around, conditionals, atomic groups): ``compile_pattern`` compiles
with it, and turns what RE2 refuses into a ``PatternError`` saying so in plain words, RE2's
own message included.

Linear is not free: what each byte costs grows with the compiled program when RE2 leaves
its DFA (whose states live in the pattern's memory budget) for its NFA, at a few nanoseconds
per instruction and byte.  So a pattern may hold at most ``MAX_PATTERN_CHARS`` characters,
compile to at most ``MAX_PROGRAM_SIZE`` instructions (RE2's own measure of a pattern's cost,
forwards and backwards: the worst found, nested repeats such as ``((a|b|.)+|.){0,80}0``,
take about 5 microseconds a byte) and use at most ``MAX_PATTERN_MEMORY`` bytes.
``google-re2`` keeps the last 128 patterns compiled: patterns hold at most
``MAX_PATTERN_MEMORY`` times that plus the pending waits.

Many output waits search the same output: ``PatternSet`` tells which of several output
patterns match somewhere in a text in one pass (RE2's ``Set``), so only those run their own
search.  It is built from the compiled patterns themselves (their source, ``(?m)`` included,
and their options), so its answer and each pattern's own search agree.  Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import re2

#: Longest pattern accepted, in characters.
MAX_PATTERN_CHARS = 1000
#: RE2's memory budget for one pattern, in bytes: its programs and its DFA's cache of
#: states (a DFA that outgrows it starts over, or gives way to the slower NFA; it never
#: takes more).  Plenty for the DFA of common patterns over any text.
MAX_PATTERN_MEMORY = 2 << 20
#: Largest program accepted, in RE2 instructions (``programsize``; a counted repeat costs
#: its body that many times): common patterns are under 200, ``.{100}`` is 804.
MAX_PROGRAM_SIZE = 1000
#: RE2's memory budget for one ``PatternSet``: its program (about 16 bytes an instruction)
#: and its DFA's cache of states.  A set cannot fall back to the NFA, so its DFA needs room
#: for a few states of the whole program, which one pattern's budget would not leave.
MAX_SET_MEMORY = 8 << 20
#: How much of a refused pattern an error message quotes.
QUOTE_CHARS = 60

#: RE2's messages for Python syntax it does not have: ``\\1`` and ``\\Z`` (invalid
#: escape), ``(?=``, ``(?<!``, ``(?P=``, ``(?(``, ``(?>`` (invalid perl operator),
#: ``a*+`` (bad repetition operator).
_NOT_RE2 = ("invalid escape sequence", "invalid perl operator", "bad repetition operator")
#: RE2's message for a program over its memory budget.
_TOO_LARGE = "pattern too large"


class Match(Protocol):
    """What a search found (an RE2 match object: the parts ``/wait`` reads)."""

    def group(self, index: int = 0) -> Any: ...

    def groups(self) -> tuple[Any, ...]: ...

    def start(self, index: int = 0) -> int: ...

    def end(self, index: int = 0) -> int: ...


class Pattern(Protocol):
    """A compiled wait pattern: ``search`` from ``pos`` on, ``None`` when nothing matches."""

    def search(self, text: Any, pos: int = 0) -> Match | None: ...


class PatternError(ValueError):
    """A pattern that does not compile, or is refused; the message says why."""


def compile_pattern(pattern: str, as_bytes: bool = False) -> Pattern:
    """``pattern`` compiled by RE2 with ``^``/``$`` matching at every line (``(?m)``):
    for ``str`` text (the screen; the pattern and the text as UTF-8), or for bytes
    (``as_bytes``, the output: the pattern's UTF-8 matched byte by byte, as Latin-1, so
    ``.`` is any byte but a newline as in a Python bytes pattern).  A lone surrogate in the
    pattern stands for the byte ``surrogateescape`` made it of (invalid UTF-8 for the
    screen: refused).  ``PatternError`` says what is wrong."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(
            f"pattern refused: {len(pattern)} characters long, at most {MAX_PATTERN_CHARS}"
        )
    shown = pattern if len(pattern) <= QUOTE_CHARS else pattern[: QUOTE_CHARS - 3] + "..."
    options = _options(MAX_PATTERN_MEMORY, latin1=as_bytes)
    # As bytes for both: RE2 reads str patterns as strict UTF-8, which a lone surrogate is not.
    source = ("(?m)" + pattern).encode("utf-8", "surrogateescape")
    try:
        regex = re2.compile(source, options)
    except re2.error as e:
        raise PatternError(_explain(shown, _message(e))) from None
    if regex.reverseprogramsize < 0:  # the backward program did not fit: RE2 says -1
        raise PatternError(_explain(shown, f"{_TOO_LARGE} - reverse compile failed"))
    size = max(regex.programsize, regex.reverseprogramsize)
    if size > MAX_PROGRAM_SIZE:
        raise PatternError(
            f"pattern {shown!r} refused: it compiles to {size} RE2 instructions, at most"
            f" {MAX_PROGRAM_SIZE} (each counted repeat {{m,n}} copies what it repeats n times)"
        )
    result: Pattern = regex
    return result


def _message(error: Exception) -> str:
    """RE2's message (the binding gives it as bytes), without the ``(?m)`` we put first
    where it quotes the whole pattern (``missing ): (?m)(``)."""
    what = error.args[0] if error.args else ""
    text = what.decode("utf-8", "replace") if isinstance(what, bytes) else str(what)
    return text.replace(": (?m)", ": ", 1)


def _options(max_mem: int, latin1: bool) -> Any:
    """RE2's options for our patterns and sets (one place, so a set built from output
    patterns reads its text as they do): errors not logged by RE2 (a refusal is ours to
    log, with the peer), memory bounded, output (bytes) as Latin-1."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = max_mem
    if latin1:
        options.encoding = re2.Options.Encoding.LATIN1
    return options


def _explain(shown: str, message: str) -> str:
    """RE2's ``message`` for ``shown``, and what it means in plain words."""
    if message.startswith(_NOT_RE2):
        return (
            f"pattern {shown!r} refused: back-references and look-around are not supported:"
            f" patterns are RE2 syntax, see README (RE2: {message})"
        )
    if message.startswith(_TOO_LARGE):
        return (
            f"pattern {shown!r} refused: too large for RE2's {MAX_PATTERN_MEMORY >> 20} MiB"
            f" (RE2: {message})"
        )
    return f"bad regular expression {shown!r}: {message} (patterns are RE2 syntax, see README)"


def set_cost(pattern: Pattern) -> int | None:
    """What ``pattern`` adds to a ``PatternSet``'s program, in RE2 instructions; ``None``
    when it cannot join one (not an output pattern compiled by ``compile_pattern``)."""
    options = getattr(pattern, "options", None)
    size = getattr(pattern, "programsize", None)
    if (
        options is None
        or not isinstance(size, int)
        or not isinstance(getattr(pattern, "pattern", None), bytes)
    ):
        return None
    if options.encoding != re2.Options.Encoding.LATIN1:
        return None
    return size


class PatternSet:
    """Which of ``patterns`` (output patterns, each with a ``set_cost``) match somewhere in a
    text, in one pass of RE2's DFA over it whatever their number: what ``matching`` says
    is what each pattern's own ``search`` of the same text finds or not.

    The pass costs about what one search of a pattern as large as all of them together
    costs with RE2's DFA; a set of patterns whose DFA keeps outgrowing its memory (it has
    no NFA to fall back on) costs some tens of nanoseconds an instruction and a byte.
    ``PatternError`` when RE2 cannot build it (too large for ``MAX_SET_MEMORY``)."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self._set = re2.Set.SearchSet(_options(MAX_SET_MEMORY, latin1=True))
        try:
            for pattern in patterns:
                if set_cost(pattern) is None:
                    raise PatternError(f"{pattern!r} cannot join a set")
                # The source holds our (?m), and ``_options`` is compile_pattern's.
                self._set.Add(pattern.pattern)  # type: ignore[attr-defined]
            self._set.Compile()
        except re2.error as e:
            raise PatternError(f"no set of these {len(patterns)} patterns: {e}") from None

    def matching(self, text: bytes) -> list[int]:
        """The indices (in the order given) of the patterns that match in ``text``, in
        increasing order."""
        return sorted(self._set.Match(text) or ())
