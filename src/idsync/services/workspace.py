"""The handle every use case works through: the database, the secret box, who acts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from idsync.domain.principals import Principal
from idsync.store.db import Database
from idsync.store.secrets import SecretBox, count_encrypted


@dataclass
class _Handles:
    """The database and secret box of one installation, opened on first use."""

    db: Database | None = None
    secrets: SecretBox | None = None


@dataclass(kw_only=True)
class Workspace:
    """One idsync installation as seen by a front end, acting for *principal*.

    The principal is required: each front end resolves who acts and says so
    here; services read it from ``ws.principal`` and never from the process's
    environment. A front end serving several people (the REST API) keeps one
    workspace and hands each request :meth:`acting_as` view of it, which shares
    the database connections and the secret box.
    """

    principal: Principal
    database_url: str | None = None
    _handles: _Handles = field(default_factory=_Handles, repr=False, compare=False)

    @property
    def actor(self) -> str:
        """The principal's name, as recorded on runs, plans and the audit log."""
        return self.principal.name

    def acting_as(self, principal: Principal) -> Workspace:
        """This workspace, acting for *principal*: same database, same secrets."""
        return dataclasses.replace(self, principal=principal)

    @property
    def db(self) -> Database:
        if self._handles.db is None:
            database = Database(self.database_url)
            database.ensure_schema()
            self._handles.db = database
        return self._handles.db

    @property
    def secrets(self) -> SecretBox:
        if self._handles.secrets is None:
            # A key is made only while nothing is encrypted with a lost one.
            self._handles.secrets = SecretBox.from_settings(encrypted=self._count_encrypted)
        return self._handles.secrets

    def _count_encrypted(self) -> int:
        with self.db.session() as session:
            return count_encrypted(session)

    def close(self) -> None:
        database, self._handles.db = self._handles.db, None
        if database is not None:
            database.dispose()
