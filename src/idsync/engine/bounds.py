"""Size bounds of expressions: operations that check what they would produce.

A time limit (:mod:`idsync.engine.budget`) stops an expression between two
steps of Python code, but not inside one long step done in C: ``10**10**10``,
``[0]*10**9`` or ``"x".ljust(10**9)`` are each one step that runs, or takes
memory, for ever. So every operation that can make a value much larger than
its operands is rewritten, when the expression is compiled, into a call that
first works out the size of the result and refuses one over the limits:

* ``**``, ``*``, ``<<`` and ``+`` (integers up to :data:`MAX_DIGITS` digits;
  texts, lists, tuples... up to ``IDSYNC_EXPRESSION_MAX_LENGTH`` characters or
  items), ``%`` on a text (its widths and the texts it inserts);
* the methods that take a size (``ljust rjust center zfill expandtabs
  replace translate join extend to_bytes``), whatever object they belong to;
* list, set and dict comprehensions, ``[*a, *b]`` and the helpers that build a
  collection from an iterator (``list tuple set dict sorted sum str``);
* f-strings: a constant format spec is checked when the expression is
  compiled; one computed at run time is refused then.

Each refusal is a :class:`BoundExceeded`, which fails the record (the caller
names the mapping). The calls cost a few hundred nanoseconds per operation;
expressions that use none of these operations pay nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any

from idsync import settings
from idsync.errors import ConfigError

MAX_DIGITS = 4_300
"""The largest integer an expression may compute, in decimal digits (Python's
own limit for turning an integer into text)."""

MAX_INT_BITS = 14_284
""":data:`MAX_DIGITS` in bits: ``ceil(4300 * log2(10))``."""

SIZED_METHODS = frozenset(
    {"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "translate", "join", "extend", "to_bytes"}
)
"""Methods whose result size depends on an argument: called through a check."""


class BoundExceeded(ValueError):
    """An operation of an expression would produce a value over a size limit."""


def max_length() -> int:
    """``IDSYNC_EXPRESSION_MAX_LENGTH``, checked."""
    value = settings.get_int("expression_max_length")
    if value < 1:
        raise ConfigError(f"IDSYNC_EXPRESSION_MAX_LENGTH must be at least 1 (got {value})")
    return value


_SIZED_TYPES = (str, bytes, bytearray, list, tuple, set, frozenset, dict)


def _size(value: object) -> int | None:
    return len(value) if isinstance(value, _SIZED_TYPES) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int)


_BUILDERS: tuple[object, ...] = (list, tuple, set, frozenset, dict, sorted)

_FORMAT_NUMBER = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_SPEC_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Guards:
    """The checked operations, bound to the limits of one compiled expression."""

    max_length: int
    max_bits: int = MAX_INT_BITS

    def over(self, what: str, size: int, unit: str = "characters or items") -> BoundExceeded:
        return BoundExceeded(f"{what} would make {size:,} {unit}, over the limit of {self.max_length:,}")

    def too_big(self, what: str) -> BoundExceeded:
        return BoundExceeded(f"{what} would make an integer over {MAX_DIGITS:,} digits")

    def length(self, what: str, size: int) -> None:
        if size > self.max_length:
            raise self.over(what, size)

    # -------------------------------------------------------- operators

    def pow(self, a: Any, b: Any) -> Any:
        if _is_int(a) and _is_int(b) and b > 0:
            bits = abs(a).bit_length()
            if bits > 1 and (bits - 1) * b >= self.max_bits:
                raise self.too_big("**")
        return a**b

    def mul(self, a: Any, b: Any) -> Any:
        if _is_int(a):
            if _is_int(b):
                if a.bit_length() + b.bit_length() > self.max_bits + 1:
                    raise self.too_big("*")
            else:
                n = _size(b)
                if n is not None and a > 0 and n * a > self.max_length:
                    raise self.over("*", n * a)
        elif _is_int(b):
            n = _size(a)
            if n is not None and b > 0 and n * b > self.max_length:
                raise self.over("*", n * b)
        return a * b

    def lshift(self, a: Any, b: Any) -> Any:
        if _is_int(a) and _is_int(b) and b > 0 and a.bit_length() + b > self.max_bits:
            raise self.too_big("<<")
        return a << b

    def add(self, a: Any, b: Any) -> Any:
        n, m = _size(a), _size(b)
        if n is not None and m is not None and n + m > self.max_length:
            raise self.over("+", n + m)
        return a + b

    def mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, str | bytes):
            self._format_args(a, b)
        return a % b

    def _format_args(self, fmt: str | bytes, args: Any) -> None:
        text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
        total = len(text)
        for m in _FORMAT_NUMBER.finditer(text):
            for number in m.groups():
                if number == "*":
                    raise BoundExceeded("a width or precision taken from the arguments (%*) is not supported")
                if number is not None:
                    total += int(number) if len(number) < 12 else self.max_length + 1
        values = args.values() if isinstance(args, dict) else args if isinstance(args, tuple) else (args,)
        for value in values:
            total += self.text_size(value)
        self.length("%", total)

    # -------------------------------------------------------- building collections

    def bounded(self, what: str, iterable: Iterable[Any]) -> Iterable[Any]:
        """*iterable* itself when it has a size (it exists already), else its
        items as a list: at most the limit of them."""
        if isinstance(iterable, Sized):
            return iterable
        items = list(islice(iterable, self.max_length + 1))
        if len(items) > self.max_length:
            raise self.over(what, len(items), "items or more")
        return items

    def collect(self, kind: Callable[[Iterable[Any]], Any], items: Iterable[Any]) -> Any:
        """A comprehension: *kind* (list, set or dict) of at most the limit of items."""
        bounded = self.bounded("a comprehension", items)
        return bounded if kind is list and isinstance(bounded, list) else kind(bounded)

    def display(self, kind: Callable[[Iterable[Any]], Any], *parts: Iterable[Any]) -> Any:
        """``[a, *b, c]``: the parts (one-item tuples and starred iterables) joined."""
        joined: list[Any] = []
        for part in parts:
            items = self.bounded("*", part)
            self.length("*", len(joined) + len(items))  # type: ignore[arg-type]
            joined.extend(items)
        return kind(joined)

    def build(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call of *fn* by name: ``str`` of a value within the limit, and
        ``list tuple set dict sorted`` of at most the limit of items from an
        iterator; any other function (a name bound in a lambda) as it is."""
        if fn is str and len(args) == 1 and not kwargs:
            return self.to_text(args[0])
        if fn is sum:
            return self.total(*args, **kwargs)
        if args and fn in _BUILDERS:
            name = getattr(fn, "__name__", "collection")
            args = (self.bounded(f"{name}()", args[0]), *args[1:])
        return fn(*args, **kwargs)

    def replace(self, value: Any, old: Any, new: Any) -> Any:
        """What the ``replace`` helper does to a text, within the limit."""
        return value if value is None else self.method(str(value), "replace")(str(old), str(new))

    def join(self, values: Iterable[Any], separator: str) -> str | None:
        """What the ``join`` helper does (the non-empty values), within the limit."""
        parts = [v if v is None or isinstance(v, str) else str(v) for v in self.bounded("join()", values)]
        kept = [p for p in parts if p]
        return self.method(separator, "join")(kept) if kept else None

    def text(self, *parts: str) -> str:
        """An f-string's pieces, joined once their total is within the limit."""
        self.length("an f-string", sum(len(p) for p in parts))
        return "".join(parts)

    def total(self, iterable: Iterable[Any], /, start: Any = 0) -> Any:
        if isinstance(start, int | float | complex):
            return sum(iterable, start)
        total = start
        for item in iterable:
            total = self.add(total, item)
        return total

    def to_text(self, value: object = "", *args: Any) -> str:
        if args:
            return str(value, *args)
        self.text_size(value)
        return str(value)

    def text_size(self, value: object) -> int:
        """An upper bound of ``len(str(value))``; BoundExceeded once over the limit."""
        limit = self.max_length
        seen: dict[int, int] = {}

        def size(obj: object, depth: int) -> int:
            if isinstance(obj, str):
                if not depth:
                    return len(obj)
                return len(obj) + 2 if obj.isprintable() else len(obj) * 10 + 2
            if isinstance(obj, bytes | bytearray):
                return len(obj) * 4 + 14
            if isinstance(obj, bool) or obj is None:
                return 5
            if isinstance(obj, int):
                return obj.bit_length() // 3 + 2
            if isinstance(obj, float | complex | date | datetime | time | timedelta | range):
                return 64
            if not isinstance(obj, list | tuple | set | frozenset | dict):
                return len(repr(obj))
            known = seen.get(id(obj))
            if known is not None:
                return known
            seen[id(obj)] = 8  # a container inside itself prints as [...]
            total = 2
            items = obj.items() if isinstance(obj, dict) else obj
            for item in items:
                total += size(item, depth + 1) + 2
                if total > limit:
                    raise self.over("turning a value into text", total)
            seen[id(obj)] = total
            return total

        total = size(value, 0)
        self.length("turning a value into text", total)
        return total

    def formatted(self, value: Any) -> Any:
        """An f-string's value, once its text is known to be within the limit."""
        if isinstance(value, list | tuple | set | frozenset | dict):
            self.text_size(value)
        return value

    # -------------------------------------------------------- methods that take a size

    def method(self, obj: Any, name: str) -> Callable[..., Any]:
        """``obj.name``, checking its arguments when called (also as ``str.join(sep, items)``)."""
        fn = getattr(obj, name)
        if not callable(fn):
            return fn  # type: ignore[no-any-return]
        unbound = isinstance(obj, type)

        def call(*args: Any, **kwargs: Any) -> Any:
            if unbound:
                if not args:
                    return fn(*args, **kwargs)
                target, rest = args[0], args[1:]
            else:
                target, rest = obj, args
            rest = self._check_method(name, target, rest, kwargs)
            return fn(target, *rest, **kwargs) if unbound else fn(*rest, **kwargs)

        return call

    def _check_method(self, name: str, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        what = f".{name}()"
        n = _size(obj)
        if name in ("ljust", "rjust", "center", "zfill") and args and _is_int(args[0]):
            self.length(what, args[0])
        elif name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if _is_int(length):
                self.length(what, length)
        elif n is None:
            return args
        elif name == "expandtabs" and isinstance(obj, str | bytes):
            tab = args[0] if args else kwargs.get("tabsize", 8)
            if _is_int(tab) and tab > 1:
                tabs = obj.count("\t" if isinstance(obj, str) else b"\t")  # type: ignore[arg-type]
                self.length(what, n + tabs * tab)
        elif name == "replace" and isinstance(obj, str | bytes) and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str | bytes) and isinstance(new, str | bytes) and len(new) > len(old):
                hits = obj.count(old) if old else n + 1  # type: ignore[arg-type]
                if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
                    hits = min(hits, args[2])
                self.length(what, n + hits * (len(new) - len(old)))
        elif name == "translate" and isinstance(obj, str) and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            self.length(what, n * max(longest, 1))
        elif name == "join" and isinstance(obj, str | bytes) and args:
            items = list(self.bounded(what, args[0]))
            total = len(obj) * max(len(items) - 1, 0)
            for item in items:
                total += _size(item) or 0
                self.length(what, total)
            return (items, *args[1:])
        elif name == "extend" and isinstance(obj, list) and args:
            extra = self.bounded(what, args[0])
            self.length(what, n + len(extra))  # type: ignore[arg-type]
            return (extra, *args[1:])
        return args


