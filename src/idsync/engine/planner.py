"""Diffing a source against a directory into a plan.

The planner reads the destination scope once, with a paged search of only
the attributes it needs, into an index keyed by the match key; then it
streams the source record by record, emitting a :class:`Change` for every
object that must change. It never holds the source in memory: only the
destination index (keys, DNs, anchors and mapped attributes) and the set of
keys of objects it is about to create (to catch duplicates).

Outcomes per record:

- a record whose key matches one object → an update with only the
  attributes whose values differ (or nothing: *unchanged*);
- a key matching several objects → a record error (never guessed);
- no match → a create (or *skipped*, when the job does not create);
- a key seen before in the source → a record error for the later record;
- objects in scope that no record matched → the job's *on missing* action.

Objects in scope without a value for the key attributes are not managed by
the job and are never touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from idsync.connectors.base import Directory, Source
from idsync.domain.changes import MEMBER_ATTRIBUTES, Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import JobDefinition, MemberResolution
from idsync.domain.dn import format_dn, normalize_dn, parent_dn, parse_dn, rdn_dn, rdn_of
from idsync.domain.entry import Attrs, Record, Values
from idsync.domain.filters import escape_filter_value
from idsync.domain.results import Counts, ErrorItem
from idsync.engine.context import RunContext
from idsync.engine.expressions import CancelRow, compile_expression
from idsync.engine.mapping import MappedRecord, Mapper, normalize_key
from idsync.errors import RecordError, RunAborted

ANCHOR_ATTRIBUTES = ("entryUUID",)

PlanItem = Change | ErrorItem


@dataclass(slots=True)
class Target:
    """A destination object in the job's scope, as the planner saw it."""

    dn: str
    attrs: Attrs
    seen: bool = False

    @property
    def anchor(self) -> str | None:
        for name in ANCHOR_ATTRIBUTES:
            value = self.attrs.first(name)
            if value:
                return value
        return None


@dataclass(slots=True)
class DestinationIndex:
    """Destination objects by match key; a key held by several objects is ambiguous."""

    by_key: dict[tuple[str, ...], Target | list[Target]] = field(default_factory=dict)
    size: int = 0

    def add(self, key: tuple[str, ...], target: Target) -> None:
        hit = self.by_key.get(key)
        if hit is None:
            self.by_key[key] = target
        elif isinstance(hit, list):
            hit.append(target)
        else:
            self.by_key[key] = [hit, target]

    def targets(self) -> Iterator[Target]:
        for hit in self.by_key.values():
            if isinstance(hit, Target):
                yield hit


def scope_filter(job: JobDefinition) -> str:
    """The filter selecting the job's objects: its structural class, and the job's filter."""
    structural = job.destination.classes[-1]
    own = f"(objectClass={escape_filter_value(structural)})"
    extra = job.destination.filter
    if not extra:
        return own
    extra = extra if extra.startswith("(") else f"({extra})"
    return f"(&{own}{extra})"


def _same(a: Values, b: Values) -> bool:
    return len(a) == len(b) and set(a) == set(b)


