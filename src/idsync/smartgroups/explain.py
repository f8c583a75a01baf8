"""Why an entry is, or is not, a member of a smart group.

Each rule of the group is evaluated on the one entry with the filter code
the embedded directory uses (:mod:`idsync.domain.filters`): the exclude
list, the include list, each query (its base and scope, then its filter;
for a filter that fails, the first term that fails and the entry's values
for it), and the join (the entry's value and whether the source has it).
The verdict follows the membership rule: exclude wins, then include, then
any query or the join.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from idsync.domain.dn import fold_value, is_within, normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import (
    ENTRY_DN,
    And,
    Filter,
    Not,
    Or,
    RulesLookup,
    ValuesOf,
    compile_filter,
    format_filter,
    parse_filter,
)

MAX_VALUES_SHOWN = 5


@dataclass(frozen=True)
class QueryRule:
    base: str
    scope: Scope
    filter: str


@dataclass(frozen=True)
class JoinRule:
    """The join of a group with the values its source's column holds (folded, as caseIgnoreMatch compares)."""

    source: str
    column: str
    attribute: str
    values: Collection[str]


@dataclass(frozen=True)
class Reason:
    """One rule's verdict on the entry: *kind* is exclude, include, query, join or entry."""

    kind: str
    matched: bool
    text: str


@dataclass(frozen=True)
class Explanation:
    dn: str
    member: bool
    reasons: list[Reason] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The deciding reason, as one line."""
        deciding = next((r for r in self.reasons if r.matched and r.kind == "exclude"), None) or next(
            (r for r in self.reasons if r.matched and r.kind != "entry"), None
        )
        verdict = "is a member" if self.member else "is not a member"
        if deciding is not None:
            return f"{self.dn} {verdict}: {deciding.text}"
        return f"{self.dn} {verdict}: no rule includes it"


def explain(
    dn: str,
    attrs: Attrs | None,
    *,
    queries: Sequence[QueryRule],
    include: Collection[str],
    exclude: Collection[str],
    join: JoinRule | None = None,
    rules: RulesLookup | None = None,
    directory_says: Sequence[bool | None] | None = None,
) -> Explanation:
    """Why *dn* (with *attrs*; None when the entry does not exist) is or is not a member.

    *directory_says* (one per query, None where not asked) is whether the
    directory itself returns the entry for each query: it decides, as it
    decides an update, and a filter evaluated here with other matching rules
    than the directory's schema is said to differ rather than contradict it."""
    key = normalize_dn(dn)
    reasons: list[Reason] = []
    excluded = key in {normalize_dn(d) for d in exclude}
    included = key in {normalize_dn(d) for d in include}
    if excluded:
        reasons.append(Reason("exclude", True, "it is on the exclude list (exclude wins over everything)"))
    if included:
        reasons.append(Reason("include", True, "it is on the include list (include wins over the queries)"))
    if attrs is None:
        reasons.append(Reason("entry", False, "the entry does not exist in the store"))
        return Explanation(dn, included and not excluded, reasons)
    values_of = _values(dn, attrs)
    matched = False
    for number, query in enumerate(queries, start=1):
        says = directory_says[number - 1] if directory_says is not None else None
        reason = _query(number, query, dn, values_of, rules, says)
        matched = matched or reason.matched
        reasons.append(reason)
    if join is not None:
        reason = _join(join, attrs)
        matched = matched or reason.matched
        reasons.append(reason)
    return Explanation(dn, (included or matched) and not excluded, reasons)


def _values(dn: str, attrs: Attrs) -> ValuesOf:
    lowered = {name.lower(): list(values) for name, values in attrs.items()}
    lowered.setdefault(ENTRY_DN, [dn])

    def values_of(name: str) -> list[str]:
        return lowered.get(name.lower(), [])

    return values_of


def _query(
    number: int, query: QueryRule, dn: str, values_of: ValuesOf, rules: RulesLookup | None, says: bool | None
) -> Reason:
    label = f"query {number} ({query.filter} under {query.base}, scope {query.scope.value})"
    if not is_within(dn, query.base, query.scope):
        return Reason("query", False, f"{label}: the entry is not within its base and scope")
    flt = parse_filter(query.filter)
    here = compile_filter(flt, rules)(values_of) is True
    if says is not None and says != here:
        if says:
            why = "; ".join(failures(flt, values_of, rules))
            return Reason("query", True, f"{label} matched in the directory (evaluated here, {why}: "
                                         "the directory's schema matches otherwise)")
        return Reason("query", False, f"{label} did not match in the directory, although it matches "
                                      "when evaluated here (the directory's schema matches otherwise)")
    if here:
        return Reason("query", True, f"{label} matched")
    return Reason("query", False, f"{label} did not match: {'; '.join(failures(flt, values_of, rules))}")


def failures(flt: Filter, values_of: ValuesOf, rules: RulesLookup | None = None) -> list[str]:
    """The terms of *flt* that make it fail on the entry, each with the entry's values
    (empty when it matches): of an AND its first failing part, of an OR every part."""
    result = compile_filter(flt, rules)(values_of)
    if result is True:
        return []
    match flt:
        case And(parts):
            for part in parts:
                if compile_filter(part, rules)(values_of) is not True:
                    return failures(part, values_of, rules)
            return [f"{format_filter(flt)} is undefined"]
        case Or(parts):
            found = [text for part in parts for text in failures(part, values_of, rules)]
            return found or [f"{format_filter(flt)} is undefined"]
        case Not(inner):
            if result is None:
                return [f"{format_filter(flt)} is undefined: {_seen(inner, values_of)}"]
            return [f"{format_filter(flt)} failed: {format_filter(inner)} matches, {_seen(inner, values_of)}"]
    if result is None:
        return [f"{format_filter(flt)} is undefined (no matching rule for its attribute): {_seen(flt, values_of)}"]
    return [f"{format_filter(flt)} failed: {_seen(flt, values_of)}"]


def _seen(flt: Filter, values_of: ValuesOf) -> str:
    """The entry's values of the attribute a simple term tests."""
    attribute = getattr(flt, "attribute", None)
    if attribute is None:
        return "see its parts"
    values = values_of(attribute)
    if not values:
        return f"the entry has no {attribute}"
    shown = ", ".join(repr(v) for v in values[:MAX_VALUES_SHOWN])
    more = f" and {len(values) - MAX_VALUES_SHOWN} more" if len(values) > MAX_VALUES_SHOWN else ""
    return f"the entry's {attribute} is {shown}{more}"


def _join(join: JoinRule, attrs: Attrs) -> Reason:
    label = f"join with column {join.column!r} of source {join.source!r} on {join.attribute}"
    values = list(attrs.get(join.attribute, ()))
    if not values:
        return Reason("join", False, f"{label}: the entry has no {join.attribute}")
    found = [v for v in values if fold_value(v) in join.values]
    if found:
        return Reason("join", True, f"{label} matched: the source has {found[0]!r}")
    shown = ", ".join(repr(v) for v in values[:MAX_VALUES_SHOWN])
    return Reason("join", False, f"{label}: the entry's {join.attribute} {shown} is not in the source")
