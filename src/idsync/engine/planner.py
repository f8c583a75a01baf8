"""Diffing a source against a directory into a plan.

The planner reads the destination scope once, with a paged search of only
the attributes it needs, into an index keyed by the match key; then it
streams the source record by record, emitting a :class:`Change` for every
object that must change. It never holds the source in memory: only the
destination index (keys, DNs, anchors and mapped attributes) and the keys
the source gave that match no single object (to catch duplicates).

Outcomes per record:

- a record whose key matches one object → an update with only the
  attributes whose values differ (or nothing: *unchanged*);
- a key matching several objects → a record error (never guessed);
- no match → a create (or *skipped*, when the job does not create);
- a key seen before in the source → a record error for the later record:
  the first record with a key decides, whatever became of it (applied,
  unchanged, skipped or failed), so a failed record is never replaced by a
  later one with the same key;
- objects in scope that no record matched → the job's *on missing* action.

Objects in scope without a value for the key attributes are not managed by
the job and are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from idsync.connectors.base import Directory, Source
from idsync.domain.changes import MEMBER_ATTRIBUTES, Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import JobDefinition
from idsync.domain.dn import format_dn, normalize_dn, parent_dn, parse_dn, rdn_dn, rdn_of
from idsync.domain.entry import Attrs, Record, Values
from idsync.domain.filters import escape_filter_value
from idsync.domain.results import Counts, ErrorItem
from idsync.engine.context import RunContext
from idsync.engine.expressions import CancelRow, compile_expression
from idsync.engine.heap import collector_paused
from idsync.engine.limits import PlanSize
from idsync.engine.mapping import MappedRecord, Mapper, normalize_key
from idsync.engine.resolve import Resolver, same_dns
from idsync.engine.update_mode import Digest, UpdateFilter
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError, RunAborted

ANCHOR_ATTRIBUTES = ("entryUUID",)
"""The default anchor; a directory naming its own in ``anchor_attributes`` (``objectGUID`` on AD) overrides it."""


class AccountControl(Protocol):
    """How a directory disables an account by itself (Active Directory's
    ``userAccountControl``), offered as the directory's ``account_control``."""

    attributes: tuple[str, ...]

    def disable(self, attrs: Attrs) -> Modification | None: ...


PlanItem = Change | ErrorItem


@dataclass(slots=True)
class Target:
    """A destination object in the job's scope, as the planner saw it."""

    dn: str
    attrs: Attrs
    seen: bool = False
    anchor_names: tuple[str, ...] = ANCHOR_ATTRIBUTES
    line: int | None = None
    """Where the source record that claimed this object starts, when it has lines."""

    @property
    def anchor(self) -> str | None:
        for name in self.anchor_names:
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


SameValues = Callable[[Values, Values], bool]


def _same(a: Values, b: Values) -> bool:
    return len(a) == len(b) and set(a) == set(b)