# ---------------------------------------------------------------- the rewrite

BUILDER_NAMES = frozenset({"str", "list", "tuple", "set", "dict", "sorted", "sum"})
"""Helpers whose direct calls go through :meth:`Guards.build`."""

GUARD = "_bounds"
"""The name the rewritten code calls the guards by (names starting with _ are
refused in what people write, so it cannot clash)."""

_OPERATORS: dict[type[ast.operator], str] = {
    ast.Pow: "pow", ast.Mult: "mul", ast.LShift: "lshift", ast.Add: "add", ast.Mod: "mod",
}
_COMPREHENSIONS: dict[type[ast.expr], str] = {ast.ListComp: "list", ast.SetComp: "set"}


def _guard(method: str, node: ast.AST) -> ast.Attribute:
    return ast.copy_location(
        ast.Attribute(value=ast.Name(id=GUARD, ctx=ast.Load()), attr=method, ctx=ast.Load()), node
    )


def _call(method: str, args: list[ast.expr], node: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=_guard(method, node), args=args, keywords=[]), node)


def check_format_spec(spec: ast.JoinedStr, max_len: int) -> str | None:
    """Why the f-string format spec *spec* is refused, or None."""
    if not all(isinstance(v, ast.Constant) for v in spec.values):
        return "a format spec computed when the expression runs (f'{x:{width}}') is not supported"
    text = "".join(str(v.value) for v in spec.values if isinstance(v, ast.Constant))
    for number in _SPEC_NUMBER.findall(text):
        if len(number) > 12 or int(number) > max_len:
            return f"the format spec {text!r} asks for {number} characters, over the limit of {max_len:,}"
    return None


