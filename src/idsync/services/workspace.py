"""The handle every use case works through: the database, the secret box, who acts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

from idsync.domain.principals import Principal
from idsync.store.db import Database
from idsync.store.secrets import SecretBox, count_encrypted


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
    _shared: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def actor(self) -> str:
        """The principal's name, as recorded on runs, plans and the audit log."""
        return self.principal.name

    def acting_as(self, principal: Principal) -> Workspace:
        """This workspace, acting for *principal*: same database, same secrets."""
        view = dataclasses.replace(self, principal=principal)
        view._shared = self._shared
        return view

    @cached_property
    def db(self) -> Database:
        shared = self._shared.get("db")
        if isinstance(shared, Database):
            return shared
        database = Database(self.database_url)
        database.ensure_schema()
        self._shared["db"] = database
        return database

    @cached_property
    def secrets(self) -> SecretBox:
        shared = self._shared.get("secrets")
        if isinstance(shared, SecretBox):
            return shared
        box = SecretBox.from_settings(encrypted=self._count_encrypted)
        self._shared["secrets"] = box
        return box

    def _count_encrypted(self) -> int:
        with self.db.session() as session:
            return count_encrypted(session)

    def close(self) -> None:
        database = self._shared.pop("db", None)
        if isinstance(database, Database):
            database.dispose()
        self.__dict__.pop("db", None)