class Planner:
    """Computes the changes of one job run. Iterate :meth:`plan` once."""

    def __init__(
        self,
        job: JobDefinition,
        source: Source,
        directory: Directory,
        context: RunContext,
        update: UpdateFilter | None = None,
    ) -> None:
        self.job = job
        self.source = source
        self.directory = directory
        self.context = context
        self.mapper = Mapper(job, context)
        self._spelled = {m.attribute.lower(): m.attribute for m in job.mappings}
        self.counts = Counts()
        self.index = DestinationIndex()
        self.resolver = Resolver(job, directory)
        self.update = update
        self.removals = 0
        self._loaded = False
        self._lookups_read = False
        # A changed-only run that never acts on missing objects reads the
        # destination only once a record needs it: an unchanged source reads nothing.
        self._lazy = update is not None and job.actions.on_missing == "skip"
        # Keys the source gave before the destination was read, with their lines.
        self._claimed: dict[tuple[str, ...], int | None] = {}
        # Keys the source gave that match no single object (new, ambiguous or
        # gone), to catch a key given twice: text keys, lines as values (see _flat_key).
        self._new_keys: dict[str, int | None] = {}
        self._keyed = False  # whether the current record's key was claimed (or found a duplicate)
        self._pending_errors: list[ErrorItem] = []
        self._unclaimed = 0
        self._rdn = job.destination.rdn
        self._rdn_low = self._rdn.lower()
        self._classes = tuple(job.destination.classes)
        self._anchors: tuple[str, ...] = tuple(getattr(directory, "anchor_attributes", ANCHOR_ATTRIBUTES))
        self._account: AccountControl | None = (
            None if job.actions.disable_with else getattr(directory, "account_control", None)
        )
        if job.actions.on_missing == "disable" and not job.actions.disable_with and self._account is None:
            raise ConfigError(
                f"job {job.name!r}: on_missing: disable needs disable_with (attribute and value); "
                "only an Active Directory store disables accounts by itself"
            )
        self._compared = self._compared_attributes()
        self._compared_names = tuple(attribute for attribute, _, _ in self._compared)
        self._compared_lows = [low for _, low, _ in self._compared]
        self._container_expr = (
            compile_expression(job.destination.container_expression, "container_expression")
            if job.destination.container_expression
            else None
        )

    # ------------------------------------------------------------ reading

    def read_destination(self) -> None:
        """Read the job's scope once into the index (only the attributes needed).
        Reading again does nothing."""
        if self._loaded:
            return
        self._loaded = True
        attributes = {m.attribute for m in self.job.mappings} | set(self._anchors) | {self._rdn}
        if self.job.actions.disable_with:
            attributes.add(self.job.actions.disable_with.attribute)
        elif self._account is not None and self.job.actions.on_missing == "disable":
            attributes.update(self._account.attributes)
        try:
            with collector_paused():  # the index holds no reference cycles (see engine.heap)
                self._index_scope(sorted(attributes))
        except NotFoundError as exc:
            # The job exists; the base its destination names does not: the run
            # cannot read its destination, which is a failure, not a missing object.
            dest = self.job.destination
            raise ConnectorError(
                exc.message,
                field="destination.base_dn" if dest.base_dn else "destination.container",
                hint="create that entry, or correct the job's destination",
            ) from exc
        for key, line in self._claimed.items():
            hit = self.index.by_key.get(key)
            if isinstance(hit, Target):
                hit.seen, hit.line = True, line
            else:
                self._new_keys[_flat_key(key)] = line
        self._claimed.clear()

    def _index_scope(self, attributes: list[str]) -> None:
        dest = self.job.destination
        key_attrs = [m.attribute for m in self.job.key_mappings]
        single = key_attrs[0] if len(key_attrs) == 1 else None
        index, anchors = self.index, self._anchors
        for entry in self.directory.search(dest.search_base, dest.scope, scope_filter(self.job), attributes):
            if single is not None:  # one key attribute: the common case, without the general loop
                values = entry.attrs.get_values(single)
                if not values:
                    continue
                target = Target(entry.dn, entry.attrs, anchor_names=anchors)
                index.size += 1
                for value in values:
                    index.add((normalize_key(value),), target)
                continue
            key_values = [entry.attrs.get_values(a) for a in key_attrs]
            if not all(key_values):
                continue
            target = Target(entry.dn, entry.attrs, anchor_names=anchors)
            index.size += 1
            for key in _key_combinations(key_values):
                index.add(key, target)

    def _read_lookups(self) -> None:
        """The destination index and the resolve indexes, read before the run writes anything."""
        if self._lookups_read:  # asked once per record: after the first time, nothing to do
            return
        self.read_destination()
        self.resolver.prefetch()
        self._lookups_read = True

    def plan_size(self) -> PlanSize:
        """How much the plan computed so far changes, for the job's safety limits."""
        c = self.counts
        return PlanSize(
            creates=c.created,
            removals=self.removals,
            changed=c.updated + c.moved + c.deleted + c.disabled,
            scope=self.index.size,
        )

    # ------------------------------------------------------------ planning

    def plan(self) -> Iterator[PlanItem]:
        """Yield the changes and record errors of the run, in source order,
        then the actions on objects missing from the source."""
        if not self._lazy:
            self._read_lookups()
        yield from self._planned_containers()
        valid = 0
        for item in self.source.read():
            self.counts.read += 1
            if isinstance(item, RecordError):
                self._unclaimed += 1
                yield self._error(item)
                continue
            change: Change | None = None
            self._keyed = False
            try:
                if self._unchanged_source(item):
                    valid += 1
                    continue
                mapped = self.mapper.map(item)
                valid += 1
                digest = self.update.digest(mapped) if self.update is not None else None
                if self._unchanged_content(mapped, digest):
                    continue
                change = self._plan_record(mapped)
                if self.update is not None and not self._pending_errors:
                    self.update.planned(digest, change)
            except CancelRow:
                duplicate = self._protect(item)
                if duplicate is None:
                    self.counts.skipped += 1
                else:
                    yield self._error(duplicate)
            except RecordError as exc:
                yield self._error(self._protect(item) or exc)
            if self._pending_errors:
                yield from self._pending_errors
                self._pending_errors.clear()
            if change is not None:
                yield change
        yield from self._plan_missing(valid)

    def _planned_containers(self) -> Iterator[Change]:
        """The creates of the job's missing containers, first of all (a
        destination offers them when the job has create_container: see
        :class:`idsync.engine.containers.PlannedContainers`)."""
        offered = getattr(self.directory, "missing_containers", None)
        for change in offered() if offered is not None else ():
            self.counts.created += 1
            yield change

    def _unchanged_source(self, record: Record) -> bool:
        """True when a changed-only run skips *record* by its timestamp (and it claimed its object)."""
        if self.update is None or not self.update.unchanged_source(record):
            return False
        key, key_text, _ = self.mapper.key_of(record)
        return self._claim_unchanged(key, key_text, record.line)

    def _unchanged_content(self, rec: MappedRecord, digest: Digest | None) -> bool:
        """True when a changed-only run skips *rec* by its content hash (and it claimed its object)."""
        return (
            self.update is not None
            and self.update.unchanged_content(digest)
            and self._claim_unchanged(rec.key, rec.key_text, rec.line)
        )

    def _claim_unchanged(self, key: tuple[str, ...], key_text: str, line: int | None) -> bool:
        """A record a changed-only run skips still claims its object, so it is
        never treated as missing. False when the destination was read and holds
        no single object for the key (it was removed meanwhile): plan the record."""
        if self._loaded and not isinstance(self.index.by_key.get(key), Target):
            return False
        self._claim(key, key_text, line)
        self.counts.unchanged += 1
        return True

    def _claim(self, key: tuple[str, ...], key_text: str, line: int | None) -> Target | list[Target] | None:
        """Record that the source gave *key* at *line*, and return what the
        destination holds for it (nothing until it was read); a RecordError
        when the source gave the key before. The first record with a key
        decides for it, whatever became of that record, so a later one never
        replaces a failed one."""
        self._keyed = True
        if not self._loaded:
            if key in self._claimed:
                raise _duplicate(key_text, line, self._claimed[key])
            self._claimed[key] = line
            return None
        hit = self.index.by_key.get(key)
        if isinstance(hit, Target):
            if hit.seen:
                raise _duplicate(key_text, line, hit.line)
            hit.seen, hit.line = True, line
            return hit
        flat = _flat_key(key)
        if flat in self._new_keys:
            raise _duplicate(key_text, line, self._new_keys[flat])
        self._new_keys[flat] = line
        return hit

    def _protect(self, record: Record) -> RecordError | None:
        """A record that failed or was cancelled still claims its key, so the
        job's *on missing* action never deletes an object because its record
        was bad, and a later record with the key is a duplicate. Returns the
        duplicate error when an earlier record claimed the key.
        When even the key cannot be read, no object can be claimed: the run then
        leaves all missing objects alone (see :meth:`_plan_missing`)."""
        if self._keyed:  # it failed after its key was claimed
            return None
        try:
            key, key_text, _ = self.mapper.key_of(record)
        except (RecordError, CancelRow):
            self._unclaimed += 1
            return None
        try:
            self._claim(key, key_text, record.line)
        except RecordError as duplicate:
            return duplicate
        return None

    def _error(self, exc: RecordError, dn: str | None = None) -> ErrorItem:
        self.counts.errors += 1
        return ErrorItem(exc.message, key=exc.key, attribute=exc.attribute, line=exc.line, dn=dn)

    def _plan_record(self, rec: MappedRecord) -> Change | None:
        self._read_lookups()
        hit = self._claim(rec.key, rec.key_text, rec.line)
        values, reported = self.resolver.resolve(rec)
        if reported:
            self.counts.errors += len(reported)
            self._pending_errors.extend(reported)
        if isinstance(hit, list):
            dns = "; ".join(t.dn for t in hit[:3])
            raise RecordError(
                f"key {rec.key_text!r} matches {len(hit)} objects ({dns}); fix the directory or the key",
                key=rec.key_text,
                line=rec.line,
            )
        if hit is None:
            return self._plan_create(rec, values)
        return self._plan_update(rec, values, hit)

    def _plan_create(self, rec: MappedRecord, values: dict[str, Values]) -> Change | None:
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
        spelled = self._spelled
        if "objectclass" in values:  # classes given by a mapping add to the job's
            attrs = Attrs([("objectClass", self._classes), *((spelled[a], v) for a, v in values.items() if v)])
        else:
            attrs = Attrs.adopt(
                {"objectclass": ("objectClass", self._classes), **{a: (spelled[a], v) for a, v in values.items() if v}}
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

    def _compared_attributes(self) -> list[tuple[str, str, SameValues | None]]:
        """(attribute, lower-cased name, how values compare; None for membership)
        of every mapping an update compares, worked out once per run."""
        compared: list[tuple[str, str, SameValues | None]] = []
        for m in self.mapper.mappings:
            d = m.definition
            if d.new_only:
                continue
            low = d.attribute.lower()
            if low in MEMBER_ATTRIBUTES:
                compared.append((d.attribute, low, None))
            else:
                compared.append((d.attribute, low, same_dns if low in self.resolver.attributes else _same))
        return compared

    def _plan_update(self, rec: MappedRecord, values: dict[str, Values], target: Target) -> Change | None:
        # Most objects of most runs are unchanged: all compared values equal,
        # in order, found with one comparison of two rows before any detail.
        wanted = [values.get(low, ()) for low in self._compared_lows]
        found = target.attrs.values_of(self._compared_names)
        if wanted == found:
            self.counts.unchanged += 1
            return None
        mods: list[Modification] = []
        new_dn: str | None = None
        for (attribute, low, same), desired, current in zip(self._compared, wanted, found, strict=True):
            if desired == current:  # the same values in the same order
                continue
            if same is None:
                mods.extend(_member_mods(attribute, desired, current))
                continue
            if same(desired, current):
                continue
            if low == self._rdn_low and desired:
                new_dn = rdn_dn(self._rdn, desired[0], parent_dn(target.dn))
                if normalize_dn(new_dn) == normalize_dn(target.dn):
                    new_dn = None
            mods.append(Modification(ModOp.REPLACE, attribute, desired, current))
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
            unread = "1 source record" if self._unclaimed == 1 else f"{self._unclaimed} source records"
            left = "the object" if len(missing) == 1 else f"the {len(missing)} objects"
            yield ErrorItem(
                f"{unread} could not be read or keyed, so {left} missing from the source "
                f"{'was' if len(missing) == 1 else 'were'} left alone this run "
                f"(on_missing: {actions.on_missing}); fix {'that record' if self._unclaimed == 1 else 'those records'} "
                "to let it proceed"
            )
            self.counts.errors += 1
            return
        if missing and valid_records == 0 and not actions.allow_empty_source:
            raise RunAborted(
                f"the source gave no valid records; refusing to {actions.on_missing} all "
                f"{len(missing)} object{'' if len(missing) == 1 else 's'} in scope "
                "(set actions.allow_empty_source: true to allow it)"
            )
        for target in missing:
            key = target.attrs.first(self.job.key_mappings[0].attribute) or ""
            if actions.on_missing == "delete":
                self.counts.deleted += 1
                self.removals += 1
                yield Change(ChangeOp.DELETE, target.dn, key=key, anchor=target.anchor)
            elif actions.on_missing == "disable":
                try:
                    mod = self._disable_mod(target)
                except RecordError as exc:
                    yield self._error(RecordError(exc.message, key=key, attribute=exc.attribute), target.dn)
                    continue
                if mod is None:
                    self.counts.unchanged += 1
                    continue
                self.counts.disabled += 1
                self.removals += 1
                yield Change(ChangeOp.DISABLE, target.dn, key=key, mods=(mod,), anchor=target.anchor)
            else:
                assert actions.move_to is not None
                if normalize_dn(parent_dn(target.dn)) == normalize_dn(actions.move_to):
                    self.counts.unchanged += 1
                    continue
                self.counts.moved += 1
                self.removals += 1
                new_dn = format_dn((rdn_of(target.dn), *parse_dn(actions.move_to)))
                yield Change(ChangeOp.MOVE, target.dn, key=key, new_dn=new_dn, anchor=target.anchor)

    def _disable_mod(self, target: Target) -> Modification | None:
        """The modification disabling *target*: the job's ``disable_with``, or
        the directory's own account flags (Active Directory); None when it
        already is disabled."""
        spec = self.job.actions.disable_with
        if spec is None:
            assert self._account is not None
            return self._account.disable(target.attrs)
        current = target.attrs.get_values(spec.attribute)
        if current == (spec.value,):
            return None
        return Modification(ModOp.REPLACE, spec.attribute, (spec.value,), current)


def _duplicate(key_text: str, line: int | None, first: int | None) -> RecordError:
    where = f" (first at line {first})" if first else ""
    return RecordError(
        f"duplicate key {key_text!r} in the source{where}: the first record with a key decides, later ones are not used",
        key=key_text,
        line=line,
    )


def _flat_key(key: tuple[str, ...]) -> str:
    """*key* as one string, distinct for distinct keys (all keys of a job have
    the same number of parts).

    A dict holding only strings and integers is one the garbage collector
    never tracks; with tuple keys, every full collection of a run creating a
    million objects walked the whole dict (a sixth of the run's time).
    """
    return key[0] if len(key) == 1 else repr(key)


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

