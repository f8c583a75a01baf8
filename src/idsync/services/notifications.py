"""Notification use cases: notification servers, test messages, and the
messages a finished run leaves in the outbox.

A collection's notifications go through the notification server of its
destination store(s) (SPEC S1.2, S5.2); :func:`server_of` finds it, with its
password restored, and :func:`send_test` checks it end to end.
:func:`enqueue_run` runs in the transaction that finishes a collection run:
it decides which triggers fired, renders one message naming them all (what
changed, counted and listed) and writes it for each recipient, with the
run's generated passwords in separate messages, to the outbox. The
sender loop (:mod:`idsync.runtime.sender`) delivers them later, so a mail
server that is down never touches the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from idsync import settings
from idsync.domain.changes import ChangeOp
from idsync.domain.definitions import NotificationServer
from idsync.domain.results import ErrorItem, RunState
from idsync.domain.roles import Role
from idsync.errors import ConfigError, IdsyncError, NotFoundError, TransientError
from idsync.notify import rules, smtp, webhook
from idsync.notify.changes import describe, is_membership
from idsync.notify.events import (
    ERRORS_SHOWN,
    ChangedObject,
    GroupOutcome,
    HeldJob,
    JobOutcome,
    RunEvent,
)
from idsync.notify.render import headline, render, render_passwords
from idsync.services import authz, definitions
from idsync.services.workspace import Workspace
from idsync.store.job_state_repo import JobStateRepository, PendingPassword
from idsync.store.outbox_repo import NewMessage, OutboxRepository, OutboxRow
from idsync.store.plans_repo import PlanRepository
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.secrets import resolve_secret
from idsync.store.smartgroups_repo import SmartGroupResultRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

EMAIL = "email"
WEBHOOK = "webhook"
PASSWORDS = "passwords"
SMART_GROUP_RUN = "smartgroup"
"""The kind of a smart group update's run (:data:`idsync.services.smartgroup_runs.RUN_KIND`)."""


def server_of(ws: Workspace, store: str) -> NotificationServer:
    """The notification server of identity store *store* (with its password)."""
    definition = definitions.load(ws, "store", store).definition
    server: NotificationServer | None = getattr(definition, "notification_server", None)
    if server is None:
        raise ConfigError(
            f"identity store {store!r} has no notification server: add notification_server "
            "(host, sender, ...) to its definition"
        )
    return server


def send_test(ws: Workspace, store: str, to: Sequence[str] = ()) -> str:
    """Send a test message through *store*'s notification server (to *to*, or
    its default recipients); the server's answer in one line."""
    authz.require(ws, Role.OPERATOR, "send test notifications")
    return send_test_through(server_of(ws, store), store, to)


def send_test_through(server: NotificationServer, store: str, to: Sequence[str] = ()) -> str:
    """The test message of :func:`send_test` through *server* (of identity
    store *store*, saved or as edited); the caller checked the role."""
    recipients = smtp.addresses(to) or tuple(server.default_to)
    cc = () if to else tuple(server.default_cc)
    email = smtp.Email(
        to=recipients,
        cc=cc,
        subject=f"[idsync] test message from identity store {store}",
        text=(
            f"This is a test message from idsync, sent through the notification server of "
            f"identity store {store!r} ({server.host}:{server.effective_port}, tls {server.tls}).\n"
            "Notifications of job collections writing to this store will come this way.\n"
        ),
    )
    return smtp.send(server, email)


# ---------------------------------------------------------------- enqueue on run finish


@dataclass(frozen=True)
class OutboxPolicy:
    """How the sender retries: first wait, longest wait, and when it gives up."""

    retry: timedelta
    retry_max: timedelta
    give_up: timedelta

    @classmethod
    def from_settings(cls) -> OutboxPolicy:
        return cls(
            retry=timedelta(seconds=max(1, settings.get_int("outbox_retry_seconds"))),
            retry_max=timedelta(seconds=max(1, settings.get_int("outbox_retry_max_seconds"))),
            give_up=timedelta(seconds=max(1, settings.get_int("outbox_give_up_seconds"))),
        )

    def next_wait(self, attempts: int) -> timedelta:
        """The wait after the *attempts*-th failed attempt: doubling, capped."""
        factor = 2 ** min(max(attempts - 1, 0), 30)
        wait: timedelta = min(self.retry * factor, self.retry_max)
        return wait


