"""Python expressions in field mappings, evaluated in a restricted namespace.

An expression is one Python expression (never a statement) such as
``lower(source["First"][0] + source["Last"])`` or
``cancel_row() if source["Status"] == "terminated" else source["Mail"]``.
It sees only:

* ``source``: the record, read-only; ``source["Name"]`` of a field the record
  lacks fails the record with a message listing similar field names;
  ``source.get("Name")`` gives None instead.
* ``context``: the run, read-only: ``job``, ``now`` (aware UTC datetime),
  ``date`` and ``time`` (text, UTC), ``env`` (the environment variables the
  job may read, see :mod:`idsync.engine.context`; another name fails the
  record, naming the variable).
* ``cancel_row(reason="")``: skip this record (counted as skipped, not as an error).
* helpers (None in, None out): ``lower upper trim left right substring replace
  join default lookup re_sub re_match split``, and the plain builtins ``len str
  int float bool min max sum sorted reversed any all abs round list tuple dict
  set range enumerate zip`` (``range`` refuses more than 100,000 items).
  ``re_sub`` and ``re_match`` run on RE2 (:mod:`idsync.engine.patterns`).

**What this is, and what it is not.** Expressions are written by the
administrators who define jobs, people already trusted with the directory's
credentials. The checks below are a guard against *mistakes* in such trusted
definitions (a typo in a name, an accidental file or module access, an
unbounded loop over ``range``) and give a clear message at validation time.
They are **not a security sandbox**: Python cannot be safely confined in
process, and nobody should let untrusted users write expressions.

Refused when the expression is compiled, with a ConfigError naming the label:
statements of any kind (``import``, assignments, ``def``...), the walrus
operator ``:=``, every name or attribute starting with ``_`` (so no
``().__class__.__bases__``, no ``__import__``), the attributes ``format``,
``format_map`` and ``mro`` and frame and code attributes (``gi_frame``,
``f_globals``...) that reach around that rule, any name outside the namespace
above (``open``, ``exec``, ``eval``, ``compile``, ``getattr``, ``setattr``,
``globals``, ``locals``, ``vars``, ``dir``, ``type``, ``breakpoint``,
``input``... are named as forbidden; other unknown names as unknown), and
expressions longer than 5,000 characters, of more than 2,000 syntax nodes or
nested more than 200 levels deep, a constant pattern RE2 cannot run, and a
constant ``context.env`` name the job may not read. The code is compiled
once; each record only runs the compiled code object.

Bounded when a record is evaluated, failing the record (a RecordError
naming the label) and letting the run go on: the time the record's
expressions take (``IDSYNC_RECORD_TIME_LIMIT_SECONDS``, see
:mod:`idsync.engine.budget`) and the size of what each operation produces
(``IDSYNC_EXPRESSION_MAX_LENGTH``, integers of 4,300 digits, see
:mod:`idsync.engine.bounds`).
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import CodeType
from typing import Any, NoReturn

from idsync.engine import transforms as t
from idsync.engine.bounds import (
    BoundExceeded,
    Guards,
    check_format_spec,
    guard_names,
    max_length,
    rewrite,
)
from idsync.engine.budget import TimeLimitExceeded, time_limit, within
from idsync.engine.context import RunContext
from idsync.engine.patterns import Pattern, PatternError, Replacer, compile_pattern
from idsync.errors import ConfigError, RecordError

MAX_CHARS = 5_000
MAX_NODES = 2_000
MAX_DEPTH = 200
MAX_RANGE = 100_000


class CancelRow(Exception):
    """Raised by ``cancel_row()``: the engine counts the record as skipped.

    It derives from Exception and deliberately not from RecordError (nor any
    IdsyncError): a cancelled row is a decision of the job, not a failure, so
    code that counts ``except RecordError`` as errors must never catch it by
    accident, and the expression's own error handling must let it through.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or "row cancelled by the expression")
        self.reason = reason


# ---------------------------------------------------------------- the namespace


class SourceView(Mapping[str, str | None]):
    """The record as an expression sees it: read-only, and a missing field
    fails the record with the names of similar fields."""

    __slots__ = ("_fields", "_label")

    def __init__(self, fields: Mapping[str, str | None], label: str) -> None:
        self._fields = fields
        self._label = label

    def __getitem__(self, name: str) -> str | None:
        try:
            return self._fields[name]
        except KeyError:
            raise RecordError(f"{self._label}: {_missing_field(name, self._fields)}") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"source({dict(self._fields)!r})"