class Planner:
    """Computes the changes of one job run. Iterate :meth:`plan` once."""

    def __init__(
        self, job: JobDefinition, source: Source, directory: Directory, context: RunContext
    ) -> None:
        self.job = job
        self.source = source
        self.directory = directory
        self.context = context
        self.mapper = Mapper(job, context)
        self.counts = Counts()
        self.index = DestinationIndex()
        self._new_keys: dict[tuple[str, ...], int | None] = {}
        self._members: dict[str, dict[str, str | None]] = {}
        self._pending_errors: list[ErrorItem] = []
        self._unclaimed = 0
        self._rdn = job.destination.rdn
        self._container_expr = (
            compile_expression(job.destination.container_expression, "container_expression")
            if job.destination.container_expression
            else None
        )

    # ------------------------------------------------------------ reading

    def read_destination(self) -> None:
        """Read the job's scope once into the index (only the attributes needed)."""
        dest = self.job.destination
        attributes = {m.attribute for m in self.job.mappings} | set(ANCHOR_ATTRIBUTES) | {self._rdn}
        if self.job.actions.disable_with:
            attributes.add(self.job.actions.disable_with.attribute)
        key_attrs = [m.attribute for m in self.job.key_mappings]
        for entry in self.directory.search(dest.search_base, dest.scope, scope_filter(self.job), sorted(attributes)):
            key_values = [entry.attrs.get_values(a) for a in key_attrs]
            if not all(key_values):
                continue
            target = Target(entry.dn, entry.attrs)
            self.index.size += 1
            for key in _key_combinations(key_values):
                self.index.add(key, target)
        for m in self.job.mappings:
            if m.members is not None:
                self._members[m.attribute.lower()] = self._read_members(m.members)

    def _read_members(self, spec: MemberResolution) -> dict[str, str | None]:
        """Member key → DN of the object holding it (None when ambiguous)."""
        out: dict[str, str | None] = {}
        for entry in self.directory.search(spec.base_dn, spec.scope, spec.filter, [spec.attribute]):
            for value in entry.attrs.get_values(spec.attribute):
                k = normalize_key(value)
                out[k] = None if k in out else entry.dn
        return out

    # ------------------------------------------------------------ planning

    def plan(self) -> Iterator[PlanItem]:
        """Yield the changes and record errors of the run, in source order,
        then the actions on objects missing from the source."""
        self.read_destination()
        valid = 0
        for item in self.source.read():
            self.counts.read += 1
            if isinstance(item, RecordError):
                self._unclaimed += 1
                yield self._error(item)
                continue
            change: Change | None = None
            try:
                mapped = self.mapper.map(item)
                valid += 1
                change = self._plan_record(mapped)
            except CancelRow:
                self.counts.skipped += 1
                self._protect(item)
            except RecordError as exc:
                yield self._error(exc)
                self._protect(item)
            if self._pending_errors:
                yield from self._pending_errors
                self._pending_errors.clear()
            if change is not None:
                yield change
        yield from self._plan_missing(valid)

    def _protect(self, record: Record) -> None:
        """A record that failed or was cancelled still claims its object, so the
        job's *on missing* action never deletes an object because its record was bad.
        When even the key cannot be read, no object can be claimed: the run then
        leaves all missing objects alone (see :meth:`_plan_missing`)."""
        try:
            key, _, _ = self.mapper.key_of(record)
        except (RecordError, CancelRow):
            self._unclaimed += 1
            return
        hit = self.index.by_key.get(key)
        if isinstance(hit, Target):
            hit.seen = True

    def _error(self, exc: RecordError, dn: str | None = None) -> ErrorItem:
        self.counts.errors += 1
        return ErrorItem(exc.message, key=exc.key, attribute=exc.attribute, line=exc.line, dn=dn)

    def _plan_record(self, rec: MappedRecord) -> Change | None:
        values = self._resolve_members(rec)
        hit = self.index.by_key.get(rec.key)
        if isinstance(hit, list):
            dns = "; ".join(t.dn for t in hit[:3])
            raise RecordError(
                f"key {rec.key_text!r} matches {len(hit)} objects ({dns}); fix the directory or the key",
                key=rec.key_text,
                line=rec.line,
            )
        if hit is None:
            return self._plan_create(rec, values)
        if hit.seen:
            raise RecordError(
                f"duplicate key {rec.key_text!r} in the source: only its first record is used",
                key=rec.key_text,
                line=rec.line,
            )
        hit.seen = True
        return self._plan_update(rec, values, hit)

    def _resolve_members(self, rec: MappedRecord) -> dict[str, Values]:
        if not self._members:
            return dict(rec.values)
        values = dict(rec.values)
        for attr, index in self._members.items():
            dns: list[str] = []
            for member_key in values.get(attr, ()):
                dn = index.get(normalize_key(member_key), "")
                if not dn:
                    why = "matches several objects" if dn is None else "matches no object"
                    self.counts.errors += 1
                    self._pending_errors.append(
                        ErrorItem(f"member {member_key!r} {why}; left out", key=rec.key_text, attribute=attr, line=rec.line)
                    )
                    continue
                dns.append(dn)
            values[attr] = tuple(dns)
        return values

    def _plan_create(self, rec: MappedRecord, values: dict[str, Values]) -> Change | None:
        if rec.key in self._new_keys:
            first = self._new_keys[rec.key]
            where = f" (first at line {first})" if first else ""
            raise RecordError(
                f"duplicate key {rec.key_text!r} in the source{where}: only its first record is used",
                key=rec.key_text,
                line=rec.line,
            )
        self._new_keys[rec.key] = rec.line
        if self.job.actions.on_new == "skip":
            self.counts.skipped += 1
            return None
        rdn_values = values.get(self._rdn.lower(), ())
        if not rdn_values:
            raise RecordError(
                f"no value for the naming attribute {self._rdn!r}; a new object needs one",
                key=rec.key_text,
                attribute=self._rdn,
                line=rec.line,
            )
        container = self._container(rec)
        dn = rdn_dn(self._rdn, rdn_values[0], container)
        names = {m.attribute.lower(): m.attribute for m in self.job.mappings}
        attrs = Attrs(
            [("objectClass", self.job.destination.classes)]
            + [(names[a], v) for a, v in values.items() if v]
        )
        self.counts.created += 1
        return Change(ChangeOp.CREATE, dn, key=rec.key_text, attrs=attrs)

    def _container(self, rec: MappedRecord) -> str:
        if self._container_expr is None:
            return self.job.destination.container
        # The expression sees mapped values by attribute name, the way admins think of them.
        fields = {k: (v[0] if v else None) for k, v in rec.values.items()}
        result = self._container_expr.evaluate(fields, self.context)
        if not isinstance(result, str) or not result:
            raise RecordError(
                "container_expression gave no DN", key=rec.key_text, line=rec.line
            )
        return result

    def _plan_update(self, rec: MappedRecord, values: dict[str, Values], target: Target) -> Change | None:
        mods: list[Modification] = []
        new_dn: str | None = None
        for m in self.mapper.mappings:
            d = m.definition
            if d.new_only:
                continue
            low = d.attribute.lower()
            desired = values.get(low, ())
            current = target.attrs.get_values(d.attribute)
            if low in MEMBER_ATTRIBUTES:
                mods.extend(_member_mods(d.attribute, desired, current))
                continue
            if _same(desired, current):
                continue
            if low == self._rdn.lower() and desired:
                new_dn = rdn_dn(self._rdn, desired[0], parent_dn(target.dn))
                if normalize_dn(new_dn) == normalize_dn(target.dn):
                    new_dn = None
            mods.append(Modification(ModOp.REPLACE, d.attribute, desired, current))
        if not mods and new_dn is None:
            self.counts.unchanged += 1
            return None
        if new_dn is not None:
            self.counts.moved += 1
            return Change(ChangeOp.MOVE, target.dn, key=rec.key_text, mods=tuple(mods), new_dn=new_dn, anchor=target.anchor)
        self.counts.updated += 1
        return Change(ChangeOp.UPDATE, target.dn, key=rec.key_text, mods=tuple(mods), anchor=target.anchor)

    def _plan_missing(self, valid_records: int) -> Iterator[PlanItem]:
        actions = self.job.actions
        if actions.on_missing == "skip":
            return
        missing = [t for t in self.index.targets() if not t.seen]
        if missing and self._unclaimed:
            self.counts.skipped += len(missing)
            yield ErrorItem(
                f"{self._unclaimed} source records could not be read or keyed, so the "
                f"{len(missing)} objects missing from the source were left alone this run "
                f"(on_missing: {actions.on_missing}); fix those records to let it proceed"
            )
            self.counts.errors += 1
            return
        if missing and valid_records == 0 and not actions.allow_empty_source:
            raise RunAborted(
                f"the source gave no valid records; refusing to {actions.on_missing} all "
                f"{len(missing)} objects in scope (set actions.allow_empty_source: true to allow it)"
            )
        for target in missing:
            key = target.attrs.first(self.job.key_mappings[0].attribute) or ""
            if actions.on_missing == "delete":
                self.counts.deleted += 1
                yield Change(ChangeOp.DELETE, target.dn, key=key, anchor=target.anchor)
            elif actions.on_missing == "disable":
                spec = actions.disable_with
                assert spec is not None
                current = target.attrs.get_values(spec.attribute)
                if current == (spec.value,):
                    self.counts.unchanged += 1
                    continue
                self.counts.disabled += 1
                mod = Modification(ModOp.REPLACE, spec.attribute, (spec.value,), current)
                yield Change(ChangeOp.DISABLE, target.dn, key=key, mods=(mod,), anchor=target.anchor)
            else:
                assert actions.move_to is not None
                if normalize_dn(parent_dn(target.dn)) == normalize_dn(actions.move_to):
                    self.counts.unchanged += 1
                    continue
                self.counts.moved += 1
                new_dn = format_dn((rdn_of(target.dn), *parse_dn(actions.move_to)))
                yield Change(ChangeOp.MOVE, target.dn, key=key, new_dn=new_dn, anchor=target.anchor)


def _member_mods(attribute: str, desired: Values, current: Values) -> list[Modification]:
    """Membership as value adds and deletes of the difference, never a full replace."""
    want = {normalize_dn(v): v for v in desired}
    have = {normalize_dn(v): v for v in current}
    add = tuple(v for k, v in want.items() if k not in have)
    remove = tuple(v for k, v in have.items() if k not in want)
    mods = []
    if add:
        mods.append(Modification(ModOp.ADD, attribute, add, current))
    if remove:
        mods.append(Modification(ModOp.DELETE, attribute, remove, current))
    return mods


def _key_combinations(key_values: Sequence[Values]) -> Iterator[tuple[str, ...]]:
    if len(key_values) == 1:
        for v in key_values[0]:
            yield (normalize_key(v),)
        return
    first, rest = key_values[0], key_values[1:]
    for v in first:
        for tail in _key_combinations(rest):
            yield (normalize_key(v), *tail)