def templates_dir() -> Path | None:
    """The operator's template folder (setting notify_templates), if any."""
    value = settings.get("notify_templates")
    return Path(value).expanduser() if value else None


def run_link(run_id: int) -> str | None:
    """The address of run *run_id* in the portal, when base_url is set."""
    base = settings.get("base_url").rstrip("/")
    return f"{base}/runs/{run_id}" if base else None


def changes_shown() -> int:
    """How many changed objects a message lists (setting notify_changes_shown)."""
    return max(0, settings.get_int("notify_changes_shown"))


def enqueue_run(
    ws: Workspace,
    session: Session,
    run_id: int,
    *,
    clock: Callable[[], datetime] = utcnow,
    released_by: int | None = None,
) -> int:
    """Write the notifications of finished collection run *run_id* to the
    outbox, in *session* (the transaction that records the run's final state);
    how many messages were queued.

    Each recipient gets one message for the run, naming every trigger that
    fired. *released_by* is the job run that applied a held job's plan and so
    changed the run's state: its message is a new one, about the release.

    Notifications must never fail a run: any problem is logged on the run and
    the run's result is written all the same (a savepoint keeps a failed
    enqueue from spoiling the transaction). The database going away is not a
    notification problem: the TransientError goes up, so the caller tries the
    whole transaction (the run's result with its messages) again.
    """
    return never_failing(
        session, run_id, f"run {run_id}", lambda: _enqueue(ws, session, run_id, clock, released_by), clock=clock
    )


def never_failing(
    session: Session, run_id: int, what: str, queue: Callable[[], int], *, clock: Callable[[], datetime] = utcnow
) -> int:
    """*queue* (writing messages to the outbox in *session*) in a savepoint;
    how many it queued. Any problem but the database going away is logged
    on run *run_id*, the savepoint rolled back, and 0 returned: what the
    messages are about is written all the same. A TransientError goes up, so
    the caller tries its whole transaction again."""
    try:
        with session.begin_nested():
            return queue()
    except TransientError:
        raise
    except Exception as exc:  # a notification problem never fails what it is about
        message = exc.message if isinstance(exc, IdsyncError) else f"{type(exc).__name__}: {exc}"
        log.warning("%s: notifications not queued: %s", what, message)
        with session.begin_nested():
            about = "" if what == f"run {run_id}" else f"{what}: "  # a run's own log needs no name
            RunRepository(session, clock=clock).log(run_id, "warning", f"{about}notifications not queued: {message}")
        return 0


def _enqueue(
    ws: Workspace, session: Session, run_id: int, clock: Callable[[], datetime], released_by: int | None
) -> int:
    runs = RunRepository(session, clock=clock)
    run = runs.require(run_id)
    if not run.collection_name or run.parent_run_id is not None:
        return 0
    children = runs.children(run_id)
    queued = _enqueue_passwords(ws, session, run, children, clock) if released_by is None else 0
    try:
        collection = definitions.load(ws, "collection", run.collection_name).definition
    except NotFoundError:
        return queued
    settings_ = collection.notifications
    if not settings_.enabled:
        return queued
    event = build_event(session, run, children, released_by=released_by)
    previous = _previous_state(session, run)
    fired = rules.fired(settings_.triggers, event, previous)
    if released_by is not None and not fired and "held" in settings_.triggers:
        fired = ["held"]  # those told of the hold hear of its release
    if not fired:
        return queued
    store = _sending_store(ws, [child.job_name for child in children] or [j.job for j in collection.jobs])
    if store is None:
        runs.log(run_id, "warning", "notifications not queued: no destination store has a notification server")
        return queued
    repo = OutboxRepository(session, clock=clock)
    policy = OutboxPolicy.from_settings()
    folder = templates_dir()
    message = render(event, fired, templates_dir=folder)
    payload = seal(ws, {"subject": message.subject, "text": message.text, "html": message.html})
    # One message per recipient and run: the key names the run's leading
    # trigger (or the release), so the same run is never queued twice.
    key = f"released {released_by}" if released_by is not None else headline(fired)
    sent_to = 0
    for recipient in dict.fromkeys(settings_.recipients):
        new = NewMessage(run_id, run.collection_name, key, EMAIL, recipient, payload, store)
        sent_to += repo.enqueue(new, give_up_after=policy.give_up)
    queued += sent_to
    hook = server_of(ws, store).webhook_url
    if hook:
        for trigger in fired:
            body = webhook.encode(webhook.event_body(event, trigger, message.subject)).decode("utf-8")
            name = trigger if released_by is None else key
            new = NewMessage(run_id, run.collection_name, name, WEBHOOK, hook, seal(ws, {"body": body}), store)
            queued += repo.enqueue(new, give_up_after=policy.give_up)
    if sent_to:
        runs.log(
            run_id, "info",
            f"notifications queued: one message to each of {sent_to} recipient(s) ({', '.join(fired)})",
        )
    return queued