def _missing_field(name: object, fields: Mapping[str, object]) -> str:
    names = [str(n) for n in fields]
    similar = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    similar += [n for n in names if n.lower() == str(name).lower() and n not in similar]
    if similar:
        hint = "similar: " + ", ".join(repr(n) for n in similar)
    else:
        hint = "fields: " + ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"the source record has no field {name!r} ({hint})"


class EnvView(Mapping[str, str]):
    """``context.env``: the variables the job may read; any other name fails
    the record, naming the variable (``get`` included: never a silent None)."""

    __slots__ = ("_context",)

    def __init__(self, context: RunContext) -> None:
        self._context = context

    def _readable(self, name: object) -> str:
        refusal = self._context.refusal(str(name))
        if refusal is not None:
            raise RecordError(refusal)
        return str(name)

    def __getitem__(self, name: str) -> str:
        key = self._readable(name)
        try:
            return self._context.environ[key]
        except KeyError:
            raise RecordError(f"environment variable {key!r} is not set") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._context.environ.get(self._readable(name), default)

    def __contains__(self, name: object) -> bool:
        return self._context.environ.get(self._readable(name)) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._context.environ)

    def __len__(self) -> int:
        return len(self._context.environ)

    def __repr__(self) -> str:
        return f"env({sorted(self._context.environ)!r})"


@dataclass(frozen=True, slots=True)
class ContextView:
    """The run as an expression sees it (``context.job``, ``context.now``...)."""

    job: str
    now: datetime
    date: str
    time: str
    env: Mapping[str, str]


def _view(context: RunContext) -> ContextView:
    table = context.variables()
    return ContextView(
        job=context.job_name,
        now=context.utc,
        date=table["DATE"],
        time=table["TIME"],
        env=EnvView(context),
    )


def _s(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _n(count: object, helper: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"{helper}() needs a whole number ≥ 0, got {count!r}")
    return count


def cancel_row(reason: str = "") -> NoReturn:
    """Skip this record: it is counted as skipped, not as an error."""
    raise CancelRow(str(reason))


def _lower(value: object) -> str | None:
    return t.lower(_s(value))


def _upper(value: object) -> str | None:
    return t.upper(_s(value))


def _trim(value: object) -> str | None:
    return t.trim(_s(value))


def _left(value: object, count: int) -> str | None:
    return t.left(_s(value), _n(count, "left"))


def _right(value: object, count: int) -> str | None:
    return t.right(_s(value), _n(count, "right"))


def _substring(value: object, start: int, length: int | None = None) -> str | None:
    return t.substring(_s(value), _n(start, "substring"), None if length is None else _n(length, "substring"))


def _replace(value: object, old: str, new: str) -> str | None:
    return t.replace(_s(value), str(old), str(new))


def _join(values: Iterable[object], separator: str = " ") -> str | None:
    """The non-empty values joined with *separator* (None when all are empty)."""
    return t.join_values([_s(v) for v in values], separator)


def _default(value: object, fallback: object) -> object:
    return fallback if value is None or value == "" else value


def _lookup(
    value: object, table: Mapping[str, object], default: object = None, case_sensitive: bool = False
) -> object:
    """``table[value]`` (ignoring case unless *case_sensitive*), else *default*."""
    if value is None:
        return default
    key = str(value)
    if key in table:
        return table[key]
    if not case_sensitive:
        folded = key.casefold()
        for k, v in table.items():
            if str(k).casefold() == folded:
                return v
    return default


@functools.lru_cache(maxsize=256)
def _replacer(pattern: str, repl: str | None) -> Replacer | Pattern:
    """The compiled *pattern* (with the replacement *repl*, unless None); a
    PatternError names the pattern."""
    try:
        compiled = compile_pattern(pattern)
        return compiled if repl is None else compiled.replacer(repl)
    except PatternError as exc:
        raise PatternError(f"the regular expression {pattern!r} cannot be used: {exc}") from None


def _re_sub(pattern: str, repl: str, value: object, limit: int = 1_000_000) -> str | None:
    """*value* with every match of *pattern* replaced by *repl* (``\\1`` for groups)."""
    text = _s(value)
    if text is None:
        return None
    replacer = _replacer(str(pattern), str(repl))
    assert isinstance(replacer, Replacer)
    return replacer(text, limit)


def _re_match(pattern: str, value: object) -> str | None:
    """The first group of the first match anywhere in *value* (the whole match
    when the pattern has no group), or None when nothing matches."""
    text = _s(value)
    if text is None:
        return None
    compiled = _replacer(str(pattern), None)
    assert isinstance(compiled, Pattern)
    return compiled.first(text)


def _split(value: object, separator: str | None = None) -> list[str]:
    """The non-empty parts of *value*, trimmed (split on white space without *separator*)."""
    text = _s(value)
    if not text:
        return []
    return [p.strip() for p in text.split(separator) if p.strip()]


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ValueError(f"range() of {len(r):,} items is over the limit of {MAX_RANGE:,}")
    return r


HELPERS: dict[str, object] = {
    "cancel_row": cancel_row,
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
    "left": _left,
    "right": _right,
    "substring": _substring,
    "replace": _replace,
    "join": _join,
    "default": _default,
    "lookup": _lookup,
    "re_sub": _re_sub,
    "re_match": _re_match,
    "split": _split,
    "range": _range,
    **{
        fn.__name__: fn
        for fn in (
            len, str, int, float, bool, min, max, sum, sorted, reversed,
            any, all, abs, round, list, tuple, dict, set, enumerate, zip,
        )
    },
}
"""Every function an expression may call, by name."""

NAMESPACE_NAMES = frozenset({"source", "context", *HELPERS})

FORBIDDEN_NAMES = frozenset(
    {
        "exec", "eval", "open", "compile", "globals", "locals", "getattr", "setattr",
        "delattr", "hasattr", "vars", "dir", "type", "breakpoint", "input", "help",
        "exit", "quit", "memoryview", "object", "super", "classmethod", "staticmethod",
        "property", "print", "format",
    }
)
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "format", "format_map", "mro",
        "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
        "ag_frame", "ag_code", "ag_await", "f_globals", "f_locals", "f_builtins",
        "f_back", "f_code", "tb_frame", "tb_next", "co_code", "func_globals",
    }
)


