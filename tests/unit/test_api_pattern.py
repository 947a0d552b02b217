"""``check_pattern``: the patterns scripts use to wait for a prompt pass; those whose search
can take minutes (and stall every console meanwhile) are refused, saying what and why."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vncmux.api.pattern import (
    MAX_CHOICES,
    MAX_LOOKAROUND_WIDTH,
    MAX_NESTING,
    MAX_PATTERN_CHARS,
    PatternRefused,
    check_pattern,
)
from vncmux.api.wait import OUTPUT_SPAN, OUTPUT_STEP, PatternError, compile_pattern

#: What expect-style scripts wait for: all of these must keep working.
ACCEPTED = [
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
    r"part-one.*part-two",
    r"(?s)BEGIN.*END",
    r"(\d+\.){3}\d+",
    r"(\d{1,3}\.){3}\d{1,3}",
    r"([0-9a-f]{2}:){5}[0-9a-f]{2}",
    r"(\w+ )+\$ $",
    r"(yes|y|no|n)\b",
    r"(error|err): .*",
    r"error(?! 0)",
    r"(?<=\] )Booting",
    r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}",
    r"[^\n]*\n",
    r"Linux .* #\d+",
    r"\x1b\[\d+;\d+H",
    r"(?m)^(OK|ERROR|FAIL)$",
    r"reboot: (Restarting|Power down)",
]

#: Hostile or careless patterns, with a piece of the reason the refusal gives.
REFUSED = [
    (r"(a+)+$", "`(a+)+` repeats `a+`"),
    (r"(a|aa)*b", "alternation whose branches can match the same text"),
    (r"(.*a){20}", "repeats `.*`"),
    (r"(.*a){5}", "repeats (`.*`)"),
    (r"(\w+\s?)+$", "repeats `\\w+`"),
    (r"([a-z]+.)+x", "repeats `[a-z]+`"),
    (r"(\d+){3}x", "`\\d+`"),
    (r".*x.*y", "repeats (`.*`) can match the same characters"),
    (r"\s*\s*$", "repeats (`\\s*`)"),
    (r"[^a]*[^b]*c", "repeats (`[^b]*`, `[^a]*`)"),
    (r"(a)\1", "a back-reference (`\\1`)"),
    (r"(?P<x>a)(?P=x)", "a back-reference"),
    (r"(a)?(?(1)b|c)", "a conditional group"),
    (r"(?=.*x)", f"can examine more than {MAX_LOOKAROUND_WIDTH} characters"),
    (r"x(?!.*y)", "the look-around `(?!.*y)`"),
    (r"(a*)*", "repeats something that can match the empty string"),
    (r"(x?)*y", "can match the empty string"),
    (r"(ab|a.){7}", f"(at most {MAX_CHOICES})"),
    ("(ab|a.)" * 7, "make the branches start with different characters"),
    (r"(a?){30}", "empty string"),
    ("x" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS}"),
    ("(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), f"at most {MAX_NESTING}"),
    ("(" * 400 + "a" + ")" * 400, "nested"),
    ("(" * 15 + ".*x" + "){16}" * 15, "repeats (`.*`)"),
    ("(" * 15 + "a{0,16}" + "){16}" * 15, f"(at most {MAX_CHOICES})"),
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_common_patterns_are_accepted_for_the_screen_and_the_output(pattern: str) -> None:
    check_pattern(pattern)
    check_pattern(pattern.encode("utf-8"))
    compile_pattern(pattern)
    compile_pattern(pattern, as_bytes=True)


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_hostile_patterns_are_refused_saying_what_and_why(pattern: str, reason: str) -> None:
    for form in (pattern, pattern.encode("utf-8")):
        with pytest.raises(PatternRefused) as refused:
            check_pattern(form)
        assert reason in str(refused.value)
    with pytest.raises(PatternError, match="refused"):
        compile_pattern(pattern)


def test_characters_above_255_are_told_apart_by_class() -> None:
    check_pattern(r"[\u4e00-\u9fff]+ \d+")  # screen patterns only: bytes have no \u
    check_pattern(r"\s*\d+")  # a space class then a digit class: disjoint, also above 255
    check_pattern(r"[^\d]*\d")  # a negated class is exact for the classes
    with pytest.raises(PatternRefused):
        check_pattern(r"[^\u0661]*\d*x")  # any other Arabic digit is in both: overlap
    with pytest.raises(PatternRefused):
        check_pattern(r"(?i)[k]*\u212a*x")  # the Kelvin sign folds to k


def test_the_ascii_flag_and_ignorecase_change_the_classes() -> None:
    check_pattern(r"(?a)\w*[\u00e9]")  # under ASCII, \w has no é
    with pytest.raises(PatternRefused):
        check_pattern(r"\w*[\u00e9]*x")
    check_pattern(r"a*Aa*x")
    with pytest.raises(PatternRefused):
        check_pattern(r"(?i)a*Aa*x")


def test_checking_is_quick_even_for_deep_or_wide_patterns() -> None:
    began = time.perf_counter()
    for pattern in (
        "(?i)" + "(" * MAX_NESTING + "[a-z]" + ")" * MAX_NESTING,
        "(?:(?:(?:a|b)c|d)e|f)" * 40,
        "(?i)" + "(?:\\w*z)?" * 90,
        "|".join(f"w{n}" for n in range(160)),
    ):
        try:
            check_pattern(pattern)
        except PatternRefused:
            pass
    assert time.perf_counter() - began < 5  # each takes milliseconds; quadratic walks took s


def test_a_pattern_that_does_not_parse_is_a_regex_error() -> None:
    with pytest.raises(re.error):
        check_pattern("(")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # "possible nested set": re's own
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.*+?|()[]^$\\d{}1,-", max_size=30))
def test_any_pattern_is_accepted_refused_or_a_regex_error(pattern: str) -> None:
    try:
        check_pattern(pattern)
    except (PatternRefused, re.error):
        return
    re.compile(pattern)  # what is accepted compiles


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_accepted_patterns_search_a_worst_window_quickly(pattern: str) -> None:
    """Not a measure of speed (the machine may be busy): a guard against a rule that lets
    an exponential pattern through, which would take minutes here, not a second."""
    size = OUTPUT_SPAN + OUTPUT_STEP
    regex = compile_pattern(pattern, as_bytes=True)
    began = time.perf_counter()
    for text in (b"a" * size, b" " * size + b"x", b"1." * (size // 2), b"a " * (size // 2)):
        regex.search(text)
    assert time.perf_counter() - began < 10
