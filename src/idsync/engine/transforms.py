"""The steps of a field mapping, static values with variables, and joins.

A mapping's ``transforms`` is a list of steps applied in order to the value
taken from the source. Each item is a bare name (``"lower"``) or a one-key
mapping giving the step its argument (``{"left": 3}``). :data:`STEPS` lists
every step with its function and one line of help; the CLI prints it and the
reference documentation is generated from it, so the two cannot drift.

Rules shared by every step:

* ``None`` (a missing value) passes through every step except ``default``.
* ``""`` is an empty value: ``default`` replaces it, ``prefix``, ``suffix``
  and ``lookup`` leave it empty (so an empty phone number does not become
  ``"+1 "``); the text steps return it unchanged.
* Arguments are checked once by :func:`compile_steps`, which raises a
  ConfigError naming the mapping and the step; the compiled chain is then a
  plain function called once per record, with nothing left to check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from idsync.engine.bounds import max_length
from idsync.engine.context import RunContext
from idsync.engine.patterns import PatternError, checked_pattern, compile_pattern
from idsync.errors import ConfigError, RecordError

Value = str | None
Step = Callable[[Value], Value]

# ---------------------------------------------------------------- the pure step functions


def lower(value: Value) -> Value:
    """Lower-case the value."""
    return None if value is None else value.lower()


def upper(value: Value) -> Value:
    """Upper-case the value."""
    return None if value is None else value.upper()


def trim(value: Value) -> Value:
    """Remove white space at both ends."""
    return None if value is None else value.strip()


def left(value: Value, count: int) -> Value:
    """The first *count* characters (all of them when the value is shorter)."""
    return None if value is None else value[:count]


def right(value: Value, count: int) -> Value:
    """The last *count* characters (all of them when the value is shorter)."""
    if value is None:
        return None
    return value[-count:] if count else ""


def substring(value: Value, start: int, length: int | None = None) -> Value:
    """*length* characters from 0-based *start* (to the end when *length* is None);
    "" when *start* is past the end."""
    if value is None:
        return None
    return value[start:] if length is None else value[start : start + length]


def replace(value: Value, old: str, new: str) -> Value:
    """Replace every occurrence of the text *old* with *new*."""
    return None if value is None else value.replace(old, new)


def replace_pattern(value: Value, pattern: str, repl: str) -> Value:
    """Replace every match of the regular expression with *repl* (``\\1`` for groups);
    see :mod:`idsync.engine.patterns` for what a pattern may use."""
    return None if value is None else compile_pattern(pattern).replacer(repl)(value)


def default(value: Value, fallback: str) -> Value:
    """*fallback* when the value is missing or empty."""
    return fallback if value is None or value == "" else value


def prefix(value: Value, text: str) -> Value:
    """*text* before a non-empty value."""
    return text + value if value else value


def suffix(value: Value, text: str) -> Value:
    """*text* after a non-empty value."""
    return value + text if value else value


def join_values(values: Sequence[str | None], separator: str) -> str | None:
    """The non-empty values joined with *separator*; None when all are empty."""
    parts = [v for v in values if v]
    return separator.join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class LookupTable:
    """A compiled lookup: the table (keys case-folded unless case-sensitive),
    what to give when nothing matches, and the label for errors."""

    table: Mapping[str, str]
    fallback: str | None
    case_sensitive: bool
    label: str

    def __call__(self, value: Value) -> Value:
        return lookup(value, self)


def lookup(value: Value, spec: LookupTable) -> Value:
    """The table's entry for the value, else the table's default; an unknown
    value without a default fails the record (never a silent guess)."""
    if not value:
        return value
    hit = spec.table.get(value if spec.case_sensitive else value.casefold())
    if hit is not None:
        return hit
    if spec.fallback is not None:
        return spec.fallback
    raise RecordError(f"{spec.label}: no entry for {value!r} in the lookup table and no default")


# ---------------------------------------------------------------- argument checking


def _fail(where: str, why: str) -> ConfigError:
    return ConfigError(f"{where}: {why}")


def _count(arg: Any, where: str) -> int:
    if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
        raise _fail(where, f"needs a whole number ≥ 0 (got {arg!r})")
    return arg


def _text(arg: Any, where: str, what: str = "a text") -> str:
    if isinstance(arg, bool) or not isinstance(arg, str | int | float):
        raise _fail(where, f"needs {what} (got {arg!r})")
    return str(arg)


def _options(arg: Any, where: str, allowed: set[str], example: str) -> Mapping[str, Any]:
    if not isinstance(arg, Mapping):
        raise _fail(where, f"needs a mapping, e.g. {example} (got {arg!r})")
    unknown = sorted(str(k) for k in arg if k not in allowed)
    if unknown:
        raise _fail(where, f"unknown option {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return arg


def _no_arg(fn: Step) -> Callable[[Any, str], Step]:
    def build(arg: Any, where: str) -> Step:
        if arg is not None:
            raise _fail(where, f"takes no argument (write it as a bare name, got {arg!r})")
        return fn

    return build


def _build_left(arg: Any, where: str) -> Step:
    n = _count(arg, where)
    return lambda v: None if v is None else v[:n]


def _build_right(arg: Any, where: str) -> Step:
    n = _count(arg, where)
    return lambda v: right(v, n)


def _build_substring(arg: Any, where: str) -> Step:
    opts = _options(arg, where, {"start", "length"}, "{substring: {start: 0, length: 3}}")
    start = _count(opts.get("start", 0), where + " start")
    raw_length = opts.get("length")
    length = None if raw_length is None else _count(raw_length, where + " length")
    return lambda v: substring(v, start, length)


def _build_replace(arg: Any, where: str) -> Step:
    example = "{replace: {old: 'a', new: 'b'}} or {replace: {pattern: '^0', with: '+33'}}"
    opts = _options(arg, where, {"old", "new", "pattern", "with"}, example)
    if "pattern" in opts:
        if "old" in opts or "new" in opts:
            raise _fail(where, "give either old/new (plain text) or pattern/with (regular expression)")
        source = _text(opts["pattern"], where, "a regular expression in 'pattern'")
        repl = _text(opts.get("with", ""), where, "a text in 'with'")
        _, replacer = checked_pattern(source, repl, where)
        assert replacer is not None
        limit = max_length()

        def substitute(v: Value) -> Value:
            if v is None:
                return None
            try:
                return replacer(v, limit)
            except PatternError as exc:
                raise RecordError(f"{where}: {exc}") from None

        return substitute
    if "old" not in opts:
        raise _fail(where, f"needs 'old' (the text to replace), e.g. {example}")
    old = _text(opts["old"], where, "a text in 'old'")
    if not old:
        raise _fail(where, "'old' must not be empty")
    new = _text(opts.get("new", ""), where, "a text in 'new'")
    return lambda v: None if v is None else v.replace(old, new)


def _build_default(arg: Any, where: str) -> Step:
    fallback = _text(arg, where, "the value to use when empty, e.g. {default: 'n/a'}")
    return lambda v: fallback if v is None or v == "" else v


def _build_prefix(arg: Any, where: str) -> Step:
    text = _text(arg, where)
    return lambda v: text + v if v else v


def _build_suffix(arg: Any, where: str) -> Step:
    text = _text(arg, where)
    return lambda v: v + text if v else v


def _build_lookup(arg: Any, where: str) -> Step:
    example = "{lookup: {table: {'S': 'Sales'}, default: 'Other'}}"
    opts = _options(arg, where, {"table", "default", "case_sensitive"}, example)
    raw = opts.get("table")
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(where, f"needs a non-empty 'table' mapping, e.g. {example}")
    case_sensitive = opts.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        raise _fail(where, f"'case_sensitive' must be true or false (got {case_sensitive!r})")
    table: dict[str, str] = {}
    for key, val in raw.items():
        k = _text(key, where, "text keys in 'table'")
        v = _text(val, where, f"a text value for key {k!r}")
        folded = k if case_sensitive else k.casefold()
        if folded in table and table[folded] != v:
            raise _fail(where, f"key {k!r} appears twice with different values (keys ignore case)")
        table[folded] = v
    fallback = opts.get("default")
    fb = None if fallback is None else _text(fallback, where, "a text in 'default'")
    return LookupTable(table, fb, case_sensitive, where)


@dataclass(frozen=True, slots=True)
class StepInfo:
    """One entry of the step table: the pure function, how its argument is
    checked and bound, an example, and one line of help."""

    name: str
    function: Callable[..., Value]
    build: Callable[[Any, str], Step]
    example: str
    help: str


STEPS: dict[str, StepInfo] = {
    s.name: s
    for s in (
        StepInfo("lower", lower, _no_arg(lower), "lower", "lower-case"),
        StepInfo("upper", upper, _no_arg(upper), "upper", "upper-case"),
        StepInfo("trim", trim, _no_arg(trim), "trim", "remove white space at both ends"),
        StepInfo("left", left, _build_left, "{left: 3}", "the first N characters"),
        StepInfo("right", right, _build_right, "{right: 4}", "the last N characters"),
        StepInfo(
            "substring", substring, _build_substring, "{substring: {start: 0, length: 3}}",
            "LENGTH characters from 0-based START (to the end without length)",
        ),
        StepInfo(
            "replace", replace, _build_replace, "{replace: {old: '-', new: ''}}",
            "replace text (old/new) or a regular expression (pattern/with, \\1 for groups)",
        ),
        StepInfo("default", default, _build_default, "{default: 'n/a'}", "this value when missing or empty"),
        StepInfo(
            "lookup", lookup, _build_lookup, "{lookup: {table: {S: Sales}, default: Other}}",
            "translate through a table (case-insensitive unless case_sensitive: true); "
            "no match and no default fails the record",
        ),
        StepInfo("prefix", prefix, _build_prefix, "{prefix: 'ext-'}", "text before a non-empty value"),
        StepInfo("suffix", suffix, _build_suffix, "{suffix: '@example.org'}", "text after a non-empty value"),
    )
}
"""Every transform step by name; the CLI and the docs print this table."""


_NO_ARG = frozenset({"lower", "upper", "trim"})


def _identity(value: Value) -> Value:
    return value


IDENTITY: Step = _identity
"""What :func:`compile_steps` returns for no steps; callers may test for it to skip the call."""


def _chain(steps: Sequence[Step]) -> Step:
    if len(steps) == 2:
        a, b = steps

        def two(value: Value) -> Value:
            return b(a(value))

        return two

    def run(value: Value) -> Value:
        for step in steps:
            value = step(value)
        return value

    return run


def compile_steps(steps: Sequence[str | Mapping[str, Any]], label: str) -> Step:
    """Check *steps* and return one function applying them in order.

    *label* names the mapping in messages (``"mapping 'mail'"``). Unknown
    steps and bad arguments raise ConfigError; at run time only ``lookup``
    can fail, with a RecordError.
    """
    built: list[Step] = []
    for number, item in enumerate(steps, start=1):
        if isinstance(item, str):
            name, arg = item, None
        elif isinstance(item, Mapping) and len(item) == 1:
            ((name, arg),) = item.items()
        else:
            raise ConfigError(
                f"{label}, step {number}: write a step as a name or a one-key mapping, "
                f"e.g. lower or {{left: 3}} (got {item!r})"
            )
        info = STEPS.get(str(name).strip().lower()) if isinstance(name, str) else None
        if info is None:
            raise ConfigError(
                f"{label}, step {number}: unknown step {name!r}; known: {', '.join(STEPS)}"
            )
        where = f"{label}, step {number} ({info.name})"
        if arg is None and info.name not in _NO_ARG:
            raise _fail(where, f"needs an argument, e.g. {info.example}")
        built.append(info.build(arg, where))
    if not built:
        return _identity
    if len(built) == 1:
        return built[0]
    return _chain(built)


# ---------------------------------------------------------------- static values with variables

_TOKEN = re.compile(r"%(?:(%)|([A-Za-z][A-Za-z0-9_]*)(?::([^%]*))?%)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = ("NOW", "DATE", "TIME", "JOBNAME")


def _check_token(match: re.Match[str], label: str) -> None:
    if match.group(1):
        return
    name, arg = match.group(2).upper(), match.group(3)
    if name == "ENV":
        if arg is None or not _ENV_NAME.fullmatch(arg):
            raise ConfigError(
                f"{label}: {match.group(0)!r} needs an environment variable name, e.g. %ENV:HR_COMPANY%"
            )
    elif name not in _PLAIN:
        raise ConfigError(
            f"{label}: unknown variable {match.group(0)!r}; known: %NOW%, %DATE%, %TIME%, "
            "%JOBNAME%, %ENV:NAME% (write %% for a literal %)"
        )
    elif arg is not None:
        raise ConfigError(f"{label}: variable %{name}% takes no argument (got {match.group(0)!r})")


def check_template(template: str, label: str) -> None:
    """Refuse unknown or malformed variables in a static value, before any run.

    Environment variables are not read here: the run may happen elsewhere.
    """
    if "%" in template:
        for match in _TOKEN.finditer(template):
            _check_token(match, label)


def expand_variables(template: str, context: RunContext, label: str = "value") -> str:
    """*template* with ``%NOW%``, ``%DATE%``, ``%TIME%``, ``%JOBNAME%`` and
    ``%ENV:NAME%`` replaced from *context*, and ``%%`` turned into ``%``.

    A ``%`` that does not start a variable is kept as is. An environment
    variable that is unset, or that the job may not read (see
    :mod:`idsync.engine.context`), raises ConfigError naming it.
    """
    if "%" not in template:
        return template
    table = context.variables()

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return "%"
        _check_token(match, label)
        name = match.group(2).upper()
        if name == "ENV":
            env_name = match.group(3)
            refusal = context.refusal(env_name)
            if refusal is not None:
                raise ConfigError(f"{label}: {refusal} (used as %ENV:{env_name}%)")
            value = context.environ.get(env_name)
            if value is None:
                raise ConfigError(
                    f"{label}: environment variable {env_name!r} is not set "
                    f"(used as %ENV:{env_name}%); set it where idsync runs"
                )
            return value
        return table[name]

    return _TOKEN.sub(sub, template)
