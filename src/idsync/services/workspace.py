"""The handle every use case works through: the database, the secret box, who acts."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from functools import cached_property

from idsync.store.db import Database
from idsync.store.secrets import SecretBox


def current_actor() -> str:
    """Who is acting, for the audit log: IDSYNC_ACTOR, else the login name."""
    explicit = os.environ.get("IDSYNC_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class Workspace:
    """One idsync installation as seen by a front end."""

    database_url: str | None = None
    actor: str = field(default_factory=current_actor)

    @cached_property
    def db(self) -> Database:
        database = Database(self.database_url)
        database.ensure_schema()
        return database

    @cached_property
    def secrets(self) -> SecretBox:
        return SecretBox.from_settings()

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
