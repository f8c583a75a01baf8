"""Job collection use cases: check, review, save, list, remove and preview.

Saving a collection goes through :func:`review_changes` first in every
front end: the review says what would be saved and what differs from the
stored version, and nothing is written until the front end calls
:func:`save_collection` after the user confirmed. Running collections is
:mod:`idsync.services.collection_runs`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from idsync.domain.changes import ChangeOp
from idsync.domain.collections import CollectionDefinition
from idsync.domain.dn import normalize_dn, normalized_rdns
from idsync.domain.results import Counts, ErrorItem
from idsync.domain.roles import Role
from idsync.errors import ConfigError, IdsyncError, NotFoundError
from idsync.services import authz, definitions, history, jobs, smartgroups
from idsync.services.review import Review, review
from idsync.services.smartgroups import LinkedPreview
from idsync.services.workspace import Workspace
from idsync.store.plans_repo import PlanRow

NOUN = "job collection"


def check_collection(
    ws: Workspace,
    collection: CollectionDefinition,
    pending: Mapping[str, set[str]] | None = None,
    incoming_stores: Mapping[str, Any] | None = None,
) -> None:
    """The references of a collection must exist: its jobs and its schedule
    (stored, or in *pending*, about to be saved from the same file). Stores
    in *incoming_stores* (saved from the same file) count as they will be.
    Its smart group update jobs must exist and update a destination store
    of its jobs (see :func:`_check_smart_group_jobs`)."""
    label = f"{NOUN} {collection.name!r}"
    pending = pending or {}
    stored_jobs = {job.name for job in definitions.list_definitions(ws, "job")}
    for entry in collection.jobs:
        if entry.job not in stored_jobs and entry.job not in pending.get("job", set()):
            raise ConfigError(f"{label}: job {entry.job!r} does not exist", field="jobs", hint="list the jobs")
    if collection.schedule is not None and collection.schedule not in pending.get("schedule", set()):
        try:
            definitions.load(ws, "schedule", collection.schedule)
        except NotFoundError as exc:
            raise ConfigError(
                f"{label}: schedule {collection.schedule!r} does not exist", field="schedule", hint="list the schedules"
            ) from exc
    if collection.smart_group_jobs:
        _check_smart_group_jobs(ws, collection, label, pending)
    if collection.notifications.enabled:
        _check_notification_servers(ws, collection, label, incoming_stores or {})


def _check_smart_group_jobs(
    ws: Workspace, collection: CollectionDefinition, label: str, pending: Mapping[str, set[str]]
) -> None:
    """Each linked update job exists (stored, or in the same file) and works on
    a destination store of the collection's jobs: the update follows what the
    jobs wrote. Jobs and update jobs not stored yet are checked by name only."""
    stored = {job.name: job for job in definitions.list_definitions(ws, "smart_group_job")}
    destinations = {
        job.destination.store for job in definitions.list_definitions(ws, "job") if job.name in collection.job_names
    }
    for name in collection.smart_group_jobs:
        update = stored.get(name)
        if update is None:
            if name in pending.get("smart_group_job", set()):
                continue
            raise ConfigError(
                f"{label}: smart group update job {name!r} does not exist",
                field="smart_group_jobs", hint="list the smart group update jobs",
            )
        if destinations and update.store not in destinations:
            raise ConfigError(
                f"{label}: smart group update job {name!r} updates identity store {update.store!r}, which no job "
                f"of the collection writes to (its destination store(s): {', '.join(sorted(destinations))})",
                field="smart_group_jobs",
                hint="link an update job of the collection's destination store",
            )


def _check_notification_servers(
    ws: Workspace, collection: CollectionDefinition, label: str, incoming_stores: Mapping[str, Any]
) -> None:
    """Notifications go through the destination stores' notification servers
    (SPEC S5.2): enabling them where a store has none is refused now, not
    discovered at the first run. Jobs not stored yet are checked when they are."""
    stored = {job.name: job for job in definitions.list_definitions(ws, "job")}
    stores = {s.name: s for s in definitions.list_definitions(ws, "store")} | dict(incoming_stores)
    for entry in collection.jobs:
        job = stored.get(entry.job)
        if job is None:
            continue
        store = stores.get(job.destination.store)
        if store is not None and getattr(store, "notification_server", None) is None:
            raise ConfigError(
                f"{label}: notifications cannot be enabled: store {store.name!r} (destination of job "
                f"{entry.job!r}) has no notification server",
                field="notifications",
                hint="add notification_server (host, sender) to the store first, then send a test message through it",
            )


def find_collection(ws: Workspace, name: str) -> CollectionDefinition | None:
    """The stored collection *name*, or None."""
    try:
        return load_collection(ws, name)[1]
    except NotFoundError:
        return None


def load_collection(ws: Workspace, name: str) -> tuple[int, CollectionDefinition]:
    """The id and definition of collection *name* (NotFoundError naming the list command)."""
    loaded = definitions.load(ws, "collection", name)
    return loaded.id, loaded.definition


def list_collections(ws: Workspace) -> list[CollectionDefinition]:
    return list(definitions.list_definitions(ws, "collection"))


def stored_collections(ws: Workspace) -> list[tuple[int, CollectionDefinition]]:
    """Every collection with its id, read at once (a scheduler's tick starts runs of many)."""
    return list(definitions.list_with_ids(ws, "collection"))


def review_changes(ws: Workspace, collection: CollectionDefinition) -> Review:
    """What saving *collection* would do (checked first: a collection that could
    not be saved is refused before it is reviewed)."""
    check_collection(ws, collection)
    return review(NOUN, collection, find_collection(ws, collection.name), render_job)


def render_job(field_name: str, item: object) -> str | None:
    """A collection's job entry as one line of a review: ``hr (on failure: abort)``."""
    if field_name == "jobs" and isinstance(item, Mapping):
        return f"{item.get('job')} (on failure: {item.get('on_failure', 'abort')})"
    return None


def save_collection(ws: Workspace, collection: CollectionDefinition, *, based_on: Collection[str] | None = None) -> str:
    """Check and save; returns "created", "updated" or "unchanged"."""
    check_collection(ws, collection)
    return definitions.save(ws, "collection", collection, based_on=based_on)


def remove_collection(ws: Workspace, name: str) -> None:
    """Remove a collection; its run history is kept."""
    definitions.remove(ws, "collection", name)


def collections_using_schedule(ws: Workspace, schedule: str) -> list[CollectionDefinition]:
    """The targets of a schedule: the collections that name it."""
    return [c for c in list_collections(ws) if c.schedule == schedule]


# ---------------------------------------------------------------- preview


@dataclass
class JobPreview:
    """The plan one job of a collection would follow, or why there is none."""

    job: str
    on_failure: str
    plan: PlanRow | None = None
    errors: list[ErrorItem] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None


@dataclass
class CollectionPreview:
    """What the collection's next run would do, job by job, then what its linked
    smart group update jobs would do after them; nothing is changed."""

    collection: str
    jobs: list[JobPreview]
    counts: Counts
    groups: list[LinkedPreview] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(item.error for item in self.jobs)


def preview_collection(ws: Workspace, name: str) -> CollectionPreview:
    """Compute and store each job's plan, in the collection's order.

    Each plan is computed against the directory as it is now, before any job
    of the collection ran, except for the containers earlier jobs create: a
    job writing into a container that an earlier job's plan creates (its
    ``create_container``, or an object it creates) is previewed as if that
    container existed, empty. A job whose preview fails stops the preview of
    the jobs after it when its on_failure is abort, as a run would.

    The linked smart group update jobs are previewed last, on the directory
    as the jobs' plans would leave it (:func:`smartgroups.preview_linked`):
    a user a job would create who matches a group's query is a member to add."""
    authz.require(ws, Role.OPERATOR, "preview collections")
    _id, collection = load_collection(ws, name)
    items: list[JobPreview] = []
    total = Counts()
    stopped: str | None = None
    wanted = _containers_wanted(ws, collection)
    created: dict[str, set[str]] = {}  # store -> DNs of wanted containers that earlier plans create
    for position, entry in enumerate(collection.jobs):
        item = JobPreview(entry.job, entry.on_failure)
        items.append(item)
        if stopped is not None:
            item.skipped = stopped
            continue
        store = wanted.stores.get(entry.job)
        try:
            result = jobs.preview_job(ws, entry.job, assumed_containers=created.get(store or "", set()))
        except IdsyncError as exc:
            item.error = exc.message
            if entry.on_failure == "abort":
                stopped = f"not previewed: job {entry.job!r} failed and its on_failure is abort"
            continue
        item.plan, item.errors = result.plan, result.errors
        total.add(result.plan.counts)
        later = {wanted.stores.get(e.job) for e in collection.jobs[position + 1 :]}
        if store is not None and store in later and result.plan.counts.created:
            created.setdefault(store, set()).update(_creates_among(ws, result.plan.id, wanted.dns.get(store, set())))
    plans: dict[str, list[int]] = {}
    for item in items:
        store = wanted.stores.get(item.job)
        if store is not None and item.plan is not None:
            plans.setdefault(store, []).append(item.plan.id)
    groups = smartgroups.preview_linked(ws, collection.smart_group_jobs, plans) if collection.smart_group_jobs else []
    return CollectionPreview(collection.name, items, total, groups)


@dataclass
class _Wanted:
    """The destination store of each job, and per store the normalised DNs of
    the jobs' containers and search bases with all their ancestors."""

    stores: dict[str, str] = field(default_factory=dict)
    dns: dict[str, set[str]] = field(default_factory=dict)


def _containers_wanted(ws: Workspace, collection: CollectionDefinition) -> _Wanted:
    wanted = _Wanted()
    for entry in collection.jobs:
        try:
            job = jobs.load_job(ws, entry.job)[1]
        except NotFoundError:
            continue  # its preview says so
        dest = job.destination
        wanted.stores[entry.job] = dest.store
        dns = wanted.dns.setdefault(dest.store, set())
        for dn in {dest.container, dest.search_base}:
            try:
                rdns = normalized_rdns(dn)
            except ConfigError:
                continue  # its preview says so
            dns.update(",".join(rdns[i:]) for i in range(len(rdns)))
    return wanted


def _creates_among(ws: Workspace, plan_id: int, dns: set[str]) -> set[str]:
    """The DNs among *dns* (normalised) that plan *plan_id* creates (its creates read page by page)."""
    if not dns:
        return set()
    return {dn for change in history.plan_changes(ws, plan_id, op=ChangeOp.CREATE) if (dn := normalize_dn(change.dn)) in dns}
