"""Smart group use cases: check, review, save, list, remove, compute, preview, explain.

Membership is computed here from what the directory answers and handed to
the pure :mod:`idsync.smartgroups` code as sets of normalised DNs. A
:class:`Searcher` lives for one computation (one preview, one update run):
it runs each distinct (base, scope, filter) once, reading only DNs, and
reads each join's source once, so a thousand groups sharing ten queries
cost ten searches. Writing the differences, and recording them as a run,
is :mod:`idsync.services.smartgroup_runs`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from idsync.connectors.base import Directory
from idsync.connectors.local.schema import load_schema
from idsync.domain.changes import Change
from idsync.domain.dn import fold_value, is_within, normalize_dn, parent_dn, rdn_of
from idsync.domain.entry import Attrs, Record, Scope
from idsync.domain.filters import RulesLookup, escape_filter_value
from idsync.domain.roles import Role
from idsync.domain.smartgroups import GroupJoin, GroupQuery, SmartGroup, SmartGroupJob
from idsync.errors import ConfigError, IdsyncError, NotFoundError
from idsync.services import authz, connections, definitions, history
from idsync.services.review import Review, review
from idsync.services.workspace import Workspace
from idsync.smartgroups.explain import Explanation, JoinRule, QueryRule, explain
from idsync.smartgroups.membership import (
    Difference,
    Limits,
    Members,
    difference_of_values,
    member_key,
    members_of,
    refused_by,
    target_members,
)
from idsync.smartgroups.overlay import Overlay

NOUN = "smart group"
JOB_NOUN = "smart group update job"
ONLY_DNS = ["1.1"]
"""The attribute list that asks a directory for DNs alone (RFC 4511 section 4.5.1.8)."""


# ---------------------------------------------------------------- definitions


def store_base(store: Any) -> str | None:
    """The DN every entry of *store* lies under: the embedded directory's
    suffix, an LDAP store's ``base_dn`` (None when it has none)."""
    return getattr(store, "suffix", None) or getattr(store, "base_dn", None)


def _store(ws: Workspace, name: str, pending: Mapping[str, Any] | None, label: str) -> Any | None:
    """The store definition *name* (stored, or about to be saved from the same file: then
    None when only its name is known). ConfigError when it exists nowhere."""
    if pending and name in pending:
        return pending[name]
    try:
        return definitions.load(ws, "store", name).definition
    except NotFoundError as exc:
        raise ConfigError(f"{label}: identity store {name!r} does not exist", field="store",
                          hint="list the identity stores") from exc


def _within(label: str, what: str, dn: str, base: str | None, store: str) -> None:
    if base is not None and not is_within(dn, base, Scope.SUB):
        raise ConfigError(
            f"{label}: {what} {dn!r} lies outside identity store {store!r} (its base is {base})",
            field=what.split(" ")[0],
            hint=f"use a DN under {base}",
        )


def check_smart_group(
    ws: Workspace,
    group: SmartGroup,
    pending: Mapping[str, set[str]] | None = None,
    incoming_stores: Mapping[str, Any] | None = None,
) -> None:
    """What the model cannot check alone: the store and the join's source exist,
    and the group, every query base and the join's base lie within the store
    (the error names the query by its position, ``queries.2.base``). Filters
    were checked when the definition was read, with their error positions."""
    label = f"{NOUN} {group.name!r}"
    pending = pending or {}
    stores = dict(incoming_stores or {})
    stores.update({name: None for name in pending.get("store", set()) if name not in stores})
    store = _store(ws, group.store, stores, label)
    base = store_base(store) if store is not None else None
    _within(label, "dn", group.dn, base, group.store)
    for index, query in enumerate(group.queries, start=1):
        _within(label, f"queries.{index}.base", query.base, base, group.store)
    join = group.join
    if join is not None:
        if join.source not in pending.get("source", set()):
            try:
                definitions.load(ws, "source", join.source)
            except NotFoundError as exc:
                raise ConfigError(f"{label}: data source {join.source!r} of the join does not exist",
                                  field="join.source", hint="list the data sources") from exc
        if join.base is not None:
            _within(label, "join.base", join.base, base, group.store)
        elif store is not None and base is None:
            raise ConfigError(f"{label}: the join needs a base: store {group.store!r} has no base_dn",
                              field="join.base", hint="give join.base, or base_dn on the store")