def build_event(
    session: Session, run: RunRow, children: Sequence[RunRow], *, released_by: int | None = None
) -> RunEvent:
    """The snapshot of a finished collection run the rules and templates see."""
    runs = RunRepository(session)
    errors: list[ErrorItem] = []
    total = 0
    for child in children:
        total += runs.error_count(child.id)
        if len(errors) < ERRORS_SHOWN:
            errors.extend(runs.errors(child.id, limit=ERRORS_SHOWN - len(errors)))
    changed, changes_total, memberships = _changed_objects(session, children, changes_shown())
    return RunEvent(
        run_id=run.id,
        collection=run.collection_name or run.job_name,
        state=run.state.value,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts=run.counts,
        jobs=tuple(JobOutcome(c.job_name, c.state.value, c.counts, c.error) for c in children),
        errors=tuple(errors),
        error_total=total,
        error=run.error,
        missed=0,
        link=run_link(run.id),
        requested_by=run.requested_by,
        changes=tuple(changed),
        changes_total=changes_total,
        memberships=memberships,
        held=tuple(
            # A smart group update's held plan is released by its request, not by running a job on it.
            HeldJob(c.job_name, _held_reason(c.error), c.plan_id if c.kind != SMART_GROUP_RUN else None)
            for c in children if c.state is RunState.HELD
        ),
        released_by=released_by,
        groups=tuple(_group_outcomes(session, children)),
    )


def _group_outcomes(session: Session, children: Sequence[RunRow]) -> list[GroupOutcome]:
    """What the run's smart group update jobs did to each group."""
    repo = SmartGroupResultRepository(session)
    return [
        GroupOutcome(child.job_name, r.group, r.dn, r.outcome, r.added, r.removed, r.error)
        for child in children if child.kind == SMART_GROUP_RUN
        for r in repo.of_run(child.id)
    ]


def _held_reason(error: str | None) -> str:
    return (error or "waits for a decision").removeprefix("held: ")


def _changed_objects(
    session: Session, children: Sequence[RunRow], shown: int, page: int = 1000
) -> tuple[list[ChangedObject], int, int]:
    """The first *shown* objects the job runs changed, how many they changed
    in all, and how many of those were membership changes only.

    A job run's plan holds the changes it wrote; a held job's plan holds
    changes not written, so it is left out. Only the first page of each plan
    is read for the list; the updates are read page by page to count the
    membership changes among them.
    """
    plans = PlanRepository(session)
    listed: list[ChangedObject] = []
    total = memberships = 0
    for child in children:
        if child.plan_id is None or child.state in (RunState.HELD, RunState.SKIPPED):
            continue
        plan = plans.get(child.plan_id)
        total += plan.change_count if plan is not None else 0
        if len(listed) < shown:
            for _seq, change in plans.changes(child.plan_id, limit=shown - len(listed)):
                listed.append(describe(child.job_name, change))
        after = -1
        while True:
            batch = plans.changes(child.plan_id, after_seq=after, limit=page, op=ChangeOp.UPDATE)
            if not batch:
                break
            memberships += sum(1 for _seq, change in batch if is_membership(change))
            after = batch[-1][0]
    return listed, max(total, len(listed)), memberships


def _previous_state(session: Session, run: RunRow) -> str | None:
    """The state of the collection's finished run before *run* (skipped ones aside)."""
    for other in RunRepository(session).list(limit=20, collection_name=run.collection_name, kind="collection"):
        if other.id < run.id and other.state.finished and other.state is not RunState.SKIPPED:
            return other.state.value
    return None


