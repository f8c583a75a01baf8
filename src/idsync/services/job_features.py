"""What a run of a job needs besides its plan: the changed-only state, the
passwords of new objects, and the generated passwords waiting for delivery.

- :func:`update_filter` builds the engine's view of a changed-only job: the
  watermark of its timestamp (when the last successful run read the source)
  or its stored content hashes, loaded once, saved in batches.
- :func:`apply_steps` gives a run the steps done around each write: hashes
  confirmed by successful writes, passwords added to creates on their way to
  the directory (generated ones stored encrypted for delivery).
- :func:`take_passwords` shows a run's generated passwords once to the person
  who ran it, then forgets them (until the notifications deliver them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from idsync.domain.definitions import JobDefinition
from idsync.engine.hashing import job_fingerprint
from idsync.engine.passwords import GeneratedPassword, PasswordWriter
from idsync.engine.runner import ApplyStep
from idsync.engine.update_mode import HashSink, HashState, TimestampRule, UpdateFilter
from idsync.errors import ConfigError, PermissionDeniedError
from idsync.services.workspace import Workspace
from idsync.store.definitions_repo import DefinitionRepository
from idsync.store.job_state_repo import JobStateRepository, PendingPassword
from idsync.store.plans_repo import PlanRepository
from idsync.store.runs_repo import RunRepository
from idsync.store.secrets import resolve_secret

HASH_BATCH = 1000
"""Content hashes saved per transaction."""

PASSWORD_BATCH = 100
"""Generated passwords stored per transaction."""


def watermark(ws: Workspace, job_name: str) -> datetime | None:
    """When the last successful run of *job_name* read its source: records
    changed after it need a look. None (look at everything) without such a
    run, or when the job was edited since (its mappings may differ)."""
    with ws.db.session() as session:
        last = RunRepository(session).last_successful(job_name)
        if last is None or last.started_at is None:
            return None
        read_at = last.started_at
        if last.plan_id is not None:
            # A run that applied a stored plan read the source when the plan was computed.
            plan = PlanRepository(session).get(last.plan_id)
            if plan is not None and plan.created_at < read_at:
                read_at = plan.created_at
        job = DefinitionRepository(session, "job").get(job_name)
    if job is not None and job.updated_at > read_at:
        return None
    return read_at


def update_filter(ws: Workspace, job: JobDefinition, *, keep: bool, full: bool = False) -> UpdateFilter | None:
    """What a changed-only run of *job* may skip; None for ``update_mode: all``.

    *keep* saves the content hashes confirmed by the run (False for a
    preview, which writes nothing). *full* looks at every record once (and,
    by hash, stores fresh hashes for all of them).
    """
    spec = job.changed_by
    if job.update_mode != "changed" or spec is None:
        return None
    if not spec.hash:
        return UpdateFilter(timestamps=TimestampRule(spec, None if full else watermark(ws, job.name)))
    known: dict[str, str] = {}
    if not full:
        with ws.db.session() as session:
            known = JobStateRepository(session).hashes(job.name)
    sink = _hash_sink(ws, job.name) if keep else None
    return UpdateFilter(hashes=HashState(known, job_fingerprint(job), sink, HASH_BATCH))


def _hash_sink(ws: Workspace, job_name: str) -> HashSink:
    def save(items: Sequence[tuple[str, str]]) -> None:
        with ws.db.session() as session:
            JobStateRepository(session).save_hashes(job_name, items)

    return save


def apply_steps(ws: Workspace, job: JobDefinition, run_id: int, update: UpdateFilter | None) -> list[ApplyStep]:
    """The steps of a run around each write, in order: content hashes
    confirmed by writes, then the passwords of new objects."""
    steps: list[ApplyStep] = []
    if update is not None and update.hashes is not None:
        steps.append(update.hashes)
    writer = password_writer(ws, job, run_id)
    if writer is not None:
        steps.append(writer)
    return steps


def password_writer(ws: Workspace, job: JobDefinition, run_id: int) -> PasswordWriter | None:
    """Adds the job's password to every create of run *run_id*; generated ones
    are stored encrypted, with the job's recipients, for delivery."""
    spec = job.passwords
    if spec is None:
        return None
    fixed = resolve_secret(spec.fixed) if spec.fixed is not None and spec.generate is None else None
    if fixed is None and spec.generate is None:
        raise ConfigError(
            f"job {job.name!r}: passwords has neither a fixed password nor generate rules; "
            "give passwords.fixed (a secret or env:NAME) or passwords.generate"
        )

    def store(items: Sequence[GeneratedPassword]) -> None:
        with ws.db.session() as session:
            JobStateRepository(session).add_passwords(
                ws.secrets,
                run_id=run_id,
                job_name=job.name,
                recipients=spec.recipients,
                items=[(p.dn, p.key, p.password) for p in items],
            )

    return PasswordWriter(spec, store, fixed=fixed, batch_size=PASSWORD_BATCH)


def password_count(ws: Workspace, run_id: int) -> int:
    """How many generated passwords of run *run_id* wait for delivery."""
    with ws.db.session() as session:
        RunRepository(session).require(run_id)
        return JobStateRepository(session).password_count(run_id)


def take_passwords(ws: Workspace, run_id: int) -> list[PendingPassword]:
    """The generated passwords of run *run_id*, decrypted, and deleted in the
    same transaction: they can be taken once. Only the person who ran the
    job may take them (until the notifications deliver them to the recipients)."""
    with ws.db.session() as session:
        run = RunRepository(session).require(run_id)
        if run.requested_by and run.requested_by != ws.actor:
            raise PermissionDeniedError(
                f"the passwords of run {run_id} can be shown only to {run.requested_by!r}, who ran it "
                f"(you are {ws.actor!r})"
            )
        repo = JobStateRepository(session)
        pending = repo.pending_passwords(ws.secrets, run_id)
        repo.delete_passwords([p.id for p in pending])
    return pending
