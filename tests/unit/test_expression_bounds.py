"""Runaway expressions are bounded: in size before each operation that could
grow a value, and in time per record; over a bound, the record fails naming
the mapping and the next record is mapped as usual."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from idsync.domain.entry import Record
from idsync.engine.context import RunContext
from idsync.engine.expressions import compile_expression
from idsync.engine.mapping import Mapper
from idsync.errors import ConfigError, RecordError
from tests.jobs import job_definition

LABEL = "mapping 'mail'"
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def context() -> RunContext:
    return RunContext.create("HR import", now=NOW, environ={})


def failure(code: str, context: RunContext, fields: dict[str, str | None] | None = None) -> str:
    """The message of the record error *code* gives, which must come at once."""
    started = time.monotonic()
    with pytest.raises(RecordError) as info:
        compile_expression(code, LABEL).evaluate(fields or {"n": "9"}, context)
    assert time.monotonic() - started < 10.0  # refused before the work: computing it would take minutes
    assert info.value.message.startswith(LABEL + ": ")
    return info.value.message


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("10**int(source['n'])**10", "** would make an integer over 4,300 digits"),
        ("2**int(source['n'])**20", "** would make an integer over 4,300 digits"),
        ("1 << int(source['n'])**10", "<< would make an integer over 4,300 digits"),
        ("(7**4000) * (int(source['n'])**4500)", "* would make an integer over 4,300 digits"),
        ("[0]*10**9", "* would make 1,000,000,000 characters or items, over the limit"),
        ("'ab' * 10**9", "* would make 2,000,000,000 characters or items"),
        ("10**9 * source['n']", "* would make 1,000,000,000 characters or items"),
        ("source['n'].ljust(10**10)", ".ljust() would make 10,000,000,000"),
        ("str.center(source['n'], 10**10)", ".center() would make 10,000,000,000"),
        ("(1).to_bytes(10**10, 'big')", ".to_bytes() would make 10,000,000,000"),
        ("('a' * 10**6).replace('a', 'a' * 10**6)", ".replace() would make 1,000,000,000,000"),
        ("''.join(['a' * 10**6] * 10**6)", ".join() would make"),
        ("replace('a' * 10**6, 'a', 'aaaa' * 10**3)", ".replace() would make"),
        ("join(['a' * 10**6] * 10**6, '')", ".join() would make"),
        ("'%0999999999999d' % 1", "% would make"),
        ("'%*d' % (10**9, 1)", "a width or precision taken from the arguments (%*) is not supported"),
        ("str([['a' * 1000] * 1000] * 1000)", "turning a value into text would make"),
        ("f'{[[0] * 10**6] * 10**6}'", "turning a value into text would make"),
        ("sum([[0] * 10**6] * 10**6, [])", "+ would make"),
        ("[*([0] * 10**7), *([0] * 10**7)]", "* would make 20,000,000"),
    ],
)
def test_operations_that_would_grow_a_value_past_the_limits_fail_at_once(
    context: RunContext, code: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_EXPRESSION_MAX_LENGTH", str(10**7))
    assert reason in failure(code, context)


def test_collections_from_iterators_and_comprehensions_are_bounded(
    context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_EXPRESSION_MAX_LENGTH", "1000")
    for code in (
        "[a for a in range(2000)]",
        "{a for a in range(2000)}",
        "{a: 1 for a in range(2000)}",
        "list(a for a in range(2000))",
        "sorted(a for a in range(1000) for b in range(2))",
        "len(tuple(zip(range(2000), range(2000))))",
    ):
        assert "over the limit of 1,000" in failure(code, context), code
    expression = compile_expression("len([a for a in range(1000)]) + len(list(range(1000)))", LABEL)
    assert expression.evaluate({}, context) == 2000


def test_values_within_the_limits_are_computed_as_python_does(context: RunContext) -> None:
    cases = {
        "2**10 + 3*4 - (1 << 3) + 7 % 3": 1029,
        "'ab' * 3 + 'c'": "abababc",
        "3 * [1]": [1, 1, 1],
        "'%05d-%s' % (42, 'x')": "00042-x",
        "'%(a)s' % {'a': 1}": "1",
        "f'{1234:>8}|{2.5:.2f}|{\"x\"!r}'": "    1234|2.50|'x'",
        "','.join(sorted(['b', 'a']))": "a,b",
        "str.join('-', ['a', 'b'])": "a-b",
        "'a\\tb'.expandtabs(4)": "a   b",
        "'abc'.replace('b', 'xyz')": "axyzc",
        "sum([[1], [2]], [])": [1, 2],
        "sum(x * 2 for x in range(4))": 12,
        "dict(a=1)": {"a": 1},
        "[*'ab', *[1]]": ["a", "b", 1],
        "(lambda str: str * 2)(3)": 6,
        "{k: v for k, v in zip('ab', range(2))}": {"a": 0, "b": 1},
        "context.now.replace(year=2000).year": 2000,
        "str(['a', 1])": "['a', 1]",
        "-(2**64) * 3": -(2**64) * 3,
    }
    for code, expected in cases.items():
        assert compile_expression(code, LABEL).evaluate({}, context) == expected, code


def test_arithmetic_on_constants_over_the_limits_is_refused_when_compiled() -> None:
    for code in ("10**10**10", "1 << 10**9", "(7**4000) * (7**4000)", "2 + 10**10**10"):
        with pytest.raises(ConfigError) as info:
            compile_expression(code, LABEL)
        assert info.value.message.startswith(f"{LABEL}: ") and "would make an integer over 4,300 digits" in info.value.message
    compile_expression("2**64 * 3 - 10**100", LABEL)


def test_a_format_spec_is_checked_when_the_expression_is_compiled() -> None:
    with pytest.raises(ConfigError, match="asks for 99999999999 characters"):
        compile_expression("f'{1:>99999999999}'", LABEL)
    with pytest.raises(ConfigError, match="computed when the expression runs"):
        compile_expression("f'{1:>{10**9}}'", LABEL)


def test_a_record_past_the_time_limit_fails_and_the_run_goes_on(
    context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_RECORD_TIME_LIMIT_SECONDS", "0.3")
    mapper = Mapper(
        job_definition([
            {"attribute": "uid", "from": "id", "key": True},
            {
                "attribute": "mail",
                "expression": (
                    "source['id'] + '@x' if source['id'] != 'slow' "
                    "else sum(1 for a in range(10**5) for b in range(10**5))"
                ),
            },
        ]),
        context,
    )
    started = time.monotonic()
    with pytest.raises(RecordError) as info:
        mapper.map(Record({"id": "slow"}, line=2))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 10.0  # not before the limit; and long before the expression's own end (hours)
    assert info.value.attribute == "mail" and info.value.line == 2
    assert info.value.message == (
        "mapping 'mail': the record's expressions took longer than the limit of 0.3 s "
        "(IDSYNC_RECORD_TIME_LIMIT_SECONDS)"
    )
    assert mapper.map(Record({"id": "ann"}, line=3)).values["mail"] == ("ann@x",)
    time.sleep(0.4)  # a late shot of the watchdog would land here
    assert mapper.map(Record({"id": "bob"}, line=4)).values["mail"] == ("bob@x",)


def test_the_time_limit_covers_all_expressions_of_a_record(
    context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_RECORD_TIME_LIMIT_SECONDS", "0.3")
    slow = "sum(1 for a in range(500) for b in range(10**4)) and source['id']"  # 0.1-0.2 s each
    mapper = Mapper(
        job_definition([
            {"attribute": "uid", "from": "id", "key": True},
            *({"attribute": f"a{n}", "expression": slow} for n in range(30)),
        ]),
        context,
    )
    started = time.monotonic()
    with pytest.raises(RecordError, match=r"took longer than the limit of 0\.3 s"):
        mapper.map(Record({"id": "ann"}, line=2))
    assert time.monotonic() - started < 2.5  # 30 expressions of 0.1-0.2 s each would take 3 s or more


def test_nesting_is_bounded_with_a_reason() -> None:
    for code in ("(lambda: " * 300 + "1" + ")" * 300, "-" * 250 + "1", "[" * 201 + "]" * 201):
        with pytest.raises(ConfigError) as info:
            compile_expression(code, LABEL)
        assert info.value.message == f"{LABEL}: the expression is too deeply nested (more than 200 levels)"
    compile_expression("(lambda: " * 50 + "1" + ")" * 50, LABEL)