def _sending_store(ws: Workspace, job_names: Iterable[str]) -> str | None:
    """The first destination store of the jobs that has a notification server."""
    jobs = {job.name: job for job in definitions.list_definitions(ws, "job")}
    stores = {store.name: store for store in definitions.list_definitions(ws, "store")}
    for name in job_names:
        job = jobs.get(name)
        store = stores.get(job.destination.store) if job is not None else None
        if store is not None and store.notification_server is not None:
            return str(store.name)
    return None


def _enqueue_passwords(
    ws: Workspace, session: Session, run: RunRow, children: Sequence[RunRow], clock: Callable[[], datetime]
) -> int:
    """Generated passwords of the run's jobs: one separate message per
    recipient, through the job's store; delivered rows leave the password
    table (they live on, sealed, in the outbox until sent and purged)."""
    state = JobStateRepository(session, clock=clock)
    repo = OutboxRepository(session, clock=clock)
    policy = OutboxPolicy.from_settings()
    queued = 0
    for child in children:
        pending = state.pending_passwords(ws.secrets, child.id)
        if not pending:
            continue
        store = _sending_store(ws, [child.job_name])
        if store is None:
            continue  # kept for `idsync run passwords`
        by_recipient: dict[str, list[PendingPassword]] = {}
        for item in pending:
            for recipient in item.recipients:
                by_recipient.setdefault(recipient, []).append(item)
        delivered: set[int] = set()
        for recipient, items in by_recipient.items():
            message = render_passwords(
                run.collection_name or run.job_name, child.id,
                [(p.dn, p.key, p.password) for p in items], templates_dir=templates_dir(),
            )
            payload = seal(ws, {"subject": message.subject, "text": message.text, "html": message.html})
            new = NewMessage(child.id, run.collection_name or run.job_name, PASSWORDS, EMAIL, recipient, payload, store)
            queued += repo.enqueue(new, give_up_after=policy.give_up)
            delivered.update(p.id for p in items)
        state.delete_passwords(sorted(delivered))
    return queued


def seal(ws: Workspace, content: dict[str, str]) -> str:
    token = ws.secrets.encrypt(content)
    assert token is not None
    return token


# ---------------------------------------------------------------- delivery


def message_id(ws: Workspace, row: OutboxRow) -> str:
    """The Message-ID of outbox message *row*, ``<outbox.ID.CREATED@INSTALLATION.idsync>``.

    It is made of the row (its id, and when it was queued, so a database
    made again from scratch does not repeat an earlier message's id) and of
    the installation (a name derived from its secret key, the same on every
    node). Every attempt to deliver the row, by any sender, carries the same
    one, and no other message of any installation does: a receiver that gets
    a message twice can tell it is a copy.
    """
    created = row.created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")
    installation = ws.secrets.derive("idsync outbox message id")[:20]
    return f"<outbox.{row.id}.{created}@{installation}.idsync>"


def deliver_email(ws: Workspace, row: OutboxRow, content: dict[str, str]) -> str:
    """Send outbox message *row* through its store's notification server."""
    if not row.store_name:
        raise ConfigError(f"outbox message {row.id} names no identity store to send it through")
    server = server_of(ws, row.store_name)
    email = smtp.Email(
        to=(row.recipient,), subject=content["subject"], text=content["text"], html=content.get("html") or None
    )
    return smtp.send(server, email, message_id=message_id(ws, row))


def deliver_webhook(ws: Workspace, row: OutboxRow, content: dict[str, str]) -> str:
    """POST outbox message *row* to its webhook, signed with the store's current secret."""
    if not row.store_name:
        raise ConfigError(f"outbox message {row.id} names no identity store to sign it with")
    server = server_of(ws, row.store_name)
    if not server.webhook_secret:
        raise ConfigError(
            f"identity store {row.store_name!r} has no webhook_secret",
            field="notification_server.webhook_secret",
            hint="set webhook_secret on the store's notification server, then send the failed messages again",
        )
    return webhook.post(
        row.recipient,
        content["body"].encode("utf-8"),
        resolve_secret(server.webhook_secret),
        delivery=message_id(ws, row).strip("<>"),
        event=row.trigger,
        timeout=server.timeout,
    )