class _Rewrite(ast.NodeTransformer):
    """Routes the operations listed in the module docstring through the guards."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        method = _OPERATORS.get(type(node.op))
        if method is None:
            return node
        return _call(method, [node.left, node.right], node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if node.attr not in SIZED_METHODS or not isinstance(node.ctx, ast.Load):
            return node
        return _call("method", [node.value, ast.Constant(node.attr)], node)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp, kind: str) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node, ast.DictComp):
            element: ast.expr = ast.Tuple(elts=[node.key, node.value], ctx=ast.Load())
        else:
            element = node.elt
        generator = ast.copy_location(ast.GeneratorExp(elt=element, generators=node.generators), node)
        builtin = ast.copy_location(ast.Name(id=kind, ctx=ast.Load()), node)
        return _call("collect", [builtin, generator], node)

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return self._comprehension(node, "_list")

    def visit_SetComp(self, node: ast.SetComp) -> ast.expr:
        return self._comprehension(node, "_set")

    def visit_DictComp(self, node: ast.DictComp) -> ast.expr:
        return self._comprehension(node, "_dict")

    def _display(self, node: ast.List | ast.Tuple | ast.Set, kind: str) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node, ast.List | ast.Tuple) and not isinstance(node.ctx, ast.Load):
            return node
        if not any(isinstance(e, ast.Starred) for e in node.elts):
            return node
        parts: list[ast.expr] = [
            e.value if isinstance(e, ast.Starred) else ast.Tuple(elts=[e], ctx=ast.Load()) for e in node.elts
        ]
        builtin = ast.copy_location(ast.Name(id=kind, ctx=ast.Load()), node)
        return _call("display", [builtin, *parts], node)

    def visit_List(self, node: ast.List) -> ast.expr:
        return self._display(node, "_list")

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self._display(node, "_tuple")

    def visit_Set(self, node: ast.Set) -> ast.expr:
        return self._display(node, "_set")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        self.generic_visit(node)
        if not any(isinstance(v, ast.FormattedValue) for v in node.values):
            return node
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                value.value = _call("formatted", [value.value], value)
                parts.append(ast.copy_location(ast.JoinedStr(values=[value]), value))
            else:
                parts.append(value)
        return _call("text", parts, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in BUILDER_NAMES:
            return ast.copy_location(
                ast.Call(func=_guard("build", node), args=[node.func, *node.args], keywords=node.keywords), node
            )
        return node


def rewrite(tree: ast.Expression) -> ast.Expression:
    """*tree* with its size-changing operations routed through the guards."""
    rewritten: ast.Expression = ast.fix_missing_locations(_Rewrite().visit(tree))
    return rewritten


def guard_names(guards: Guards) -> dict[str, object]:
    """What the rewritten code needs in its namespace besides the helpers."""
    return {GUARD: guards, "_list": list, "_set": set, "_dict": dict, "_tuple": tuple}