def check_job(ws: Workspace, job: SmartGroupJob, pending: Mapping[str, set[str]] | None = None) -> None:
    """The job's store exists, and each group it lists exists and belongs to that store."""
    label = f"{JOB_NOUN} {job.name!r}"
    pending = pending or {}
    _store(ws, job.store, dict.fromkeys(pending.get("store", set())), label)
    stored = {g.name: g for g in definitions.list_definitions(ws, "smart_group")}
    for name in job.groups:
        if name in pending.get("smart_group", set()):
            continue
        found = stored.get(name)
        if found is None:
            raise ConfigError(f"{label}: smart group {name!r} does not exist", field="groups",
                              hint="list the smart groups")
        if found.store != job.store:
            raise ConfigError(
                f"{label}: smart group {name!r} belongs to identity store {found.store!r}, not {job.store!r}",
                field="groups",
            )


def find_group(ws: Workspace, name: str) -> SmartGroup | None:
    try:
        return load_group(ws, name)
    except NotFoundError:
        return None


def load_group(ws: Workspace, name: str) -> SmartGroup:
    group: SmartGroup = definitions.load(ws, "smart_group", name).definition
    return group


def list_groups(ws: Workspace) -> list[SmartGroup]:
    return list(definitions.list_definitions(ws, "smart_group"))


def save_group(ws: Workspace, group: SmartGroup, *, based_on: Collection[str] | None = None) -> str:
    """Check and save; "created", "updated" or "unchanged"."""
    check_smart_group(ws, group)
    return definitions.save(ws, "smart_group", group, based_on=based_on)


def remove_group(ws: Workspace, name: str) -> None:
    """Remove a smart group (its group entry stays as it is); refused while an update job lists it."""
    definitions.remove(ws, "smart_group", name)


def load_job(ws: Workspace, name: str) -> SmartGroupJob:
    job: SmartGroupJob = definitions.load(ws, "smart_group_job", name).definition
    return job


def list_jobs(ws: Workspace) -> list[SmartGroupJob]:
    return list(definitions.list_definitions(ws, "smart_group_job"))


def review_job(ws: Workspace, job: SmartGroupJob) -> Review:
    check_job(ws, job)
    found = next((j for j in list_jobs(ws) if j.name == job.name), None)
    return review(JOB_NOUN, job, found)


def save_job(ws: Workspace, job: SmartGroupJob, *, based_on: Collection[str] | None = None) -> str:
    check_job(ws, job)
    return definitions.save(ws, "smart_group_job", job, based_on=based_on)


def remove_job(ws: Workspace, name: str) -> None:
    """Remove an update job; refused while a collection links it."""
    definitions.remove(ws, "smart_group_job", name)


def job_targets(ws: Workspace, job: SmartGroupJob) -> list[SmartGroup]:
    """The groups *job* recomputes: those it lists, then every group of its store
    under one of its containers (at any depth), each once, by name."""
    groups = {g.name: g for g in list_groups(ws)}
    chosen: dict[str, SmartGroup] = {}
    for name in job.groups:
        if name not in groups:
            raise NotFoundError(f"{JOB_NOUN} {job.name!r}: smart group {name!r} does not exist",
                                hint="list the smart groups")
        chosen[name] = groups[name]
    for group in groups.values():
        if group.store == job.store and any(is_within(group.dn, c, Scope.SUB) for c in job.containers):
            chosen.setdefault(group.name, group)
    return list(chosen.values())


# ---------------------------------------------------------------- computing


