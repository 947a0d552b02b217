"""Which regular expressions ``/wait`` runs: refuse the ones that can stall the process.

Python's ``re`` backtracks and keeps the GIL while it does: ``(a+)+$`` against a few KiB
runs for minutes, and the whole reactor (every console, every viewer) waits meanwhile.
``check_pattern`` parses a pattern with the standard library's own parser and refuses, with
a ``PatternRefused`` that names the construct and says why, what makes backtracking blow
up.  The idea: a search is cheap when, at every point, at most one way to go on can
succeed.  A place where several can (an *ambiguity*) multiplies the work by how many:

- a back-reference or a conditional group (``\\1``, ``(?P=name)``, ``(?(1)a|b)``): refused;
- a look-around that can look further than ``MAX_LOOKAROUND_WIDTH`` characters;
- a long repeat (more than ``MAX_SHORT_REPEAT`` times, ``*``, ``+``, ``{m,}``) whose body can
  match the empty string, or holds any ambiguity (``(a+)+``, ``(a|aa)*``, ``(.*a){20}`` as
  ``(.*a)*``): the ways to split a text between the iterations grow exponentially;
- more than ``MAX_OVERLAPPING_REPEATS`` long repeats that may give back characters to
  what follows them (``.*x.*y``: each one multiplies the work by the text's length);
- short repeats and alternations whose choices overlap, together more than
  ``MAX_CHOICES`` ways (``(ab|a.)(ab|a.)...``, ``(a{0,9}){9}``);
- a pattern longer than ``MAX_PATTERN_CHARS``, or nested deeper than ``MAX_NESTING``.

A repeat *gives back* characters to what follows when a character it can match can also
start what follows (``.* done``: ``.`` matches the space); ``\\d+\\.`` does not, so it costs
nothing extra.  Common expect-style patterns have at most one such repeat (``.*``) and no
nested ones; what they cost is then bounded by the square of the text searched, which
``wait.py`` bounds.  Characters are compared as sets: those from 0 to 255 one by one, the
others as four stand-ins (digits, other word characters, spaces, the rest), so that two
classes sharing a stand-in overlap: too careful at times, never too lenient.  Pure logic,
no I/O.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

if sys.version_info >= (3, 11):
    _parser: Any = importlib.import_module("re._parser")
    _c: Any = importlib.import_module("re._constants")
else:  # pragma: no cover -- the parser's old name
    _parser = importlib.import_module("sre_parse")
    _c = importlib.import_module("sre_constants")

#: Longest pattern accepted, in characters.
MAX_PATTERN_CHARS = 1000
#: A repeat of at most this many iterations counts as a few copies of its body; more (or
#: ``*``, ``+``, ``{m,}``) is a long repeat.
MAX_SHORT_REPEAT = 16
#: Widest text a look-ahead or look-behind may examine.
MAX_LOOKAROUND_WIDTH = 256
#: Long repeats that may give characters back to what follows them (``.*`` in ``a.*b``).
MAX_OVERLAPPING_REPEATS = 1
#: The product of the choices of overlapping alternations and short repeats.
MAX_CHOICES = 64
#: Deepest nesting of groups, repeats and alternations.
MAX_NESTING = 32
#: How much of a refused construct an error message quotes.
QUOTE_CHARS = 40

# Characters above 255 stand as four bits: digits, other word characters, spaces, the rest
# (the classes ``\d``, ``\w``, ``\s`` are unions of these, exactly).
_HIGH_SAMPLES = ("\u0660", "\u0101", "\u2003", "\u2014")
_OTHER = 0b1111 << 256
_BYTES = (1 << 256) - 1
_TEXT = _BYTES | _OTHER
_OPTIONAL = (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None))
_CATEGORY_ESCAPES = {
    "CATEGORY_DIGIT": "\\d",
    "CATEGORY_NOT_DIGIT": "\\D",
    "CATEGORY_SPACE": "\\s",
    "CATEGORY_NOT_SPACE": "\\S",
    "CATEGORY_WORD": "\\w",
    "CATEGORY_NOT_WORD": "\\W",
}
_AT_TEXT = {
    "AT_BEGINNING": "^",
    "AT_BEGINNING_LINE": "^",
    "AT_BEGINNING_STRING": "\\A",
    "AT_END": "$",
    "AT_END_LINE": "$",
    "AT_END_STRING": "\\Z",
    "AT_BOUNDARY": "\\b",
    "AT_NON_BOUNDARY": "\\B",
}


class PatternRefused(ValueError):
    """A pattern ``/wait`` will not run; the message names the construct and says why."""


def check_pattern(pattern: str | bytes) -> None:
    """Return if ``pattern`` (as it will be compiled: text for the screen, bytes for the
    output, with ``re.MULTILINE``) is safe to search with; raise ``PatternRefused`` if not.
    ``re.error`` for a pattern that does not parse."""
    if len(pattern) > MAX_PATTERN_CHARS:
        unit = "bytes" if isinstance(pattern, bytes) else "characters"
        raise PatternRefused(
            f"the pattern is {len(pattern)} {unit} long: at most {MAX_PATTERN_CHARS}"
        )
    try:
        tree = _parser.parse(pattern, re.MULTILINE)
    except RecursionError:
        raise PatternRefused(f"groups nested more than {MAX_NESTING} deep") from None
    depth = _nesting(list(tree))
    if depth > MAX_NESTING:
        raise PatternRefused(f"groups nested {depth} deep: at most {MAX_NESTING}")
    check = _Check(isinstance(pattern, bytes))
    check.sequence(list(tree), 0, int(tree.state.flags), inside=None)
    if len(check.overlapping) > MAX_OVERLAPPING_REPEATS:
        quoted = ", ".join(f"`{q}`" for q in dict.fromkeys(check.overlapping))
        raise PatternRefused(
            f"repeats ({quoted}) can match the same characters one after the other: "
            f"searching then takes time that grows with a high power of the text's length "
            f"(at most {MAX_OVERLAPPING_REPEATS} repeat whose characters can also start what "
            f"follows it; make them differ, e.g. `[^x]*x`, not `.*x`)"
        )
    if check.choices > MAX_CHOICES:
        raise PatternRefused(
            f"alternatives and short repeats that can match the same text make about "
            f"{check.choices} ways to try at each position (at most {MAX_CHOICES}); "
            f"make the branches start with different characters"
        )


class _Check:
    """One walk of the parse tree, right to left in each sequence so that every item knows
    which characters can follow it (``follow``, a bit set)."""

    def __init__(self, is_bytes: bool) -> None:
        self.is_bytes = is_bytes
        self.universe = _BYTES if is_bytes else _TEXT
        self.overlapping: list[str] = []
        self.choices = 1
        # the long repeats further right that a repeat giving characters back would make
        # run again over the same text: no character between them that they cannot match
        self.exposed: list[tuple[int, str]] = []
        # what each item of the tree can match, worked out once (items are walked often)
        self._nullable: dict[int, bool] = {}
        self._first: dict[tuple[int, int], int] = {}
        self._chars: dict[tuple[int, int], int] = {}

    # -- the walk ----------------------------------------------------------------------

    def sequence(self, items: Sequence[Any], follow: int, flags: int, inside: str | None) -> int:
        """Check ``items`` (followed by characters ``follow``); return the characters the
        sequence can start with, plus ``follow`` if it can match the empty string.
        ``inside`` quotes the long repeat the sequence is the body of (ambiguity there is
        refused outright, since it repeats)."""
        for item in reversed(items):
            self.item(item, follow, flags, inside)
            first = self.first(item, flags)
            follow = first | follow if self.nullable(item) else first
        return follow

    def item(self, item: Any, follow: int, flags: int, inside: str | None) -> None:
        op, av = item
        if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            what = "a back-reference" if op == _c.GROUPREF else "a conditional group"
            raise PatternRefused(
                f"{what} (`{self.quote([item])}`) is not accepted: matching it can take "
                f"exponential time"
            )
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            _direction, body = av
            _shortest, widest = body.getwidth()
            if widest > MAX_LOOKAROUND_WIDTH:
                raise PatternRefused(
                    f"the look-around `{self.quote([item])}` can examine more than "
                    f"{MAX_LOOKAROUND_WIDTH} characters at every position"
                )
            saved, self.exposed = self.exposed, []
            self.sequence(list(body), 0, flags, inside)
            self.exposed = saved
        elif op == _c.SUBPATTERN:
            _group, add, remove, body = av
            self.sequence(list(body), follow, (flags | add) & ~remove, inside)
        elif op == getattr(_c, "ATOMIC_GROUP", None):
            saved, self.exposed = self.exposed, []
            self.sequence(list(av), 0, flags, inside)  # nothing backtracks into it
            self.exposed = saved
        elif op == _c.BRANCH:
            self.branch(item, follow, flags, inside)
        elif op in _OPTIONAL:
            self.repeat(item, follow, flags, inside)
        elif op in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN):
            # a repeat that cannot match this character stops before it: its runs after
            # different starting points do not overlap
            chars = self.charset(item, flags)
            self.exposed = [e for e in self.exposed if e[0] & chars]

    def branch(self, item: Any, follow: int, flags: int, inside: str | None) -> None:
        saved, merged = self.exposed, []
        firsts = []
        for branch in item[1][1]:
            self.exposed = list(saved)
            firsts.append(self.sequence(list(branch), follow, flags, inside))
            merged += [e for e in self.exposed if e not in merged]
        self.exposed = merged
        ways = _most_sharing(firsts)
        if ways > 1:
            if inside is not None:
                raise PatternRefused(
                    f"`{inside}` repeats an alternation whose branches can match the same "
                    f"text (`{self.quote([item])}`): the ways to split a text between them "
                    f"grow exponentially; make every branch start with a different character"
                )
            self.choices *= ways

    def repeat(self, item: Any, follow: int, flags: int, inside: str | None) -> None:
        op, (low, high, body) = item
        items = list(body)
        chars = self.chars(items, flags)
        gives_back = bool(chars & follow) and op != getattr(_c, "POSSESSIVE_REPEAT", None)
        saved = self.exposed
        if high > MAX_SHORT_REPEAT:  # a long repeat
            quoted = self.quote([item])
            if not _single(items):
                if self.nullable_sequence(items):
                    raise PatternRefused(
                        f"`{quoted}` repeats something that can match the empty string"
                    )
                # the next iteration, or what follows, comes after an iteration
                self.sequence(items, self.first_sequence(items, flags) | follow, flags, quoted)
            if gives_back:
                if inside is not None:
                    raise PatternRefused(
                        f"`{inside}` repeats `{quoted}`, whose characters can also start what "
                        f"follows it: the ways to split a text grow exponentially"
                    )
                self.overlapping.append(quoted)
                self.overlapping += [q for bits, q in saved if bits & chars]
            self.exposed = saved + [(chars, quoted)]
            return
        # a short repeat: up to ``high`` copies of its body
        before, counted = self.choices, len(self.overlapping)
        loop = self.first_sequence(items, flags) if high > 1 else 0
        self.sequence(items, loop | follow, flags, inside)
        if low == 0:
            self.exposed += [e for e in saved if e not in self.exposed]
        grown = self.choices // max(1, before)
        self.choices = before * min(grown ** max(1, high), MAX_CHOICES + 1)
        self.overlapping += self.overlapping[counted:] * (max(1, high) - 1)
        del self.overlapping[MAX_OVERLAPPING_REPEATS + 8 :]  # enough to refuse and to quote
        if gives_back and high > low:
            if inside is not None:
                raise PatternRefused(
                    f"`{inside}` repeats `{self.quote([item])}`, whose characters can also "
                    f"start what follows it: the ways to split a text grow exponentially"
                )
            self.choices *= high - low + 1
        self.choices = min(self.choices, MAX_CHOICES + 1)

    # -- what an item can match ---------------------------------------------------------

    def nullable(self, item: Any) -> bool:
        """Whether ``item`` can match the empty string."""
        key = id(item)
        if key not in self._nullable:
            self._nullable[key] = self._nullable_of(item)
        return self._nullable[key]

    def _nullable_of(self, item: Any) -> bool:
        op, av = item
        if op in _OPTIONAL:
            return av[0] == 0 or self.nullable_sequence(list(av[2]))
        if op == _c.SUBPATTERN:
            return self.nullable_sequence(list(av[3]))
        if op == getattr(_c, "ATOMIC_GROUP", None):
            return self.nullable_sequence(list(av))
        if op == _c.BRANCH:
            return any(self.nullable_sequence(list(b)) for b in av[1])
        if op == _c.GROUPREF_EXISTS:
            return True
        return op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT, _c.GROUPREF)

    def nullable_sequence(self, items: Sequence[Any]) -> bool:
        return all(self.nullable(item) for item in items)

    def first(self, item: Any, flags: int) -> int:
        """The characters a match of ``item`` can start with."""
        key = (id(item), flags)
        if key not in self._first:
            self._first[key] = self._first_of(item, flags)
        return self._first[key]

    def _first_of(self, item: Any, flags: int) -> int:
        op, av = item
        if op in _OPTIONAL:
            return self.first_sequence(list(av[2]), flags)
        if op == _c.SUBPATTERN:
            return self.first_sequence(list(av[3]), (flags | av[1]) & ~av[2])
        if op == getattr(_c, "ATOMIC_GROUP", None):
            return self.first_sequence(list(av), flags)
        if op == _c.BRANCH:
            bits = 0
            for branch in av[1]:
                bits |= self.first_sequence(list(branch), flags)
            return bits
        if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            return self.universe
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            return 0
        return self.charset(item, flags)

    def first_sequence(self, items: Sequence[Any], flags: int) -> int:
        bits = 0
        for item in items:
            bits |= self.first(item, flags)
            if not self.nullable(item):
                break
        return bits

    def chars(self, items: Sequence[Any], flags: int) -> int:
        """Every character a match of ``items`` can contain."""
        bits = 0
        for item in items:
            key = (id(item), flags)
            if key not in self._chars:
                self._chars[key] = self._chars_of(item, flags)
            bits |= self._chars[key]
        return bits

    def _chars_of(self, item: Any, flags: int) -> int:
        op, av = item
        if op in _OPTIONAL:
            return self.chars(list(av[2]), flags)
        if op == _c.SUBPATTERN:
            return self.chars(list(av[3]), (flags | av[1]) & ~av[2])
        if op == getattr(_c, "ATOMIC_GROUP", None):
            return self.chars(list(av), flags)
        if op == _c.BRANCH:
            bits = 0
            for branch in av[1]:
                bits |= self.chars(list(branch), flags)
            return bits
        if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            return self.universe
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            return 0
        return self.charset(item, flags)

    def charset(self, item: Any, flags: int) -> int:
        """The characters one single-character item (literal, class, ``.``) matches."""
        op, av = item
        if op == _c.LITERAL:
            return self.fold(_char_bit(av), flags, av)
        if op == _c.NOT_LITERAL:
            low = self.fold(_char_bit(av), flags, av) & _BYTES
            return self.universe & ~low
        if op == _c.ANY:
            return self.universe if flags & re.DOTALL else self.universe & ~(1 << 10)
        if op == _c.IN:
            bits, negate, exact = 0, False, True
            for sub, value in av:
                if sub == _c.NEGATE:
                    negate = True
                elif sub == _c.LITERAL:
                    bits |= self.fold(_char_bit(value), flags, value)
                    exact = exact and value < 256
                elif sub == _c.RANGE:
                    low, high = value
                    bits |= self.fold(_range_bits(low, high), flags)
                    exact = exact and high < 256
                elif sub == _c.CATEGORY:
                    bits |= _category_bits(str(value), self.is_bytes, flags)
                else:  # an internal form the parser does not produce: assume anything
                    bits |= self.universe
            if negate:
                # a stand-in bit stands for many characters: only those of the classes
                # (\d, \w, \s) can be taken out whole
                bits = self.universe & ~(bits if exact else bits & _BYTES)
            return bits
        return self.universe  # anything else: assume it can match anything

    def fold(self, bits: int, flags: int, code: int | None = None) -> int:
        """``bits`` with the other case of every letter, under ``re.IGNORECASE``."""
        if not flags & re.IGNORECASE:
            return bits
        if bits & _OTHER:  # a character above 255 may fold into one below
            bits |= _range_bits(ord("A"), ord("Z")) | _range_bits(ord("a"), ord("z"))
            if code is not None and not self.is_bytes:
                for other in (chr(code).lower(), chr(code).upper()):
                    bits |= _char_bit(ord(other[0]))
        for code_point in range(256 if not self.is_bytes else 128):
            if bits >> code_point & 1:
                char = chr(code_point)
                for other in (char.lower(), char.upper()):
                    bits |= _char_bit(ord(other[0])) & self.universe
        return bits

    # -- messages ------------------------------------------------------------------------

    def quote(self, items: Sequence[Any]) -> str:
        """``items`` written back as a pattern, shortened to ``QUOTE_CHARS``."""
        text = _write(items, self.is_bytes)
        return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def _char_bit(code: int) -> int:
    if code < 256:
        return 1 << code
    return _category_of_high(chr(code))


def _category_of_high(char: str) -> int:
    if re.fullmatch(r"\d", char):
        return 1 << 256
    if re.fullmatch(r"\w", char):
        return 1 << 257
    if re.fullmatch(r"\s", char):
        return 1 << 258
    return 1 << 259


def _range_bits(low: int, high: int) -> int:
    bits = 0
    if low < 256:
        bits = ((1 << (min(high, 255) + 1)) - 1) & ~((1 << low) - 1)
    return bits | (_OTHER if high > 255 else 0)


_CATEGORIES: dict[tuple[str, bool, int], int] = {}


def _category_bits(name: str, is_bytes: bool, flags: int) -> int:
    r"""The characters of ``\d``, ``\s``, ``\w`` or their opposites, as the regex engine
    itself says (under ``re.ASCII`` they differ above 127)."""
    ascii_only = flags & re.ASCII
    key = (name, is_bytes, ascii_only)
    if key not in _CATEGORIES:
        escape = _CATEGORY_ESCAPES.get(name)
        if escape is None:
            bits = _BYTES if is_bytes else _BYTES | _OTHER
        elif is_bytes:
            regex = re.compile(escape.encode())
            bits = sum(1 << code for code in range(256) if regex.fullmatch(bytes([code])))
        else:
            text = re.compile(escape, ascii_only)
            bits = sum(1 << code for code in range(256) if text.fullmatch(chr(code)))
            for position, sample in enumerate(_HIGH_SAMPLES):
                if text.fullmatch(sample):
                    bits |= 1 << (256 + position)
        _CATEGORIES[key] = bits
    return _CATEGORIES[key]


def _nesting(items: list[Any]) -> int:
    """How deep groups, repeats, alternations and look-arounds nest in ``items`` (walked
    without recursion: the depth is what is being measured)."""
    deepest = 0
    stack = [(items, 0)]
    while stack:
        sequence, depth = stack.pop()
        deepest = max(deepest, depth)
        for op, av in sequence:
            if op in _OPTIONAL:
                stack.append((list(av[2]), depth + 1))
            elif op == _c.SUBPATTERN:
                stack.append((list(av[3]), depth + 1))
            elif op == getattr(_c, "ATOMIC_GROUP", None):
                stack.append((list(av), depth + 1))
            elif op == _c.BRANCH:
                stack.extend((list(branch), depth + 1) for branch in av[1])
            elif op in (_c.ASSERT, _c.ASSERT_NOT):
                stack.append((list(av[1]), depth + 1))
            elif op == _c.GROUPREF_EXISTS:
                stack.extend((list(b), depth + 1) for b in av[1:] if b is not None)
    return deepest


def _single(items: Sequence[Any]) -> bool:
    """One item matching exactly one character: its repeat cannot split text two ways."""
    return len(items) == 1 and items[0][0] in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN)


def _most_sharing(firsts: Sequence[int]) -> int:
    """The most branches that can start with one same character."""
    if len(firsts) < 2:
        return 1
    union = 0
    for bits in firsts:
        union |= bits
    most = 1
    position = 0
    while union >> position:
        if union >> position & 1:
            most = max(most, sum(1 for bits in firsts if bits >> position & 1))
        position += 1
    return most


# -- writing a parsed piece back, for messages ------------------------------------------------


def _write(items: Sequence[Any], is_bytes: bool) -> str:
    return "".join(_write_item(op, av, is_bytes) for op, av in items)


def _write_char(code: int) -> str:
    char = chr(code)
    if char.isprintable() and char not in "\\.^$*+?{}[]|()":
        return char
    if char in "\\.^$*+?{}[]|()":
        return "\\" + char
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def _write_item(op: Any, av: Any, is_bytes: bool) -> str:
    if op == _c.LITERAL:
        return _write_char(av)
    if op == _c.NOT_LITERAL:
        return f"[^{_write_char(av)}]"
    if op == _c.ANY:
        return "."
    if op == _c.AT:
        return _AT_TEXT.get(str(av), "")
    if op == _c.IN:
        parts, negate = [], ""
        for sub, value in av:
            if sub == _c.NEGATE:
                negate = "^"
            elif sub == _c.LITERAL:
                parts.append(_write_char(value))
            elif sub == _c.RANGE:
                parts.append(f"{_write_char(value[0])}-{_write_char(value[1])}")
            elif sub == _c.CATEGORY:
                parts.append(_CATEGORY_ESCAPES.get(str(value), "?"))
        if not negate and len(parts) == 1 and parts[0].startswith("\\") and len(parts[0]) == 2:
            return parts[0]
        return f"[{negate}{''.join(parts)}]"
    if op == _c.SUBPATTERN:
        body = list(av[3])
        if len(body) == 1 and body[0][0] == _c.BRANCH:
            return "(" + "|".join(_write(list(b), is_bytes) for b in body[0][1][1]) + ")"
        return f"({_write(body, is_bytes)})"
    if op == getattr(_c, "ATOMIC_GROUP", None):
        return f"(?>{_write(list(av), is_bytes)})"
    if op == _c.BRANCH:
        return "(?:" + "|".join(_write(list(b), is_bytes) for b in av[1]) + ")"
    if op in _OPTIONAL:
        low, high, body = av
        inner = _write(list(body), is_bytes)
        if not _single(list(body)) and not inner.startswith("("):
            inner = f"(?:{inner})"
        if (low, high) == (0, _c.MAXREPEAT):
            mark = "*"
        elif (low, high) == (1, _c.MAXREPEAT):
            mark = "+"
        elif (low, high) == (0, 1):
            mark = "?"
        elif high == _c.MAXREPEAT:
            mark = f"{{{low},}}"
        elif low == high:
            mark = f"{{{low}}}"
        else:
            mark = f"{{{low},{high}}}"
        if op == _c.MIN_REPEAT:
            mark += "?"
        elif op == getattr(_c, "POSSESSIVE_REPEAT", None):
            mark += "+"
        return inner + mark
    if op == _c.GROUPREF:
        return f"\\{av}"
    if op == _c.GROUPREF_EXISTS:
        return f"(?({av[0]})...)"
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        direction, body = av
        kind = ("<" if direction < 0 else "") + ("=" if op == _c.ASSERT else "!")
        return f"(?{kind}{_write(list(body), is_bytes)})"
    return "?"
