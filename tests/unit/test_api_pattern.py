"""``compile_pattern``: wait patterns run in RE2.  The patterns scripts wait for match what
Python's ``re`` matched; those that backtrack without end in ``re`` are accepted and run in
linear time; what RE2 cannot run, or refuses as too large, is a ``PatternError`` that says
why in plain words with RE2's own message.  A ``PatternSet`` of output patterns says which of
them match a text, agreeing with each pattern's own search."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vncmux.api.pattern import (
    MAX_PATTERN_CHARS,
    MAX_PROGRAM_SIZE,
    PatternError,
    PatternSet,
    compile_pattern,
    set_cost,
)

#: What expect-style scripts wait for (the README's recipe among them).
COMMON = [
    r"login: $",
    r"login: *$",
    r"Password: *$",
    r"[#$] *$",
    r"\[\s*\d+\.\d+\] Booting",
    r"root@\w+:~# ",
    r"(?i)password:",
    r"Welcome to .* \d+\.\d+",
    r"(foo|bar) done",
    r"[0-9a-f]{8,64}",
    r"^\s*$",
    r"done: [0-9]+",
    r"^READY (\d\d)$",
    r"(?s)BEGIN.*END",
    r"(\d+\.){3}\d+",
    r"([0-9a-f]{2}:){5}[0-9a-f]{2}",
    r"(\w+ )+\$ $",
    r"(yes|y|no|n)\b",
    r"(?P<level>error|err): (?P<what>.*)",
    r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}",
    r"Linux .* #\d+",
    r"\x1b\[\d+;\d+H",
    r"^(OK|ERROR|FAIL)$",
    r"reboot: (Restarting|Power down)",
]

#: Console text those patterns look for, and text they should not find anything in.
SAMPLES = [
    "debian login: ",
    "debian login: \nPassword: ",
    "[    0.000000] Booting Linux on physical CPU 0x0\n[    1.5] Booting paravirtualized",
    "root@guest:~# ls\nfile\nroot@guest:~# ",
    "PASSWORD:",
    "Welcome to Ubuntu 24.04.1 LTS (GNU/Linux 6.8.0-45-generic x86_64)",
    "build foo done\nbar done",
    "commit 0123456789abcdef0123456789abcdef01234567",
    "line\n\n   \nnext",
    "$ ./run; echo done: $?\ndone: 0\n$ ",
    "READY 4\nREADY 42\nREADY 7",
    "BEGIN\nbody\nEND",
    "eth0: 52:54:00:12:34:56 inet 10.0.2.15/24",
    "user host $ ",
    "Continue? [yes/no] y",
    "2026-12-07 18:37:30 error: disk full\nerr: retry",
    "Linux guest 6.8.0-45-generic #45-Ubuntu SMP",
    "\x1b[12;40Hx",
    "OK\nERROR\n",
    "reboot: Restarting system",
    "héllo wörld, nothing to see",
    "",
]

#: Patterns that backtrack without end in ``re``, each with 100 KiB that makes it, and what
#: RE2 finds there (a span, or ``None``).
LARGE = 100 << 10
HOSTILE = [
    (r"(a+)+$", "a" * (LARGE - 1) + "!", None),
    (r"(a|aa)*b", "a" * LARGE, None),
    (r"(.*a){20}", "a" * 19 + "b" * (LARGE - 19), None),
    (r"\s*\s*$", " " * (LARGE - 1) + "x", (LARGE, LARGE)),
    (r".*x.*y", "x" * LARGE, None),
]

#: Python syntax RE2 does not have: back-references, look-around and their kin.
NOT_RE2 = [
    r"(a)\1",
    r"(?P<x>a)(?P=x)",
    r"(?=.*x)",
    r"x(?!y)",
    r"(?<=\] )Booting",
    r"(?<!a)b",
    r"(a)?(?(1)b|c)",
    r"(?>a+)b",
    r"a*+b",
    r"done\Z",
]
PLAIN_WORDS = (
    "back-references and look-around are not supported: patterns are RE2 syntax, see README"
)


def found(match: Any) -> Any:
    """A match as comparable data: its span and groups (bytes as text), or ``None``."""
    if match is None:
        return None
    groups = [g.decode() if isinstance(g, bytes | bytearray) else g for g in match.groups()]
    return match.span(), groups


@pytest.mark.parametrize("pattern", COMMON)
def test_common_patterns_match_what_python_re_matched(pattern: str) -> None:
    screen = compile_pattern(pattern)
    output = compile_pattern(pattern, as_bytes=True)
    before = re.compile(pattern, re.MULTILINE)
    matched = 0
    for text in SAMPLES:
        expected = found(before.search(text))
        assert found(screen.search(text)) == expected, text
        if text.isascii():  # byte offsets are character offsets
            assert found(output.search(bytearray(text.encode()))) == expected, text
        matched += expected is not None
    assert matched, f"no sample has what {pattern!r} looks for"


@pytest.mark.parametrize(("pattern", "text", "span"), HOSTILE)
def test_patterns_that_backtrack_without_end_in_re_run_quickly(
    pattern: str, text: str, span: tuple[int, int] | None
) -> None:
    """< 1 s for 100 KiB is a correctness bound, not a benchmark: in ``re`` each of these
    runs for longer than anyone waits; in RE2 it takes milliseconds."""
    for regex, data in (
        (compile_pattern(pattern), text),
        (compile_pattern(pattern, as_bytes=True), bytearray(text.encode())),
    ):
        began = time.perf_counter()
        match = regex.search(data)
        assert time.perf_counter() - began < 1.0
        assert (found(match)[0] if match else None) == span


@pytest.mark.parametrize("pattern", NOT_RE2)
def test_back_references_and_look_around_are_refused_in_plain_words(pattern: str) -> None:
    for as_bytes in (False, True):
        with pytest.raises(PatternError) as refused:
            compile_pattern(pattern, as_bytes)
        message = str(refused.value)
        assert PLAIN_WORDS in message and repr(pattern) in message
        assert "(RE2: invalid" in message or "(RE2: bad repetition" in message


@pytest.mark.parametrize(
    ("pattern", "re2_says"),
    [("(", "missing ): ("), ("a)", "unexpected ): a)"), ("a{2,1}", "{2,1}"), ("[z-a]", "z-a")],
)
def test_a_pattern_that_does_not_parse_says_what_re2_says(pattern: str, re2_says: str) -> None:
    with pytest.raises(PatternError) as refused:
        compile_pattern(pattern)
    message = str(refused.value)
    assert message.startswith(f"bad regular expression {pattern!r}: ") and re2_says in message
    assert "(?m)" not in message  # what compile_pattern adds is not the client's


def test_re2_logs_nothing_of_its_own(capfd: pytest.CaptureFixture[str]) -> None:
    for pattern in ("(", r"(a)\1", r"\pL{0,999}"):
        with pytest.raises(PatternError):
            compile_pattern(pattern)
    assert capfd.readouterr().err == ""  # the refusal is logged once, by the API, with the peer


def test_long_or_costly_patterns_are_refused_saying_the_bound() -> None:
    with pytest.raises(PatternError, match=f"at most {MAX_PATTERN_CHARS}"):
        compile_pattern("x" * (MAX_PATTERN_CHARS + 1))
    compile_pattern("[xy]" * (MAX_PATTERN_CHARS // 4))  # as long as may be
    with pytest.raises(
        PatternError, match=rf"compiles to \d+ RE2 instructions, at most {MAX_PROGRAM_SIZE}"
    ):
        compile_pattern(r"(?s)(a|.){0,999}0")
    with pytest.raises(PatternError, match="too large for RE2"):
        compile_pattern(r"\pL{0,999}")  # over RE2's own memory bound before ours
    compile_pattern(r".{100}")  # 804 instructions


def test_lines_flags_groups_and_a_start_position() -> None:
    text = "one\ntwo: 2\nTHREE"
    assert found(compile_pattern(r"^two: (\d)$").search(text)) == ((4, 10), ["2"])
    assert compile_pattern(r"(?i)three$").search(text) is not None
    assert compile_pattern(r"one.two").search(text) is None
    assert compile_pattern(r"(?s)one.two").search(text) is not None
    named = compile_pattern(r"(?P<word>\w+): (?P<n>\d)").search(text)  # numbered as in re
    assert named is not None and named.groups() == ("two", "2")
    # a search from a position sees what comes before it, as re does
    assert compile_pattern(r"^wo").search(text, 5) is None
    assert compile_pattern(r"^two").search(text, 4) is not None
    assert compile_pattern(r"\btwo").search("atwo", 1) is None


def test_output_patterns_match_bytes_as_re_did() -> None:
    text = bytearray("é\xff".encode() + b"\xff\nend")
    assert found(compile_pattern("é", as_bytes=True).search(text)) == ((0, 2), [])
    assert found(compile_pattern(r"^.", as_bytes=True).search(text)) == ((0, 1), [])  # one byte
    # a lone surrogate is the byte it escapes, as the pattern went through surrogateescape
    assert found(compile_pattern("\udcff\n", as_bytes=True).search(text)) == ((4, 6), [])
    match = compile_pattern(r"(e)nd$", as_bytes=True).search(text)
    assert match is not None and match.group(1) == b"e"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.*+?|()[]^$\\dw{}1,-=<!:P", max_size=30))
def test_any_pattern_compiles_or_is_a_pattern_error(pattern: str) -> None:
    """Nothing but ``PatternError`` escapes (so a client gets a 400, never a traceback), and
    what compiles searches a worst-case text quickly."""
    for as_bytes in (False, True):
        try:
            regex = compile_pattern(pattern, as_bytes)
        except PatternError:
            continue
        text = "ab" * 2048 + "\n" + "a" * 4096
        began = time.perf_counter()
        regex.search(bytearray(text.encode()) if as_bytes else text)
        assert time.perf_counter() - began < 1.0


# -- sets of output patterns: one pass says which match ---------------------------------------


def agree(patterns: list[Any], text: bytes) -> list[int]:
    """The set's answer over ``text``, checked against each pattern's own search."""
    said = PatternSet(patterns).matching(text)
    assert said == sorted(said)
    own = [i for i, p in enumerate(patterns) if p.search(text) is not None]
    assert said == own, text
    return said


def test_a_set_says_what_each_output_pattern_finds_on_its_own() -> None:
    patterns = [compile_pattern(p, as_bytes=True) for p in COMMON]
    hits = 0
    for sample in SAMPLES:
        hits += len(agree(patterns, sample.encode()))
    assert hits > len(COMMON)  # most of them match somewhere
    # lines, text edges, bytes as Latin-1, a lone surrogate, word edges, empty matches
    edges = ["^x$", r"\Ax", r"x\z", "é", "\udcff", r"\bab\b", "^$", r"(?s)a.b", "a.b", ""]
    patterns = [compile_pattern(p, as_bytes=True) for p in edges]
    for text in [b"", b"x", b"ax\nx", b"\xc3\xa9", b"\xff", b"cab ab", b"a\nb", b"\n\n"]:
        agree(patterns, text)
    assert agree(patterns, b"z\nx") == [0, 2, 9]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="ab.*+?|()[]^$\\dw{}1,", max_size=12), min_size=1, max_size=8),
    st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"a"))
    | st.text("ab \n1").map(str.encode),
)
def test_a_set_agrees_with_each_pattern_on_any_text(sources: list[str], text: bytes) -> None:
    """A pattern the set says matches finds its match; one it says does not, finds none."""
    patterns = []
    for source in sources:
        try:
            patterns.append(compile_pattern(source, as_bytes=True))
        except PatternError:
            pass
    if patterns:
        agree(patterns, text)


def test_only_output_patterns_join_a_set() -> None:
    output = compile_pattern("ab+", as_bytes=True)
    assert set_cost(output) == output.programsize > 0  # type: ignore[attr-defined]
    assert set_cost(compile_pattern("ab+")) is None  # a screen pattern: str, UTF-8
    assert set_cost(object()) is None  # type: ignore[arg-type]
    with pytest.raises(PatternError):
        PatternSet([output, compile_pattern("ab+")])
    assert PatternSet([]).matching(b"anything") == []