class Searcher:
    """The directory's answers for one computation, each asked once."""

    def __init__(self, ws: Workspace, directory: Directory, store_base_dn: str | None) -> None:
        self.ws = ws
        self.directory = directory
        self.base = store_base_dn
        self.searches = 0
        self._queries: dict[tuple[str, str, str], Members] = {}
        self._sources: dict[tuple[str, str], frozenset[str]] = {}
        self._holders: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = {}
        self._members: dict[str, Sequence[str]] = {}

    def query(self, query: GroupQuery) -> Members:
        """The DNs *query* finds (one search per distinct base, scope and filter)."""
        key = (normalize_dn(query.base), query.scope.value, query.filter)
        if key not in self._queries:
            self.searches += 1
            found = self.directory.search(query.base, query.scope, query.filter, ONLY_DNS)
            self._queries[key] = members_of(entry.dn for entry in found)
        return self._queries[key]

    def source_values(self, join: GroupJoin) -> frozenset[str]:
        """The values of the join's column, folded as caseIgnoreMatch compares them."""
        key = (join.source, join.column)
        if key not in self._sources:
            values: set[str] = set()
            with connections.source(self.ws, join.source) as source:
                for index, item in enumerate(source.read()):
                    if not isinstance(item, Record):
                        continue
                    if index == 0 and join.column not in item.fields:
                        raise ConfigError(
                            f"data source {join.source!r} has no column {join.column!r} "
                            f"(it has {', '.join(item.fields)})", field="join.column",
                        )
                    value = item.get(join.column)
                    if value is not None and value.strip():
                        values.add(fold_value(value))
            self._sources[key] = frozenset(values)
        return self._sources[key]

    def joined(self, join: GroupJoin) -> Members:
        """The entries whose join attribute equals a value of the join's column."""
        base = join.base or self.base
        if base is None:
            raise ConfigError("the join needs a base: the store has no base_dn", field="join.base")
        wanted = self.source_values(join)
        return members_of(dn for dn, values in self.holding(base, join.attribute) if any(v in wanted for v in values))

    def holding(self, base: str, attribute: str) -> list[tuple[str, tuple[str, ...]]]:
        """The entries under *base* that have *attribute*: (DN, folded values), one search per pair."""
        key = (normalize_dn(base), attribute.lower())
        if key not in self._holders:
            self.searches += 1
            found = self.directory.search(base, Scope.SUB, f"({attribute}=*)", [attribute])
            self._holders[key] = [
                (entry.dn, tuple(fold_value(v) for v in entry.attrs.get_values(attribute))) for entry in found
            ]
        return self._holders[key]

    def read_members(self, groups: Sequence[SmartGroup]) -> None:
        """Read the member lists of *groups* ahead, one search per parent entry
        (and member attribute) naming their RDNs, instead of one read per group:
        :meth:`current` then takes them. A group not found so is read alone."""
        buckets: dict[tuple[str, str], tuple[str, list[str]]] = {}
        for group in groups:
            if group.dn.strip() == "":
                continue
            rdn = rdn_of(group.dn)
            if not rdn:
                continue
            term = "".join(f"({name}={escape_filter_value(value)})" for name, value in rdn)
            parent = parent_dn(group.dn)
            key = (normalize_dn(parent), group.member_attribute.lower())
            buckets.setdefault(key, (parent, []))[1].append(term if len(rdn) == 1 else f"(&{term})")
        for (_key, attribute), (parent, terms) in buckets.items():
            if len(terms) < 2:
                continue  # one group: its own read is the same one round trip
            try:
                for entry in self.directory.search(parent, Scope.ONE, f"(|{''.join(terms)})", [attribute]):
                    self._members[member_key(entry.dn)] = entry.attrs.get_values(attribute)
            except IdsyncError:
                continue  # read alone, each group says what is wrong with it

    def current(self, group: SmartGroup) -> Members:
        """The group's members now; NotFoundError when the group entry does not exist."""
        return members_of(self.current_values(group))

    def current_values(self, group: SmartGroup) -> Sequence[str]:
        """The group's member values now, as the entry spells them; NotFoundError when it does not exist."""
        read = self._members.pop(member_key(group.dn), None) if self._members else None
        if read is not None:
            return read
        found = list(self.directory.search(group.dn, Scope.BASE, "(objectClass=*)", [group.member_attribute]))
        if not found:
            raise NotFoundError(f"the group entry {group.dn} does not exist")
        return found[0].attrs.get_values(group.member_attribute)

    def target(self, group: SmartGroup) -> Members:
        queried = [self.query(q) for q in group.queries]
        joined = self.joined(group.join) if group.join is not None else None
        return target_members(queried, joined, group.include, group.exclude)