# Some C methods import a module on first use (``datetime.strftime`` imports
# ``time``) through the ``__import__`` of the running code's builtins. The
# expression itself cannot name ``__import__``; this one lets those implicit
# imports of standard modules through and refuses any other.
_IMPLICIT_IMPORTS = frozenset({"time", "_strptime", "calendar", "locale", "unicodedata", "encodings"})


def _implicit_import(name: str, *args: Any, **kwargs: Any) -> Any:
    if name.split(".", 1)[0] not in _IMPLICIT_IMPORTS:
        raise ImportError(f"expressions cannot import modules (tried {name!r})")
    return builtins.__import__(name, *args, **kwargs)


_BUILTINS: dict[str, object] = {"__import__": _implicit_import}  # must be a real dict


# ---------------------------------------------------------------- checking and compiling


def _refuse(label: str, why: str) -> ConfigError:
    return ConfigError(f"{label}: {why}")


def _parse(code: str, label: str) -> ast.Expression:
    if not code.strip():
        raise _refuse(label, "the expression is empty")
    if len(code) > MAX_CHARS:
        raise _refuse(label, f"the expression is {len(code):,} characters long; the limit is {MAX_CHARS:,}")
    try:
        return ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        if str(exc.msg).startswith("too many nested"):  # the parser's own limit, of 200 brackets
            raise _refuse(label, _TOO_DEEP) from exc
        if ":=" in code:
            raise _refuse(label, "the walrus operator := is not allowed in expressions") from exc
        try:
            ast.parse(code.strip(), mode="exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
        else:
            raise _refuse(
                label, "must be a single expression, not a statement (no import, assignment or def)"
            ) from exc
        where = f" (line {exc.lineno}, column {exc.offset})" if exc.lineno else ""
        raise _refuse(label, f"not a valid Python expression: {exc.msg}{where}") from exc
    except (RecursionError, MemoryError) as exc:
        # The parser gives up on deep nesting with an empty message: say what it met.
        raise _refuse(label, _TOO_DEEP) from exc
    except ValueError as exc:
        raise _refuse(label, f"the expression cannot be parsed: {exc}") from exc


_TOO_DEEP = f"the expression is too deeply nested (more than {MAX_DEPTH} levels)"


def _depth(tree: ast.AST) -> int:
    """How deeply the syntax nodes of *tree* nest (without recursion: the
    tree may be deeper than Python's recursion allows)."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _constant_text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _check_call(node: ast.Call, label: str, env_names: set[str]) -> None:
    """Constant arguments checked now rather than at each record: the patterns of
    ``re_sub``/``re_match``, the variables of ``context.env.get``."""
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("re_sub", "re_match") and node.args:
        pattern = _constant_text(node.args[0])
        repl = _constant_text(node.args[1]) if func.id == "re_sub" and len(node.args) > 1 else None
        if pattern is not None:
            try:
                compiled = compile_pattern(pattern)
                if repl is not None:
                    compiled.replacer(repl)
            except PatternError as exc:
                raise _refuse(label, f"{func.id}(): the regular expression {pattern!r} cannot be used: {exc}") from None
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "get"
        and _is_context_env(func.value)
        and node.args
        and _constant_text(node.args[0]) is not None
    ):
        env_names.add(str(_constant_text(node.args[0])))


_FOLDED: dict[type[ast.operator], str] = {
    ast.Pow: "pow", ast.Mult: "mul", ast.LShift: "lshift", ast.Add: "add", ast.Sub: "sub"
}


def _constant_int(node: ast.expr, guards: Guards, known: dict[int, int | None]) -> int | None:
    """The value of *node* when it is integer arithmetic on constants (so
    ``10**10**10`` is refused when compiled), computed through the guards;
    None otherwise. *known* keeps the values of the nodes already seen."""
    if id(node) in known:
        return known[id(node)]
    value: int | None = None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant_int(node.operand, guards, known)
        value = None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    elif isinstance(node, ast.BinOp) and type(node.op) in _FOLDED:
        left = _constant_int(node.left, guards, known)
        right = _constant_int(node.right, guards, known)
        if left is not None and right is not None:
            op = _FOLDED[type(node.op)]
            value = left - right if op == "sub" else getattr(guards, op)(left, right)
    known[id(node)] = value
    return value


def _is_context_env(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "env"
        and isinstance(node.value, ast.Name)
        and node.value.id == "context"
    )


def _check(tree: ast.Expression, label: str, env_names: set[str]) -> frozenset[str]:
    """Refuse what the module docstring lists; return the literal field names
    read with ``source["..."]``, and add to *env_names* the literal variable
    names read from ``context.env``."""
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise _refuse(label, f"the expression has {len(nodes):,} syntax nodes; the limit is {MAX_NODES:,}")
    if _depth(tree) > MAX_DEPTH:
        raise _refuse(label, _TOO_DEEP)
    longest = max_length()
    guards = Guards(longest)
    folded: dict[int, int | None] = {}
    for node in nodes:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow | ast.Mult | ast.LShift):
            try:
                _constant_int(node, guards, folded)
            except BoundExceeded as exc:
                raise _refuse(label, str(exc)) from None
    bound: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    fields: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.NamedExpr):
            raise _refuse(label, "the walrus operator := is not allowed in expressions")
        if isinstance(node, ast.Name | ast.arg | ast.Attribute | ast.keyword):
            name = (
                node.id if isinstance(node, ast.Name)
                else node.arg if isinstance(node, ast.arg | ast.keyword)
                else node.attr
            )
            if name and name.startswith("_"):
                raise _refuse(label, f"{name!r} is not allowed: names starting with '_' are blocked")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            raise _refuse(label, f"the attribute {node.attr!r} is not allowed in expressions")
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in FORBIDDEN_NAMES:
                raise _refuse(
                    label, f"{node.id!r} is not allowed in expressions (no file, code or introspection access)"
                )
            if node.id not in NAMESPACE_NAMES and node.id not in bound:
                similar = difflib.get_close_matches(node.id, sorted(NAMESPACE_NAMES), n=3)
                hint = f"; did you mean {', '.join(similar)}?" if similar else ""
                raise _refuse(label, f"unknown name {node.id!r}{hint} (source, context and helpers only)")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "source"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            fields.add(node.slice.value)
        if isinstance(node, ast.Subscript) and _is_context_env(node.value) and _constant_text(node.slice):
            env_names.add(str(_constant_text(node.slice)))
        if isinstance(node, ast.Call):
            _check_call(node, label, env_names)
        if isinstance(node, ast.FormattedValue) and isinstance(node.format_spec, ast.JoinedStr):
            why = check_format_spec(node.format_spec, longest)
            if why is not None:
                raise _refuse(label, why)
    return frozenset(fields)


@dataclass(frozen=True, eq=False)
class Expression:
    """A checked, compiled expression; :meth:`evaluate` runs it for one record."""

    code: str
    label: str
    fields: frozenset[str]
    """Field names the expression reads literally (``source["Mail"]``), for validation."""
    _compiled: CodeType
    _base: dict[str, object]
    """The namespace every record starts from; never handed out, copied per record."""
    env_names: frozenset[str] = frozenset()
    """Environment variables the expression reads literally (``context.env["DEPT"]``)."""
    seconds: float = 5.0
    """The time limit of a record, when this expression is not evaluated within a longer one."""

    def evaluate(self, fields: Mapping[str, str | None], context: RunContext) -> object:
        """The expression's value for the record *fields* in the run *context*.

        Raises CancelRow when the expression calls ``cancel_row()``, and
        RecordError (prefixed with the label) for anything else that goes
        wrong, a time or size limit reached included.
        """
        namespace = self._base.copy()  # a plain dict copies ten times faster than a mapping proxy
        namespace["source"] = SourceView(fields, self.label)
        namespace["context"] = _context_view(context)
        try:
            return within(self.seconds, eval, self._compiled, namespace)
        except CancelRow:
            raise
        except RecordError as exc:
            if exc.message.startswith(self.label):
                raise
            raise RecordError(f"{self.label}: {exc.message}") from exc
        except TimeLimitExceeded:
            raise RecordError(f"{self.label}: {time_limit_message()}") from None
        except (BoundExceeded, PatternError) as exc:
            raise RecordError(f"{self.label}: {exc}") from exc
        except MemoryError as exc:
            raise RecordError(f"{self.label}: the expression ran out of memory") from exc
        except Exception as exc:
            raise RecordError(f"{self.label}: {type(exc).__name__}: {exc}") from exc


def time_limit_message() -> str:
    """What a record that ran out of time is told."""
    return (
        f"the record's expressions took longer than the limit of {time_limit():g} s "
        "(IDSYNC_RECORD_TIME_LIMIT_SECONDS)"
    )


_last_view: tuple[RunContext, ContextView] | None = None


def _context_view(context: RunContext) -> ContextView:
    """The view of *context*, built once per run (a run evaluates many records
    with the same context)."""
    global _last_view
    cached = _last_view
    if cached is not None and cached[0] is context:
        return cached[1]
    view = _view(context)
    _last_view = (context, view)
    return view


def _bounded_helpers(guards: Guards) -> dict[str, object]:
    """The helpers whose results could grow past the limits, bound to them."""

    def replace(value: object, old: str, new: str) -> str | None:
        return guards.replace(_s(value), old, new)  # type: ignore[no-any-return]

    def join(values: Iterable[object], separator: str = " ") -> str | None:
        """The non-empty values joined with *separator* (None when all are empty)."""
        return guards.join(values, str(separator))

    def re_sub(pattern: str, repl: str, value: object) -> str | None:
        return _re_sub(pattern, repl, value, guards.max_length)

    return {"replace": replace, "join": join, "re_sub": re_sub, **guard_names(guards)}


def compile_expression(code: str, label: str) -> Expression:
    """Check and compile *code*; a refused or invalid expression raises
    ConfigError with *label* and the reason."""
    tree = _parse(code, label)
    env_names: set[str] = set()
    fields = _check(tree, label, env_names)
    guards = Guards(max_length())
    try:
        compiled = compile(rewrite(tree), f"<{label}>", "eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _refuse(label, f"the expression cannot be compiled: {exc}") from exc
    base: dict[str, object] = {"__builtins__": _BUILTINS, **HELPERS, **_bounded_helpers(guards)}
    return Expression(
        code, label, fields, compiled, base, frozenset(env_names), time_limit()
    )
