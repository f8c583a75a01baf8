"""LDAP search filters (RFC 4515): parse, evaluate, escape.

Every filter idsync builds from data goes through :func:`escape_filter_value`,
so a value like ``*)(uid=*`` can only ever match itself. :func:`parse_filter`
turns filter text into a small tree of frozen dataclasses; :func:`matches`
evaluates it against attributes the way an LDAP server does.

Evaluation follows the server: each attribute has matching rules (given by a
``rules`` lookup, usually built from a directory schema); without one, values
compare as ``caseIgnoreMatch`` does (case-folded, insignificant spaces
ignored) and ``>=``/``<=`` compare numbers numerically. A filter item on an
attribute the lookup does not know, or that lacks the needed rule, is
*Undefined* (RFC 4511 section 4.5.1.7): it matches nothing, and neither does
its negation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from idsync.domain.dn import fold_value, normalize_dn, parse_dn
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError


@dataclass(frozen=True, slots=True)
class And:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    filter: Filter


@dataclass(frozen=True, slots=True)
class Equality:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Approx:
    """``attr~=value``: evaluated as equality."""

    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Substring:
    attribute: str
    initial: str | None = None
    any: tuple[str, ...] = ()
    final: str | None = None


@dataclass(frozen=True, slots=True)
class Present:
    attribute: str


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Extensible:
    """``attr:rule:=value``: equality with the named (or the attribute's) rule.

    With ``dn_attributes`` (``attr:dn:=value``) the values of the attribute
    in the entry's DN count too (RFC 4511 section 4.5.1.7.7): ``(ou:dn:=people)``
    matches every entry below ``ou=People``. The DN is read as ``entryDN``.
    """

    attribute: str
    value: str
    rule: str | None = None
    dn_attributes: bool = False


Filter = And | Or | Not | Equality | Approx | Substring | Present | GreaterOrEqual | LessOrEqual | Extensible

# ---------------------------------------------------------------- escaping and formatting

_FILTER_ESCAPES = {"*": "\\2a", "(": "\\28", ")": "\\29", "\\": "\\5c", "\x00": "\\00"}
_NEEDS_ESCAPE = re.compile(r"[*()\\\x00]")


def escape_filter_value(value: str) -> str:
    """*value* with ``* ( ) \\`` and NUL escaped, safe inside any filter item."""
    return _NEEDS_ESCAPE.sub(lambda m: _FILTER_ESCAPES[m.group()], value)


def format_filter(flt: Filter) -> str:
    """The RFC 4515 text of *flt* (values escaped)."""
    esc = escape_filter_value
    match flt:
        case And(filters):
            return "(&" + "".join(format_filter(f) for f in filters) + ")"
        case Or(filters):
            return "(|" + "".join(format_filter(f) for f in filters) + ")"
        case Not(inner):
            return f"(!{format_filter(inner)})"
        case Equality(a, v):
            return f"({a}={esc(v)})"
        case Approx(a, v):
            return f"({a}~={esc(v)})"
        case GreaterOrEqual(a, v):
            return f"({a}>={esc(v)})"
        case LessOrEqual(a, v):
            return f"({a}<={esc(v)})"
        case Present(a):
            return f"({a}=*)"
        case Substring(a, initial, middle, final):
            body = "*".join([esc(initial or ""), *(esc(p) for p in middle), esc(final or "")])
            return f"({a}={body})"
        case Extensible(a, v, rule, dn):
            return f"({a}{':dn' if dn else ''}{':' + rule if rule else ''}:={esc(v)})"
    raise TypeError(f"not a filter: {flt!r}")


def filter_attributes(flt: Filter) -> set[str]:
    """The attribute names *flt* tests, lower-cased."""
    match flt:
        case And(filters) | Or(filters):
            return set().union(*(filter_attributes(f) for f in filters))
        case Not(inner):
            return filter_attributes(inner)
        case Extensible(attribute, dn_attributes=True):
            return {attribute.lower(), ENTRY_DN}
        case _:
            return {flt.attribute.lower()}


# ---------------------------------------------------------------- parsing

_ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*")
_RULE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
_HEX = frozenset("0123456789abcdefABCDEF")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, why: str, pos: int | None = None) -> ConfigError:
        at = self.pos if pos is None else pos
        return ConfigError(f"invalid LDAP filter {self.text!r} at position {at}: {why}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def expect(self, ch: str) -> None:
        if self.pos >= len(self.text):
            raise self.error(f"expected {ch!r}, found the end")
        if self.text[self.pos] != ch:
            raise self.error(f"expected {ch!r}, found {self.text[self.pos]!r}")
        self.pos += 1

    def parse(self) -> Filter:
        self.skip_spaces()
        if self.pos >= len(self.text):
            raise self.error("empty filter")
        flt = self.filter() if self.text[self.pos] == "(" else self.item(bare=True)
        self.skip_spaces()
        if self.pos < len(self.text):
            raise self.error("unexpected text after the filter")
        return flt

    def filter(self) -> Filter:
        self.expect("(")
        self.skip_spaces()
        ch = self.text[self.pos : self.pos + 1]
        flt: Filter
        if ch in ("&", "|"):
            self.pos += 1
            parts: list[Filter] = []
            self.skip_spaces()
            while self.text[self.pos : self.pos + 1] == "(":
                parts.append(self.filter())
                self.skip_spaces()
            flt = And(tuple(parts)) if ch == "&" else Or(tuple(parts))
        elif ch == "!":
            self.pos += 1
            self.skip_spaces()
            if self.text[self.pos : self.pos + 1] != "(":
                raise self.error("'!' must be followed by a parenthesized filter")
            flt = Not(self.filter())
            self.skip_spaces()
        else:
            flt = self.item(bare=False)
        self.expect(")")
        return flt

    def item(self, *, bare: bool) -> Filter:
        text, start = self.text, self.pos
        while self.pos < len(text) and text[self.pos] not in "=~<>:()":
            self.pos += 1
        attribute = text[start : self.pos]
        if attribute and not _ATTRIBUTE.fullmatch(attribute):
            raise self.error(f"bad attribute description {attribute!r}", start)
        if text[self.pos : self.pos + 1] == ":":
            return self.extensible(attribute, bare)
        if not attribute:
            raise self.error("missing attribute description")
        op = text[self.pos : self.pos + 2]
        if op in ("~=", ">=", "<="):
            self.pos += 2
        elif op[:1] == "=":
            op = "="
            self.pos += 1
        else:
            raise self.error("expected '=', '~=', '>=' or '<='")
        pieces = self.value(bare)
        if op == "=":
            return _equality_or_substring(attribute, pieces)
        if len(pieces) > 1:
            raise self.error("'*' is only allowed with '=' (escape it as \\2a)")
        if op == "~=":
            return Approx(attribute, pieces[0])
        return GreaterOrEqual(attribute, pieces[0]) if op == ">=" else LessOrEqual(attribute, pieces[0])

    def extensible(self, attribute: str, bare: bool) -> Filter:
        rule: str | None = None
        dn = False
        while self.text[self.pos : self.pos + 2] != ":=":
            self.expect(":")
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in ":=()":
                self.pos += 1
            word = self.text[start : self.pos]
            if word.lower() == "dn" and not dn and rule is None:
                dn = True
                continue
            if rule is not None or not _RULE.fullmatch(word):
                raise self.error(f"bad matching rule {word!r}", start)
            rule = word
        if not attribute:
            raise self.error("extensible match without an attribute is not supported")
        self.pos += 2
        pieces = self.value(bare)
        if len(pieces) > 1:
            raise self.error("'*' is not allowed in an extensible match (escape it as \\2a)")
        return Extensible(attribute, pieces[0], rule, dn)

    def value(self, bare: bool) -> list[str]:
        """The assertion value, split at unescaped '*', each piece unescaped."""
        text = self.text
        pieces: list[str] = []
        buf = bytearray()
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == ")" and not bare:
                break
            if ch in "()":
                raise self.error(f"unescaped {ch!r} in a value (escape it as {escape_filter_value(ch)})")
            if ch == "*":
                pieces.append(self.decode(buf))
                buf = bytearray()
            elif ch == "\\":
                pair = text[self.pos + 1 : self.pos + 3]
                if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                    buf.append(int(pair, 16))
                    self.pos += 2
                elif pair[:1] and pair[0] in "*()\\":
                    buf.extend(pair[0].encode())
                    self.pos += 1
                else:
                    raise self.error("'\\' must be followed by two hex digits")
            else:
                buf.extend(ch.encode("utf-8"))
            self.pos += 1
        pieces.append(self.decode(buf))
        return pieces

    def decode(self, buf: bytearray) -> str:
        try:
            return buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error("escaped bytes are not valid UTF-8") from exc


def _equality_or_substring(attribute: str, pieces: list[str]) -> Filter:
    if len(pieces) == 1:
        return Equality(attribute, pieces[0])
    if len(pieces) == 2 and pieces == ["", ""]:
        return Present(attribute)
    middle = tuple(p for p in pieces[1:-1] if p)
    return Substring(attribute, pieces[0] or None, middle, pieces[-1] or None)


@lru_cache(maxsize=1024)
def parse_filter(text: str) -> Filter:
    """Parse RFC 4515 filter text; outer parentheses may be left out (``uid=x``).

    Raises ConfigError naming the position of the first problem.
    """
    return _Parser(text).parse()


# ---------------------------------------------------------------- matching rules


@dataclass(frozen=True, slots=True)
class AttributeRules:
    """How a filter item on one attribute is evaluated.

    ``names`` are the attributes whose values are tested (the type and its
    subtypes, as the values lookup spells them); a rule of None makes items
    needing it Undefined. Rule names are those of RFC 4517 (``caseIgnoreMatch``…).
    """

    names: tuple[str, ...]
    equality: str | None = "caseIgnoreMatch"
    ordering: str | None = None
    substr: str | None = None


RulesLookup = Callable[[str], AttributeRules | None]
ValuesOf = Callable[[str], Sequence[str]]
Compiled = Callable[[ValuesOf], bool | None]

_INTEGER = re.compile(r"-?[1-9][0-9]*|0")
_LOOSE_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*")
_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)?(\d\d)?(?:[.,](\d+))?(Z|[+-]\d\d(?:\d\d)?)")


def _exact(value: str) -> str:
    return " ".join(value.split())


def _integer(value: str) -> int | None:
    return int(value) if _INTEGER.fullmatch(value) else None


def _dn(value: str) -> str | None:
    try:
        return normalize_dn(value)
    except ConfigError:
        return None


def _time(value: str) -> str | None:
    m = _TIME.fullmatch(value)
    if not m:
        return None
    year, mon, day, hour, minute, sec, frac, zone = m.groups()
    try:
        at = datetime(int(year), int(mon), int(day), int(hour), int(minute or 0), int(sec or 0), tzinfo=UTC)
    except ValueError:
        return None
    if zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        at = at - offset if zone[0] == "+" else at + offset
    return at.strftime("%Y%m%d%H%M%S") + "." + (frac or "0").ljust(6, "0")[:6]


def _telephone(value: str) -> str:
    return fold_value(value.replace("-", "").replace(" ", ""))


def _numeric(value: str) -> str:
    return value.replace(" ", "")


# Lower-cased rule name -> value preparation; None from a preparer means "not a valid value".
_PREPARE: dict[str, Callable[[str], object | None]] = {
    **dict.fromkeys(
        ("caseignorematch", "caseignoreia5match", "caseignorelistmatch", "objectidentifiermatch",
         "uuidmatch", "caseignoreorderingmatch", "uuidorderingmatch", "csnmatch", "csnorderingmatch",
         "objectidentifierfirstcomponentmatch", "caseignoresubstringsmatch",
         "caseignoreia5substringsmatch", "caseignorelistsubstringsmatch"),
        fold_value,
    ),
    **dict.fromkeys(
        ("caseexactmatch", "caseexactia5match", "caseexactorderingmatch",
         "caseexactsubstringsmatch", "caseexactia5substringsmatch"),
        _exact,
    ),
    **dict.fromkeys(("integermatch", "integerorderingmatch"), _integer),
    **dict.fromkeys(("distinguishednamematch", "uniquemembermatch"), _dn),
    **dict.fromkeys(("generalizedtimematch", "generalizedtimeorderingmatch"), _time),
    **dict.fromkeys(("telephonenumbermatch", "telephonenumbersubstringsmatch"), _telephone),
    **dict.fromkeys(("numericstringmatch", "numericstringorderingmatch", "numericstringsubstringsmatch"), _numeric),
}


def _identity(value: str) -> str:
    return value


def value_key(rule: str | None, value: str) -> object | None:
    """*value* prepared for comparison under equality *rule* (None: not valid for the rule).

    Two values are equal under the rule when their keys are equal; rules
    without a known preparation compare values exactly.
    """
    return _PREPARE.get((rule or "").lower(), _identity)(value)


def _default_rules(name: str) -> AttributeRules:
    return AttributeRules((name,), "caseIgnoreMatch", "", "caseIgnoreSubstringsMatch")


# ---------------------------------------------------------------- evaluation


def _undefined(_values_of: ValuesOf) -> bool | None:
    return None


def _compile_equality(rules: AttributeRules, assertion: str, rule: str | None) -> Compiled:
    if rule is None:
        return _undefined
    prepare = _PREPARE.get(rule.lower(), _identity)
    wanted = prepare(assertion)
    if wanted is None:
        return _undefined
    names = rules.names

    def test(values_of: ValuesOf) -> bool:
        return any(prepare(v) == wanted for n in names for v in values_of(n))

    return test


ENTRY_DN = "entrydn"
"""The attribute an ``attr:dn:=value`` item reads the entry's DN from (RFC 5020 ``entryDN``)."""


def _with_dn_values(
    test: Compiled, rules: AttributeRules, assertion: str, rule: str | None, lookup: RulesLookup
) -> Compiled:
    """*test*, or the assertion matching a value of the attribute (or a
    subtype) among the AVAs of the entry's DN."""
    prepare = _PREPARE.get((rule or "").lower(), _identity)
    wanted = prepare(assertion) if rule is not None else None
    if wanted is None:
        return test
    names = {n.lower() for n in rules.names}

    def in_dn(dn: str) -> bool:
        try:
            rdns = parse_dn(dn)
        except ConfigError:
            return False
        for rdn in rdns:
            for type_, value in rdn:
                info = lookup(type_)
                if info is not None and info.names[0].lower() in names and prepare(value) == wanted:
                    return True
        return False

    def either(values_of: ValuesOf) -> bool | None:
        found = test(values_of)
        if found is True or any(in_dn(dn) for dn in values_of(ENTRY_DN)):
            return True
        return found

    return either


def _compare(key: Any, bound: Any, greater: bool) -> bool:
    return bool(key >= bound) if greater else bool(key <= bound)


def _compile_auto_order(names: tuple[str, ...], assertion: str, greater: bool) -> Compiled:
    """Default ordering: numerically when both sides are whole numbers, else case-folded."""
    number = int(assertion) if _LOOSE_INTEGER.fullmatch(assertion) else None
    folded = fold_value(assertion)

    def test(values_of: ValuesOf) -> bool:
        for n in names:
            for v in values_of(n):
                if number is not None and _LOOSE_INTEGER.fullmatch(v):
                    if _compare(int(v), number, greater):
                        return True
                elif _compare(fold_value(v), folded, greater):
                    return True
        return False

    return test


def _compile_order(rules: AttributeRules, assertion: str, greater: bool) -> Compiled:
    if rules.ordering is None:
        return _undefined
    if rules.ordering == "":
        return _compile_auto_order(rules.names, assertion, greater)
    prepare = _PREPARE.get(rules.ordering.lower(), _identity)
    bound = prepare(assertion)
    if bound is None:
        return _undefined
    names = rules.names

    def test(values_of: ValuesOf) -> bool:
        for n in names:
            for v in values_of(n):
                key = prepare(v)
                if key is not None and _compare(key, bound, greater):
                    return True
        return False

    return test


def _fold_piece(piece: str) -> str:
    """A substring piece folded like its value, but keeping edge spaces (they are significant)."""
    return _SPACES.sub(" ", fold_value(f"x{piece}x"))[1:-1]


def _exact_piece(piece: str) -> str:
    return _SPACES.sub(" ", piece)


_SPACES = re.compile(r"\s+")
_PIECES: dict[Callable[[str], object | None], Callable[[str], object | None]] = {
    fold_value: _fold_piece,
    _exact: _exact_piece,
}


def _compile_substring(rules: AttributeRules, flt: Substring) -> Compiled:
    if rules.substr is None:
        return _undefined
    prepare = _PREPARE.get(rules.substr.lower(), _identity)
    piece = _PIECES.get(prepare, prepare)
    initial = str(piece(flt.initial)) if flt.initial else ""
    final = str(piece(flt.final)) if flt.final else ""
    middle = [str(piece(p)) for p in flt.any]
    names = rules.names

    def one(value: str) -> bool:
        v = str(prepare(value))
        if not v.startswith(initial):
            return False
        pos = len(initial)
        for p in middle:
            found = v.find(p, pos)
            if found < 0:
                return False
            pos = found + len(p)
        return len(v) - pos >= len(final) and v.endswith(final)

    def test(values_of: ValuesOf) -> bool:
        return any(one(v) for n in names for v in values_of(n))

    return test


def compile_filter(flt: Filter, rules: RulesLookup | None = None) -> Compiled:
    """A function evaluating *flt* over a values lookup: True, False or None (Undefined).

    Compile once, call per entry: assertion values are prepared only once.
    """
    lookup = rules or _default_rules
    match flt:
        case And(filters):
            parts = [compile_filter(f, rules) for f in filters]

            def all_of(values_of: ValuesOf) -> bool | None:
                result: bool | None = True
                for part in parts:
                    r = part(values_of)
                    if r is False:
                        return False
                    if r is None:
                        result = None
                return result

            return all_of
        case Or(filters):
            parts = [compile_filter(f, rules) for f in filters]

            def any_of(values_of: ValuesOf) -> bool | None:
                result: bool | None = False
                for part in parts:
                    r = part(values_of)
                    if r is True:
                        return True
                    if r is None:
                        result = None
                return result

            return any_of
        case Not(inner):
            part = compile_filter(inner, rules)

            def negate(values_of: ValuesOf) -> bool | None:
                r = part(values_of)
                return None if r is None else not r

            return negate
        case Present(attribute):
            info = lookup(attribute)
            if info is None:
                return _undefined
            names = info.names
            return lambda values_of: any(values_of(n) for n in names)
        case Equality(attribute, value) | Approx(attribute, value):
            info = lookup(attribute)
            return _undefined if info is None else _compile_equality(info, value, info.equality)
        case Extensible(attribute, value, rule, dn_attributes):
            info = lookup(attribute)
            if info is None:
                return _undefined
            test = _compile_equality(info, value, rule or info.equality)
            return _with_dn_values(test, info, value, rule or info.equality, lookup) if dn_attributes else test
        case GreaterOrEqual(attribute, value) | LessOrEqual(attribute, value):
            info = lookup(attribute)
            greater = isinstance(flt, GreaterOrEqual)
            return _undefined if info is None else _compile_order(info, value, greater)
        case Substring(attribute):
            info = lookup(attribute)
            return _undefined if info is None else _compile_substring(info, flt)
    raise TypeError(f"not a filter: {flt!r}")


@lru_cache(maxsize=256)
def _compiled_default(flt: Filter) -> Compiled:
    return compile_filter(flt)


def matches(flt: Filter, attrs: Attrs, rules: RulesLookup | None = None) -> bool:
    """True when *attrs* satisfy *flt* (Undefined counts as no match)."""
    compiled = _compiled_default(flt) if rules is None else compile_filter(flt, rules)
    return compiled(attrs.get_values) is True