@cache
def filter_rules() -> RulesLookup:
    """The matching rules a filter is evaluated with outside the directory (on the
    entries plans would leave): those of the embedded directory's schema, the
    standard OpenLDAP one, so the rules slapd uses for the standard attributes
    (integers ordered as numbers, caseExactMatch where the schema says so)."""
    return load_schema().rules


class OverlaySearcher(Searcher):
    """A :class:`Searcher` answering as the directory would once plans are applied
    (:class:`idsync.smartgroups.overlay.Overlay`): a collection's preview of its groups."""

    def __init__(self, ws: Workspace, directory: Directory, store_base_dn: str | None, overlay: Overlay) -> None:
        super().__init__(ws, directory, store_base_dn)
        self.overlay = overlay
        self.rules = filter_rules()
        self._overlaid: dict[tuple[str, str, str], Members] = {}

    def query(self, query: GroupQuery) -> Members:
        key = (normalize_dn(query.base), query.scope.value, query.filter)
        if key not in self._overlaid:
            try:
                found = dict(super().query(query))
            except NotFoundError:
                if not self.overlay.touches(key[0]) and not self.overlay.moves_into(query.base):
                    raise
                found = {}  # its base is one the plans create, or move there
            for base, scope in self.overlay.origins(query.base, query.scope):
                # Entries a rename moves within the query's reach, searched where the directory holds them.
                with contextlib.suppress(NotFoundError):
                    found.update(super().query(GroupQuery(base=base, scope=scope, filter=query.filter)))
            self._overlaid[key] = self.overlay.over(found, query.base, query.scope, query.filter, self.rules)
        return self._overlaid[key]

    def holding(self, base: str, attribute: str) -> list[tuple[str, tuple[str, ...]]]:
        try:
            found = list(super().holding(base, attribute))
        except NotFoundError:
            if not self.overlay.touches(normalize_dn(base)) and not self.overlay.moves_into(base):
                raise
            found = []
        for where, _scope in self.overlay.origins(base, Scope.SUB):
            with contextlib.suppress(NotFoundError):
                found.extend(super().holding(where, attribute))
        return self.overlay.untouched(found, base) + self.overlay.holding(base, attribute)

    def current_values(self, group: SmartGroup) -> Sequence[str]:
        if not self.overlay.touches(normalize_dn(group.dn)):
            return super().current_values(group)
        attrs = self.overlay.attrs(group.dn)
        if attrs is None:
            raise NotFoundError(f"the group entry {group.dn} does not exist once the plans are applied")
        return attrs.get_values(group.member_attribute)


def read_entry(directory: Directory, dn: str) -> Attrs | None:
    """Entry *dn* with its user attributes, or None when it does not exist."""
    try:
        found = next(iter(directory.search(dn, Scope.BASE, "(objectClass=*)", None)), None)
    except NotFoundError:
        return None
    return found.attrs if found is not None else None


@dataclass
class GroupPlan:
    """What updating one group would do: the members to add and remove, or why it
    would not be updated (*refused*: a limit; *error*: it could not be computed)."""

    group: str
    dn: str
    member_attribute: str
    current: int = 0
    members: int = 0
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    refused: str | None = None
    limit: str | None = None
    """The limit that refused it (allow_empty, max_members or guard)."""
    error: str | None = None

    @property
    def changed(self) -> int:
        return len(self.add) + len(self.remove)


def limits_of(group: SmartGroup) -> Limits:
    guard = group.guard
    return Limits(
        allow_empty=group.allow_empty, max_members=group.max_members,
        guard_percent=guard.percent if guard else None, guard_min_size=guard.min_size if guard else 0,
    )


def plan_group(searcher: Searcher, group: SmartGroup) -> GroupPlan:
    """The plan of one group; an error computing it is the plan's error, not raised."""
    plan = GroupPlan(group.name, group.dn, group.member_attribute)
    try:
        values = searcher.current_values(group)
        diff: Difference = difference_of_values(values, searcher.target(group))
    except IdsyncError as exc:
        plan.error = exc.message
        return plan
    plan.current, plan.members, plan.add, plan.remove = diff.current, diff.target, diff.add, diff.remove
    refused = refused_by(diff, limits_of(group))
    if refused is not None:
        plan.limit, plan.refused = refused
    return plan


