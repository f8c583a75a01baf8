"""What a job keeps between runs: content hashes, and generated passwords.

**Content hashes** (``job_state``) serve changed-only runs by hash: per job
and normalised match key, the hash of the values last written. A run loads
all of a job's hashes once (:meth:`JobStateRepository.hashes`) and saves
the new ones in batches (:meth:`JobStateRepository.save_hashes`).

**Generated passwords** (``generated_passwords``) wait here for delivery to
the job's recipients: one row per created object, the password encrypted
with the installation's :class:`SecretBox` (never in clear, never in a
plan), with the run, DN, key and recipients. Whoever delivers them (the
notifications, or ``idsync run passwords`` shown once) deletes them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from idsync.errors import ConfigError
from idsync.store.secrets import REDACTED, SecretBox
from idsync.store.tables import generated_passwords, job_state, utcnow

CHUNK = 500
"""Keys per DELETE ... IN (...) statement (well under every database's limit on parameters)."""


@dataclass(frozen=True)
class PendingPassword:
    """A generated password waiting for delivery, decrypted."""

    id: int
    run_id: int
    job_name: str
    dn: str
    key: str
    recipients: list[str]
    created_at: datetime
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"PendingPassword(id={self.id}, run_id={self.run_id}, dn={self.dn!r}, "
            f"key={self.key!r}, password={REDACTED!r})"
        )


class JobStateRepository:
    """Reads and writes job state; the caller's session decides when it is committed."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # ------------------------------------------------------------ content hashes

    def hashes(self, job_name: str) -> dict[str, str]:
        """Every stored hash of *job_name*: key → hash (one query)."""
        query = select(job_state.c.key, job_state.c.hash).where(job_state.c.job_name == job_name)
        return {row.key: row.hash for row in self._session.execute(query)}

    def save_hashes(self, job_name: str, items: Sequence[tuple[str, str]]) -> None:
        """Store (key, hash) pairs of *job_name*, replacing the hashes of those keys.

        Portable upsert: the old rows of the batch's keys are deleted, then
        the batch is inserted with one ``executemany``.
        """
        latest = dict(items)
        if not latest:
            return
        keys = list(latest)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            self._session.execute(
                delete(job_state).where(job_state.c.job_name == job_name, job_state.c.key.in_(chunk))
            )
        now = self._clock()
        self._session.execute(
            insert(job_state),
            [{"job_name": job_name, "key": k, "hash": h, "updated_at": now} for k, h in latest.items()],
        )

    def forget(self, job_name: str) -> int:
        """Drop every hash of *job_name*: its next changed-only run compares every record."""
        result = self._session.execute(delete(job_state).where(job_state.c.job_name == job_name))
        return int(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ generated passwords

    def add_passwords(
        self,
        box: SecretBox,
        *,
        run_id: int,
        job_name: str,
        recipients: Sequence[str],
        items: Iterable[tuple[str, str, str]],
    ) -> int:
        """Store generated passwords (dn, key, password) of run *run_id*, each
        encrypted on its own; how many were stored."""
        now = self._clock()
        rows = []
        for dn, key, password in items:
            token = box.encrypt({"password": password})
            assert token is not None
            rows.append(
                {
                    "run_id": run_id,
                    "job_name": job_name,
                    "dn": dn,
                    "key": key,
                    "recipients": list(recipients),
                    "secret": token,
                    "created_at": now,
                }
            )
        if rows:
            self._session.execute(insert(generated_passwords), rows)
        return len(rows)

    def pending_passwords(self, box: SecretBox, run_id: int | None = None) -> builtins.list[PendingPassword]:
        """The passwords waiting for delivery (of one run, or all), oldest first, decrypted."""
        query = select(generated_passwords).order_by(generated_passwords.c.id)
        if run_id is not None:
            query = query.where(generated_passwords.c.run_id == run_id)
        out = []
        for row in self._session.execute(query):
            secret = box.decrypt(row.secret).get("password")
            if secret is None:
                raise ConfigError(f"generated password {row.id} of run {row.run_id} is damaged: it holds no password")
            out.append(
                PendingPassword(
                    id=row.id,
                    run_id=row.run_id,
                    job_name=row.job_name,
                    dn=row.dn,
                    key=row.key,
                    recipients=list(row.recipients or []),
                    created_at=row.created_at,
                    password=secret,
                )
            )
        return out

    def password_count(self, run_id: int) -> int:
        """How many generated passwords of run *run_id* wait for delivery (nothing decrypted)."""
        query = (
            select(func.count())
            .select_from(generated_passwords)
            .where(generated_passwords.c.run_id == run_id)
        )
        return int(self._session.execute(query).scalar_one())

    def delete_passwords(self, ids: Sequence[int]) -> int:
        """Forget delivered passwords; how many rows went."""
        gone = 0
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            result = self._session.execute(delete(generated_passwords).where(generated_passwords.c.id.in_(chunk)))
            gone += int(result.rowcount)  # type: ignore[attr-defined]
        return gone
