"""Transform steps, static values with variables, joins, and the run context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.engine import transforms as t
from idsync.engine.context import VARIABLE_HELP, RunContext
from idsync.engine.transforms import (
    STEPS,
    check_template,
    compile_steps,
    expand_variables,
    join_values,
)
from idsync.errors import ConfigError, RecordError

NOW = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
LABEL = "mapping 'mail'"


def run(steps: list[Any], value: str | None) -> str | None:
    return compile_steps(steps, LABEL)(value)


def config_error(steps: list[Any]) -> str:
    with pytest.raises(ConfigError) as info:
        compile_steps(steps, LABEL)
    return info.value.message


# ---------------------------------------------------------------- the table


def test_the_table_documents_every_step() -> None:
    assert list(STEPS) == [
        "lower", "upper", "trim", "left", "right", "substring",
        "replace", "default", "lookup", "prefix", "suffix",
    ]
    for name, info in STEPS.items():
        assert info.name == name
        assert info.help and "\n" not in info.help
        assert info.function.__doc__, f"{name} has no docstring"
        assert name in info.example


def test_every_example_in_the_table_compiles() -> None:
    import yaml

    for info in STEPS.values():
        step = yaml.safe_load(info.example)
        assert callable(compile_steps([step], LABEL))


# ---------------------------------------------------------------- each step


@pytest.mark.parametrize(
    ("steps", "value", "expected"),
    [
        (["lower"], "ÀNN Lée", "ànn lée"),
        (["upper"], "straße", "STRASSE"),
        (["trim"], " \t Ann \n", "Ann"),
        (["trim"], "   ", ""),
        ([{"left": 3}], "Müller", "Mül"),
        ([{"left": 10}], "Ann", "Ann"),
        ([{"left": 0}], "Ann", ""),
        ([{"right": 4}], "0612345678", "5678"),
        ([{"right": 10}], "Ann", "Ann"),
        ([{"right": 0}], "Ann", ""),
        ([{"substring": {"start": 0, "length": 3}}], "Müller", "Mül"),
        ([{"substring": {"start": 2}}], "Müller", "ller"),
        ([{"substring": {"start": 10, "length": 2}}], "Ann", ""),
        ([{"substring": {"start": 1, "length": 10}}], "Ann", "nn"),
        ([{"replace": {"old": "-", "new": ""}}], "06-12-34", "061234"),
        ([{"replace": {"old": "é", "new": "e"}}], "Renée", "Renee"),
        ([{"replace": {"pattern": r"^0(\d)", "with": r"+33 \1"}}], "0612", "+33 612"),
        ([{"replace": {"pattern": r"\s+"}}], "a b  c", "abc"),
        ([{"default": "n/a"}], "", "n/a"),
        ([{"default": "n/a"}], None, "n/a"),
        ([{"default": "n/a"}], "x", "x"),
        ([{"default": "n/a"}], " ", " "),
        ([{"prefix": "+1 "}], "555", "+1 555"),
        ([{"prefix": "+1 "}], "", ""),
        ([{"suffix": "@example.org"}], "ann", "ann@example.org"),
        ([{"suffix": "@example.org"}], "", ""),
        (["trim", "lower", {"suffix": "@example.org"}], "  ANN ", "ann@example.org"),
        (["TRIM", "Lower"], " A ", "a"),
        ([], "as is", "as is"),
    ],
)
def test_steps(steps: list[Any], value: str | None, expected: str | None) -> None:
    assert run(steps, value) == expected


@pytest.mark.parametrize(
    "step",
    [
        "lower", "upper", "trim", {"left": 2}, {"right": 2}, {"substring": {"start": 1}},
        {"replace": {"old": "a", "new": "b"}}, {"replace": {"pattern": "a", "with": "b"}},
        {"prefix": "x"}, {"suffix": "x"}, {"lookup": {"table": {"a": "b"}}},
    ],
)
def test_none_passes_through_every_step_but_default(step: Any) -> None:
    assert run([step], None) is None
    assert run([step, {"default": "d"}], None) == "d"


def test_empty_stays_empty_through_text_steps() -> None:
    for step in ("lower", "upper", "trim", {"left": 2}, {"right": 2}, {"lookup": {"table": {"a": "b"}}}):
        assert run([step], "") == ""


def test_order_matters() -> None:
    assert run([{"left": 1}, {"default": "x"}], "") == "x"
    assert run([{"default": "xyz"}, {"left": 1}], "") == "x"


def test_pure_functions_directly() -> None:
    assert t.left("abc", 2) == "ab" and t.right("abc", 2) == "bc"
    assert t.substring("abcdef", 1, 2) == "bc" and t.substring("abc", 1) == "bc"
    assert t.replace_pattern("a1b2", r"\d", "#") == "a#b#"
    assert t.prefix(None, "x") is None and t.suffix("a", "x") == "ax"
    assert t.default(None, "d") == "d"


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_left_right_properties(value: str, n: int) -> None:
    left = run([{"left": n}], value)
    right = run([{"right": n}], value)
    assert left is not None and right is not None
    assert value.startswith(left) and value.endswith(right)
    assert len(left) == len(right) == min(n, len(value))


@given(st.text(), st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20))
def test_substring_is_slicing(value: str, start: int, length: int) -> None:
    assert run([{"substring": {"start": start, "length": length}}], value) == value[start : start + length]


# ---------------------------------------------------------------- lookup


DEPARTMENTS = {"table": {"S": "Sales", "ENG": "Engineering", 42: "Answers"}}


def test_lookup_ignores_case_by_default() -> None:
    assert run([{"lookup": DEPARTMENTS}], "eng") == "Engineering"
    assert run([{"lookup": DEPARTMENTS}], "s") == "Sales"
    assert run([{"lookup": DEPARTMENTS}], "42") == "Answers"


def test_lookup_case_sensitive() -> None:
    steps = [{"lookup": {**DEPARTMENTS, "case_sensitive": True}}]
    assert run(steps, "ENG") == "Engineering"
    with pytest.raises(RecordError):
        run(steps, "eng")


def test_lookup_default() -> None:
    assert run([{"lookup": {**DEPARTMENTS, "default": "Other"}}], "HR") == "Other"


def test_lookup_without_match_or_default_fails_the_record() -> None:
    with pytest.raises(RecordError) as info:
        run(["trim", {"lookup": DEPARTMENTS}], " Marketing ")
    assert info.value.message == (
        "mapping 'mail', step 2 (lookup): no entry for 'Marketing' in the lookup table and no default"
    )


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["lower", {"left": -1}], "mapping 'mail', step 2 (left): needs a whole number ≥ 0 (got -1)"),
        ([{"left": "3"}], "mapping 'mail', step 1 (left): needs a whole number ≥ 0 (got '3')"),
        ([{"right": True}], "mapping 'mail', step 1 (right): needs a whole number ≥ 0 (got True)"),
        ([{"right": 1.5}], "mapping 'mail', step 1 (right): needs a whole number ≥ 0 (got 1.5)"),
        (["left"], "mapping 'mail', step 1 (left): needs an argument, e.g. {left: 3}"),
        (["titlecase"], "mapping 'mail', step 1: unknown step 'titlecase'; known: lower, upper, trim,"),
        ([{"lower": 1}], "mapping 'mail', step 1 (lower): takes no argument"),
        ([{"left": 1, "right": 2}], "mapping 'mail', step 1: write a step as a name or a one-key mapping"),
        ([42], "mapping 'mail', step 1: write a step as a name or a one-key mapping"),
        ([{"substring": 3}], "mapping 'mail', step 1 (substring): needs a mapping, e.g. {substring:"),
        ([{"substring": {"begin": 1}}], "mapping 'mail', step 1 (substring): unknown option begin; allowed: length, start"),
        ([{"substring": {"start": -2}}], "mapping 'mail', step 1 (substring) start: needs a whole number ≥ 0"),
        ([{"substring": {"start": 0, "length": "x"}}], "mapping 'mail', step 1 (substring) length: needs a whole number ≥ 0"),
        ([{"replace": {"new": "b"}}], "mapping 'mail', step 1 (replace): needs 'old'"),
        ([{"replace": {"old": "", "new": "b"}}], "mapping 'mail', step 1 (replace): 'old' must not be empty"),
        ([{"replace": {"old": "a", "pattern": "b"}}], "mapping 'mail', step 1 (replace): give either old/new"),
        ([{"replace": {"pattern": "(", "with": "x"}}], "mapping 'mail', step 1 (replace): the regular expression '(' (replacement 'x') cannot be used: missing ): ("),
        ([{"replace": {"pattern": "a", "with": r"\2"}}], r"mapping 'mail', step 1 (replace): the regular expression 'a' (replacement '\\2') cannot be used: the replacement refers to group 2, and the pattern has 0"),
        ([{"default": None}], "mapping 'mail', step 1 (default): needs an argument"),
        ([{"default": ["x"]}], "mapping 'mail', step 1 (default): needs the value to use when empty"),
        ([{"prefix": {"a": 1}}], "mapping 'mail', step 1 (prefix): needs a text"),
        ([{"lookup": {"table": {}}}], "mapping 'mail', step 1 (lookup): needs a non-empty 'table' mapping"),
        ([{"lookup": {"table": {"a": ["x"]}}}], "mapping 'mail', step 1 (lookup): needs a text value for key 'a'"),
        ([{"lookup": {"table": {"a": "1"}, "case_sensitive": "no"}}], "mapping 'mail', step 1 (lookup): 'case_sensitive' must be true or false"),
        ([{"lookup": {"table": {"a": "1", "A": "2"}}}], "mapping 'mail', step 1 (lookup): key 'A' appears twice with different values"),
    ],
)
def test_bad_steps_are_config_errors_naming_the_mapping_and_step(steps: list[Any], message: str) -> None:
    text = config_error(steps)
    assert text.startswith(message), text
    assert "\n" not in text


def test_same_key_twice_with_the_same_value_is_fine() -> None:
    assert run([{"lookup": {"table": {"a": "1", "A": "1"}}}], "A") == "1"


# ---------------------------------------------------------------- join


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Ann", "Lee"], "Ann Lee"),
        (["Ann", None, "", "Lee"], "Ann Lee"),
        ([None, ""], None),
        ([], None),
        (["Zoë"], "Zoë"),
    ],
)
def test_join_values(values: list[str | None], expected: str | None) -> None:
    assert join_values(values, " ") == expected


def test_join_values_separator() -> None:
    assert join_values(["a", "b", "c"], ", ") == "a, b, c"


# ---------------------------------------------------------------- variables


@pytest.fixture
def context() -> RunContext:
    return RunContext.create(
        "HR import", now=NOW, environ={"COMPANY": "Example Corp", "EMPTY": ""},
        readable=["COMPANY", "EMPTY", "HR_SECRET"],
    )


def test_variables_with_a_fixed_clock(context: RunContext) -> None:
    assert context.variables() == {
        "NOW": "2024-05-01T12:30:45Z",
        "DATE": "2024-05-01",
        "TIME": "12:30:45",
        "JOBNAME": "HR import",
    }
    assert set(VARIABLE_HELP) == {"NOW", "DATE", "TIME", "JOBNAME", "ENV:NAME"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Synced by %JOBNAME% at %NOW%", "Synced by HR import at 2024-05-01T12:30:45Z"),
        ("%DATE% %TIME%", "2024-05-01 12:30:45"),
        ("%date%", "2024-05-01"),
        ("%ENV:COMPANY% staff", "Example Corp staff"),
        ("[%ENV:EMPTY%]", "[]"),
        ("100%% sure", "100% sure"),
        ("50% off, 60% more", "50% off, 60% more"),
        ("%%DATE%%", "%DATE%"),
        ("no variables", "no variables"),
        ("", ""),
    ],
)
def test_expand_variables(context: RunContext, template: str, expected: str) -> None:
    check_template(template, LABEL)
    assert expand_variables(template, context) == expected


def test_missing_environment_variable(context: RunContext) -> None:
    check_template("%ENV:HR_SECRET%", LABEL)  # not read at validation time
    with pytest.raises(ConfigError) as info:
        expand_variables("x-%ENV:HR_SECRET%", context, LABEL)
    assert info.value.message == (
        "mapping 'mail': environment variable 'HR_SECRET' is not set (used as %ENV:HR_SECRET%); "
        "set it where idsync runs"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("%NOWW%", "mapping 'mail': unknown variable '%NOWW%'; known: %NOW%, %DATE%"),
        ("a %USER% b", "mapping 'mail': unknown variable '%USER%'"),
        ("%ENV%", "mapping 'mail': '%ENV%' needs an environment variable name"),
        ("%ENV:%", "mapping 'mail': '%ENV:%' needs an environment variable name"),
        ("%ENV:A B%", "mapping 'mail': '%ENV:A B%' needs an environment variable name"),
        ("%NOW:x%", "mapping 'mail': variable %NOW% takes no argument"),
    ],
)
def test_check_template_refuses_unknown_variables(context: RunContext, template: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_template(template, LABEL)
    assert info.value.message.startswith(message)
    with pytest.raises(ConfigError):
        expand_variables(template, context, LABEL)


# ---------------------------------------------------------------- the run context


def test_context_converts_to_utc_and_snapshots_the_environment() -> None:
    paris = timezone(timedelta(hours=2))
    env = {"A": "1"}
    ctx = RunContext.create("job", now=datetime(2024, 5, 1, 14, 0, tzinfo=paris), environ=env, readable=["A"])
    env["A"] = "changed"
    assert ctx.now == datetime(2024, 5, 1, 12, 0, tzinfo=UTC) and ctx.now.tzinfo is UTC
    assert ctx.environ["A"] == "1"
    with pytest.raises(TypeError):
        ctx.environ["B"] = "x"  # type: ignore[index]


def test_context_defaults_to_the_clock_and_the_readable_part_of_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDSYNC_TEST_MARKER", "here")
    monkeypatch.setenv("DEPT_CODE", "42")
    monkeypatch.setenv("OTHER_VARIABLE", "x")
    before = datetime.now(UTC)
    ctx = RunContext.create("job", readable=["DEPT_CODE", "IDSYNC_TEST_MARKER"])
    assert before <= ctx.now <= datetime.now(UTC)
    assert dict(ctx.environ) == {"DEPT_CODE": "42"}


def test_context_refuses_a_naive_clock() -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        RunContext.create("job", now=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ConfigError, match="aware datetime"):
        RunContext("job", datetime(2024, 5, 1, 12, 0), {})
