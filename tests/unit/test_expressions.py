"""Python expressions in a restricted namespace: helpers, refusals, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idsync.engine.context import RunContext
from idsync.engine.expressions import (
    HELPERS,
    MAX_CHARS,
    CancelRow,
    Expression,
    compile_expression,
)
from idsync.errors import ConfigError, IdsyncError, RecordError

LABEL = "mapping 'mail'"
NOW = datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)
RECORD: dict[str, str | None] = {
    "First": "Zoë",
    "Last": "Van Der Berg",
    "Mail": " ZOE@Example.ORG ",
    "Groups": "staff; vpn;;  wifi ",
    "Dept": "eng",
    "Status": "active",
    "Phone": "",
    "Manager": None,
}


@pytest.fixture
def context() -> RunContext:
    return RunContext.create(
        "HR import", now=NOW, environ={"COMPANY": "Example Corp"}, readable=["COMPANY", "NOPE"]
    )


def evaluate(code: str, context: RunContext, fields: dict[str, str | None] | None = None) -> object:
    return compile_expression(code, LABEL).evaluate(RECORD if fields is None else fields, context)


def refused(code: str) -> str:
    with pytest.raises(ConfigError) as info:
        compile_expression(code, LABEL)
    message = info.value.message
    assert message.startswith(LABEL + ": ")
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- namespace and helpers


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('source["First"]', "Zoë"),
        ('lower(source["First"][0] + source["Last"].replace(" ", ""))', "zvanderberg"),
        ('lower(trim(source["Mail"]))', "zoe@example.org"),
        ('upper(source["Dept"])', "ENG"),
        ('left(source["Last"], 3)', "Van"),
        ('left(source["Last"], 100)', "Van Der Berg"),
        ('right(source["Last"], 4)', "Berg"),
        ('substring(source["Last"], 4, 3)', "Der"),
        ('substring(source["Last"], 50)', ""),
        ('replace(source["Last"], " ", "-")', "Van-Der-Berg"),
        ('join([source["First"], source["Phone"], source["Last"]], " ")', "Zoë Van Der Berg"),
        ('join([source["Phone"], source["Manager"]])', None),
        ('default(source["Phone"], "none")', "none"),
        ('default(source["Manager"], "none")', "none"),
        ('default(source["Dept"], "none")', "eng"),
        ('lookup(source["Dept"], {"ENG": "Engineering"})', "Engineering"),
        ('lookup(source["Dept"], {"ENG": "Engineering"}, "Other", case_sensitive=True)', "Other"),
        ('lookup(source["Manager"], {"a": "b"}, "nobody")', "nobody"),
        ('re_sub(r"\\s+", "", source["Last"])', "VanDerBerg"),
        ('re_match(r"@(.+)$", trim(source["Mail"]))', "Example.ORG"),
        ('re_match(r"\\d+", source["Last"])', None),
        ('re_match(r"Van", source["Last"])', "Van"),
        ('split(source["Groups"], ";")', ["staff", "vpn", "wifi"]),
        ('split(source["Last"])', ["Van", "Der", "Berg"]),
        ('split(source["Phone"], ";")', []),
        ('[upper(g) for g in split(source["Groups"], ";") if g != "vpn"]', ["STAFF", "WIFI"]),
        ('sorted(split(source["Groups"], ";"), key=lambda g: len(g))', ["vpn", "wifi", "staff"]),
        ('{k: len(v) for k, v in zip(["a", "b"], ["xy", "z"])}', {"a": 2, "b": 1}),
        ('len(source["Last"]) + int("2") + round(abs(-1.6))', 16),
        ('max(len(x) for x in split(source["Last"]))', 4),
        ('any(g == "vpn" for g in split(source["Groups"], ";"))', True),
        ('list(range(3)) + [i for i, c in enumerate("ab")]', [0, 1, 2, 0, 1]),
        ('"ok" if source["Status"] == "active" else "no"', "ok"),
        ('f"{source[\'First\']} <{lower(trim(source[\'Mail\']))}>"', "Zoë <zoe@example.org>"),
        ('source.get("Nickname", "-")', "-"),
        ('"Nickname" in source', False),
        ('lower(None)', None),
        ('left(12345, 2)', "12"),
        ('str(float("1.5") * 2)', "3.0"),
        ('tuple(set([1, 1, 2])) == (1, 2) and bool(dict(a=1))', True),
        ('min(3, 1, 2) + sum([1, 2]) + len(list(reversed([1, 2])))', 6),
    ],
)
def test_helpers_and_namespace(context: RunContext, code: str, expected: object) -> None:
    assert evaluate(code, context) == expected


def test_context_is_visible_and_read_only(context: RunContext) -> None:
    assert evaluate("context.job", context) == "HR import"
    assert evaluate("context.date + 'T' + context.time", context) == "2024-05-01T12:30:45"
    assert evaluate("context.now.year", context) == 2024
    assert evaluate("context.now.strftime('%Y%m%d%H%M%SZ')", context) == "20240501123045Z"
    assert evaluate("context.env['COMPANY']", context) == "Example Corp"
    assert evaluate("context.env.get('NOPE', 'unset')", context) == "unset"
    with pytest.raises(RecordError, match="mapping 'mail': environment variable 'NOPE' is not set"):
        evaluate("context.env['NOPE']", context)


def test_context_changes_between_runs() -> None:
    expression = compile_expression("context.job + ' ' + context.date", LABEL)
    first = RunContext.create("a", now=NOW, environ={})
    second = RunContext.create("b", now=datetime(2025, 1, 2, tzinfo=UTC), environ={})
    assert expression.evaluate({}, first) == "a 2024-05-01"
    assert expression.evaluate({}, second) == "b 2025-01-02"
    assert expression.evaluate({}, first) == "a 2024-05-01"


def test_the_record_cannot_be_changed(context: RunContext) -> None:
    fields = dict(RECORD)
    for code in ('source.pop("First")', 'source.setdefault("First", "x")', 'source.update(First="x")'):
        with pytest.raises(RecordError, match="AttributeError: 'SourceView' object has no attribute"):
            evaluate(code, context, fields)
    assert evaluate('dict(source).update(First="x")', context, fields) is None
    assert fields == RECORD
    refused('source["First"] = "x"')


def test_implicit_imports_of_c_methods_work_but_imports_stay_closed(context: RunContext) -> None:
    assert evaluate("context.now.strftime('%A')", context) == "Wednesday"
    assert evaluate("'bücher.example'.encode('idna')", context) == b"xn--bcher-kva.example"
    refused("__import__('os')")


def test_fields_read_literally_are_listed() -> None:
    expression = compile_expression('join([source["First"], source.get("Nick"), source["Last"]])', LABEL)
    assert isinstance(expression, Expression)
    assert expression.fields == frozenset({"First", "Last"})
    assert expression.code.startswith("join(")


def test_the_helper_table_is_exactly_the_documented_set() -> None:
    assert set(HELPERS) == {
        "cancel_row", "lower", "upper", "trim", "left", "right", "substring", "replace", "join",
        "default", "lookup", "re_sub", "re_match", "split", "len", "str", "int", "float", "bool",
        "min", "max", "sum", "sorted", "reversed", "any", "all", "abs", "round", "list", "tuple",
        "dict", "set", "range", "enumerate", "zip",
    }


def test_compiled_once_evaluated_many_times(context: RunContext) -> None:
    expression = compile_expression('lower(source["First"])', LABEL)
    results = [expression.evaluate({"First": f"N{i}"}, context) for i in range(1000)]
    assert results[0] == "n0" and results[-1] == "n999"


# ---------------------------------------------------------------- cancel_row


def test_cancel_row(context: RunContext) -> None:
    code = 'cancel_row("terminated") if source["Status"] == "terminated" else source["Mail"]'
    with pytest.raises(CancelRow) as info:
        evaluate(code, context, {**RECORD, "Status": "terminated"})
    assert info.value.reason == "terminated"
    assert evaluate(code, context) == RECORD["Mail"]


def test_cancel_row_is_not_an_error() -> None:
    assert not issubclass(CancelRow, IdsyncError)
    assert not issubclass(CancelRow, RecordError)
    assert issubclass(CancelRow, Exception)
    assert str(CancelRow()) == "row cancelled by the expression"


def test_cancel_row_inside_a_comprehension_still_cancels(context: RunContext) -> None:
    with pytest.raises(CancelRow):
        evaluate("[cancel_row() for g in split(source['Groups'], ';') if g == 'vpn']", context)


# ---------------------------------------------------------------- record errors


def test_missing_field_names_similar_ones(context: RunContext) -> None:
    with pytest.raises(RecordError) as info:
        evaluate('source["Frist"]', context)
    assert info.value.message == "mapping 'mail': the source record has no field 'Frist' (similar: 'First')"


def test_missing_field_lists_fields_when_nothing_is_similar(context: RunContext) -> None:
    with pytest.raises(RecordError) as info:
        evaluate('source["zzz"]', context, {"a": "1", "b": "2"})
    assert info.value.message == "mapping 'mail': the source record has no field 'zzz' (fields: a, b)"


def test_missing_field_differing_in_case(context: RunContext) -> None:
    with pytest.raises(RecordError, match="similar: 'First'"):
        evaluate('source["FIRST"]', context)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1 / 0", "mapping 'mail': ZeroDivisionError: division by zero"),
        ('int(source["First"])', "mapping 'mail': ValueError: invalid literal for int() with base 10: 'Zoë'"),
        ('source["Manager"].lower()', "mapping 'mail': AttributeError: 'NoneType' object has no attribute 'lower'"),
        ('left("abc", -1)', "mapping 'mail': ValueError: left() needs a whole number ≥ 0, got -1"),
        ("list(range(10**6))", "mapping 'mail': ValueError: range() of 1,000,000 items is over the limit of 100,000"),
        ('re_sub(source["Dept"] + "(", "", "x")', "mapping 'mail': the regular expression 'eng(' cannot be used: missing ): eng("),
        ("[1][5]", "mapping 'mail': IndexError: list index out of range"),
    ],
)
def test_evaluation_errors_become_record_errors(context: RunContext, code: str, message: str) -> None:
    with pytest.raises(RecordError) as info:
        evaluate(code, context)
    assert info.value.message == message
    assert info.value.__cause__ is not None


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("().__class__.__bases__", "'__bases__' is not allowed: names starting with '_' are blocked"),
        ("''.__class__", "'__class__' is not allowed: names starting with '_' are blocked"),
        ("__import__('os')", "'__import__' is not allowed: names starting with '_' are blocked"),
        ("__builtins__", "'__builtins__' is not allowed: names starting with '_' are blocked"),
        ("[_y for _y in [1]]", "'_y' is not allowed"),
        ("(lambda _a: 1)(2)", "'_a' is not allowed"),
        ("dict(_k=1)", "'_k' is not allowed"),
        ("open('/etc/passwd')", "'open' is not allowed in expressions (no file, code or introspection access)"),
        ("exec('1')", "'exec' is not allowed"),
        ("eval('1')", "'eval' is not allowed"),
        ("compile('1', 'x', 'eval')", "'compile' is not allowed"),
        ("globals()", "'globals' is not allowed"),
        ("locals()", "'locals' is not allowed"),
        ("getattr(source, 'get')", "'getattr' is not allowed"),
        ("setattr(source, 'x', 1)", "'setattr' is not allowed"),
        ("vars()", "'vars' is not allowed"),
        ("dir()", "'dir' is not allowed"),
        ("type(1)", "'type' is not allowed"),
        ("breakpoint()", "'breakpoint' is not allowed"),
        ("input()", "'input' is not allowed"),
        ("[open for open in [1]]", "'open' is not allowed"),
        ("'{0.__class__}'.format(1)", "the attribute 'format' is not allowed in expressions"),
        ("'{x}'.format_map({})", "the attribute 'format_map' is not allowed"),
        ("(g for g in []).gi_frame", "the attribute 'gi_frame' is not allowed"),
        ("str.mro()", "the attribute 'mro' is not allowed"),
        ("(y := 1)", "the walrus operator := is not allowed in expressions"),
        ("y := 1", "the walrus operator := is not allowed in expressions"),
        ("import os", "must be a single expression, not a statement (no import, assignment or def)"),
        ("from os import path", "must be a single expression, not a statement"),
        ("x = 1", "must be a single expression, not a statement"),
        ("def f(): pass", "must be a single expression, not a statement"),
        ("1; 2", "must be a single expression, not a statement"),
        ("os.system('true')", "unknown name 'os' (source, context and helpers only)"),
        ("lowr(source['First'])", "unknown name 'lowr'; did you mean lower?"),
        ("isinstance(1, int)", "unknown name 'isinstance'"),
        ("1 +", "not a valid Python expression: invalid syntax"),
        ("", "the expression is empty"),
        ("   ", "the expression is empty"),
        ("1" * (MAX_CHARS + 1), f"the expression is {MAX_CHARS + 1:,} characters long; the limit is {MAX_CHARS:,}"),
        ("+".join(["1"] * 1500), "the expression has 4,499 syntax nodes; the limit is 2,000"),
        ("-" * 4000 + "1", "the expression is too deeply nested (more than 200 levels)"),
    ],
)
def test_refused_constructs(code: str, reason: str) -> None:
    assert refused(code).startswith(f"{LABEL}: {reason}")


def test_comprehension_and_lambda_variables_are_known() -> None:
    compile_expression("[g for g in split(source['Groups'], ';')]", LABEL)
    compile_expression("sorted(['b', 'a'], key=lambda s: lower(s))", LABEL)
    compile_expression("{a: b for a, b in zip('xy', 'zw')}", LABEL)


def test_expressions_are_multiline_tolerant(context: RunContext) -> None:
    code = """
        lower(source["First"])
        if source["Status"] == "active"
        else None
    """
    assert evaluate(f"({code.strip()})", context) == "zoë"