def open_store(ws: Workspace, name: str) -> tuple[Any, Directory]:
    loaded = definitions.load(ws, "store", name)
    return loaded.definition, connections.open_store(loaded.definition, loaded.secrets)


READ_TOGETHER = 200
"""Groups whose member lists are read by one search (:meth:`Searcher.read_members`):
few round trips, and no more member lists held at once than these."""


def plan_groups(ws: Workspace, store: str, groups: Sequence[SmartGroup]) -> list[GroupPlan]:
    """Plans of *groups* (all of store *store*), sharing one connection and one :class:`Searcher`."""
    definition, directory = open_store(ws, store)
    try:
        searcher = Searcher(ws, directory, store_base(definition))
        plans: list[GroupPlan] = []
        for start in range(0, len(groups), READ_TOGETHER):
            chunk = groups[start : start + READ_TOGETHER]
            searcher.read_members(chunk)
            plans.extend(plan_group(searcher, group) for group in chunk)
        return plans
    finally:
        directory.close()


@dataclass
class LinkedPreview:
    """What a collection's linked update job would do once the collection's plans are
    applied: one plan per group, or why it could not be computed (*error*)."""

    job: str
    store: str
    groups: list[GroupPlan] = field(default_factory=list)
    error: str | None = None

    def lines(self, limit: int = 10) -> list[str]:
        head = f"smart group update job {self.job!r} (store {self.store!r}), after the collection's jobs"
        if self.error is not None:
            return [f"{head}: not computed: {self.error}"]
        out = [f"{head}: {len(self.groups)} group(s)"]
        for plan in self.groups:
            out.append(f"group {plan.group!r} ({plan.dn})")
            out.extend("  " + line for line in plan_lines(plan, limit))
        return out


def preview_linked(ws: Workspace, names: Sequence[str], plans: Mapping[str, Sequence[int]]) -> list[LinkedPreview]:
    """What update jobs *names* would do after plans *plans* (plan ids by store, in the
    order they would apply) are applied; changes nothing. Each job's groups are
    planned with an :class:`OverlaySearcher` over the plans of its store."""
    out = []
    for name in names:
        try:
            job = load_job(ws, name)
            preview = LinkedPreview(name, job.store)
            groups = job_targets(ws, job)
        except IdsyncError as exc:
            out.append(LinkedPreview(name, "", error=exc.message))
            continue
        try:
            preview.groups = plan_after(ws, job.store, groups, plans.get(job.store, ()))
        except IdsyncError as exc:
            preview.error = exc.message
        out.append(preview)
    return out


def plan_after(
    ws: Workspace, store: str, groups: Sequence[SmartGroup], plan_ids: Sequence[int]
) -> list[GroupPlan]:
    """Plans of *groups* (of store *store*) on the directory as plans *plan_ids* would leave it."""
    return plan_over(ws, store, groups, (change for plan_id in plan_ids for change in history.plan_changes(ws, plan_id)))


def plan_over(ws: Workspace, store: str, groups: Sequence[SmartGroup], changes: Iterable[Change]) -> list[GroupPlan]:
    """Plans of *groups* on the directory of *store* with *changes* overlaid."""
    definition, directory = open_store(ws, store)
    try:
        overlay = Overlay()
        overlay.apply_all(changes, lambda dn: read_entry(directory, dn))
        searcher = OverlaySearcher(ws, directory, store_base(definition), overlay)
        return [plan_group(searcher, group) for group in groups]
    finally:
        directory.close()


def preview_group(ws: Workspace, name: str) -> GroupPlan:
    """What ``update`` would do to smart group *name* now; changes nothing."""
    authz.require(ws, Role.OPERATOR, "preview smart groups")
    group = load_group(ws, name)
    return plan_groups(ws, group.store, [group])[0]


# ---------------------------------------------------------------- review


