"""Regular expressions from definitions and data run in linear time (RE2):
a catastrophic pattern finishes at once, what RE2 cannot run is refused when
the job is compiled (saved), naming the mapping and the feature, and Python's
spelling and meaning are kept where RE2 differs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from idsync.domain.entry import Record
from idsync.engine.context import RunContext
from idsync.engine.expressions import compile_expression
from idsync.engine.mapping import Mapper
from idsync.engine.transforms import compile_steps
from idsync.errors import ConfigError, RecordError
from tests.jobs import job_definition

LABEL = "mapping 'mail'"
EVIL = "a" * 34 + "!"
CONTEXT = RunContext.create("HR import", now=datetime(2024, 5, 1, tzinfo=UTC), environ={})


def quickly(fn: object, *args: object) -> object:
    started = time.monotonic()
    result = fn(*args)  # type: ignore[operator]
    assert time.monotonic() - started < 0.5
    return result


def test_a_catastrophic_pattern_finishes_at_once_in_a_replace_step() -> None:
    step = compile_steps([{"replace": {"pattern": "(a+)+$", "with": "x"}}], LABEL)
    assert quickly(step, EVIL) == EVIL
    assert quickly(step, "aaa") == "x"


def test_a_catastrophic_pattern_finishes_at_once_in_expressions() -> None:
    sub = compile_expression('re_sub("(a+)+$", "x", source["v"])', LABEL)
    match = compile_expression('re_match(source["p"], source["v"])', LABEL)
    assert quickly(sub.evaluate, {"v": EVIL}, CONTEXT) == EVIL
    assert quickly(match.evaluate, {"p": "(a|aa)+$", "v": EVIL}, CONTEXT) is None


def test_a_job_mapping_a_catastrophic_pattern_maps_the_record_at_once() -> None:
    mapper = Mapper(
        job_definition([
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "mail", "from": "v", "transforms": [{"replace": {"pattern": "(a+)+$", "with": "x"}}]},
        ]),
        CONTEXT,
    )
    assert quickly(mapper.map, Record({"id": "1", "v": EVIL}, line=2)).values["mail"] == (EVIL,)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"(a)\1", r"a backreference (\1) is not supported"),
        ("(?P<x>a)(?P=x)", "a named backreference (?P=name) is not supported"),
        ("a(?=b)", "a lookahead (?=...) is not supported"),
        ("a(?!b)", "a negative lookahead (?!...) is not supported"),
        ("(?<=a)b", "a lookbehind (?<=...) is not supported"),
        ("(?<!a)b", "a negative lookbehind (?<!...) is not supported"),
        ("(a)?(?(1)b|c)", "a conditional group (?(...)...) is not supported"),
        ("(?>a+)b", "an atomic group (?>...) is not supported"),
        ("a*+b", "a possessive quantifier (*+) is not supported"),
        ("(?x) a b", "the flag 'x' is not supported"),
        (r"[\W]", r"\W inside [...] is not supported"),
    ],
)
def test_what_re2_cannot_run_is_refused_when_compiled_naming_the_feature(pattern: str, feature: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_steps([{"replace": {"pattern": pattern, "with": ""}}], LABEL)
    message = info.value.message
    assert message.startswith(f"{LABEL}, step 1 (replace): the regular expression {pattern!r} (replacement '')")
    assert feature in message
    with pytest.raises(ConfigError) as info:
        compile_expression(f"re_sub({pattern!r}, '', source['v'])", LABEL)
    assert info.value.message.startswith(f"{LABEL}: re_sub(): the regular expression {pattern!r} cannot be used")
    assert feature in info.value.message


def test_a_pattern_computed_from_data_that_re2_cannot_run_fails_the_record() -> None:
    expression = compile_expression('re_match(source["p"], source["v"])', LABEL)
    with pytest.raises(RecordError) as info:
        expression.evaluate({"p": r"(a)\1", "v": "aa"}, CONTEXT)
    assert info.value.message.startswith(
        rf"{LABEL}: the regular expression '(a)\\1' cannot be used: a backreference (\1) is not supported"
    )


@pytest.mark.parametrize(
    ("pattern", "repl", "value", "expected"),
    [
        (r"^0(\d)", r"+33 \1", "0612", "+33 612"),
        (r"\w+", r"<\g<0>>", "Zoë Ångström", "<Zoë> <Ångström>"),
        (r"\W+", "", "Zoë-Ann O'Brien", "ZoëAnnOBrien"),
        (r"\d", "#", "a١b2", "a#b#"),  # Arabic-Indic digit one is a decimal digit, as in Python
        (r"\s+", " ", "a\u00a0\u2003b\tc", "a b c"),
        (r"[\w.]+@", "", "zoë.v@example.org", "example.org"),
        (r"(?P<first>\w)\w*", r"\g<first>.", "Zoë Van", "Z. V."),
        (r"(a)?b", r"[\1]", "b", "[]"),
        ("x", r"\n\t\\", "axb", "a\n\t\\b"),
        (r"\d+\Z", "#", "a12", "a#"),
        (r"(?i)ZOË", "z", "zoë", "z"),
        (r"[]x]", "-", "a]x", "a--"),
    ],
)
def test_python_spelling_and_meaning_are_kept(pattern: str, repl: str, value: str, expected: str) -> None:
    step = compile_steps([{"replace": {"pattern": pattern, "with": repl}}], LABEL)
    assert step(value) == expected


def test_a_replacement_growing_past_the_limit_fails_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_EXPRESSION_MAX_LENGTH", "1000")
    step = compile_steps([{"replace": {"pattern": "", "with": "xxxxxxxxxx"}}], LABEL)
    with pytest.raises(RecordError) as info:
        step("a" * 200)
    assert info.value.message == f"{LABEL}, step 1 (replace): the replaced text would be over 1,000 characters"