@dataclass
class GroupReview:
    """The review of a smart group about to be saved, with the membership it would give."""

    review: Review
    plan: GroupPlan | None = None
    plan_error: str | None = None

    def lines(self) -> list[str]:
        out = self.review.lines()
        if self.plan_error is not None:
            out.append(f"membership: not computed: {self.plan_error}")
        elif self.plan is not None:
            out.extend(plan_lines(self.plan))
        return out


def plan_lines(plan: GroupPlan, limit: int = 10) -> list[str]:
    """A plan as text: counts, then the first members to add and remove."""
    if plan.error is not None:
        return [f"membership: not computed: {plan.error}"]
    out = [f"membership: {plan.members} member(s) (now {plan.current}): {len(plan.add)} to add, "
           f"{len(plan.remove)} to remove"]
    for sign, dns in (("+", plan.add), ("-", plan.remove)):
        out.extend(f"  {sign} {dn}" for dn in dns[:limit])
        if len(dns) > limit:
            out.append(f"  … and {len(dns) - limit} more")
    if plan.refused is not None:
        out.append(f"not applied by an update: {plan.refused}")
    return out


def render_item(field_name: str, item: object) -> str | None:
    if field_name == "queries" and isinstance(item, Mapping):
        return f"{item.get('filter')} under {item.get('base')} ({item.get('scope', 'sub')})"
    return None


def review_changes(ws: Workspace, group: SmartGroup) -> GroupReview:
    """What saving *group* would do, with the membership that would result
    (the members to add and remove, as ``update`` would). A group that could
    not be saved is refused before it is reviewed; a directory that cannot be
    reached leaves the membership out, saying why."""
    check_smart_group(ws, group)
    result = GroupReview(review(NOUN, group, find_group(ws, group.name), render_item))
    try:
        result.plan = plan_groups(ws, group.store, [group])[0]
    except IdsyncError as exc:
        result.plan_error = exc.message
    return result


# ---------------------------------------------------------------- explain


@dataclass
class MemberExplanation:
    """Why an entry is or is not a member, and whether the group lists it now."""

    explanation: Explanation
    in_group_now: bool | None

    @property
    def pending_change(self) -> str | None:
        """What the next update does about this entry, if anything."""
        now, then = self.in_group_now, self.explanation.member
        if now is None or now == then:
            return None
        return "the next update adds it" if then else "the next update removes it"


def explain_member(ws: Workspace, name: str, dn: str) -> MemberExplanation:
    """Why entry *dn* is or is not a member of smart group *name*, evaluated on
    the entry as the store holds it now."""
    authz.require_reader(ws, "smart groups")
    group = load_group(ws, name)
    definition, directory = open_store(ws, group.store)
    try:
        searcher = Searcher(ws, directory, store_base(definition))
        try:
            found = list(directory.search(dn, Scope.BASE, "(objectClass=*)", None))
        except NotFoundError:
            found = []
        attrs: Attrs | None = found[0].attrs if found else None
        join = None
        if group.join is not None:
            j = group.join
            join = JoinRule(j.source, j.column, j.attribute, searcher.source_values(j))
        try:
            in_group: bool | None = normalize_dn(dn) in searcher.current(group)
        except NotFoundError:
            in_group = None
        says = [_returns(directory, dn, q) if attrs is not None else None for q in group.queries]
    finally:
        directory.close()
    explanation = explain(
        dn, attrs,
        queries=[QueryRule(q.base, q.scope, q.filter) for q in group.queries],
        include=group.include, exclude=group.exclude, join=join, directory_says=says,
    )
    return MemberExplanation(explanation, in_group)


def _returns(directory: Directory, dn: str, query: GroupQuery) -> bool | None:
    """Whether the directory returns entry *dn* for *query* (None: not within its base and scope)."""
    if not is_within(dn, query.base, query.scope):
        return None
    return any(True for _entry in directory.search(dn, Scope.BASE, query.filter, ONLY_DNS))


def groups_of_stores(groups: Iterable[SmartGroup]) -> dict[str, list[SmartGroup]]:
    """*groups* by store, in order."""
    out: dict[str, list[SmartGroup]] = {}
    for group in groups:
        out.setdefault(group.store, []).append(group)
    return out
