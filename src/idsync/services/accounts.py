"""Which idsync user an operating-system account acts as, read on every command.

Kept apart from sign-in (passwords, directory binds), whose imports a
command line that only needs the account's mapping should not pay for at
each start.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from idsync.domain.principals import Principal
from idsync.errors import IdsyncError
from idsync.services.workspace import Workspace
from idsync.store.db import Database
from idsync.store.users_repo import UserRepository


def os_account_principal(ws: Workspace) -> Principal:
    """Who the operating-system account ``ws.principal`` acts as: the idsync
    user mapped to it (``os_user``), else the account itself.

    The database is read as it is, neither created, migrated nor checked,
    so that upgrading an old schema keeps working; a database that cannot be
    read leaves the account as it is, and the command meets the error itself.
    """
    if ws.principal.kind != "os-user":
        return ws.principal
    database: Database | None = None
    try:
        database = Database(ws.database_url)
        if not inspect(database.engine).has_table("users"):
            return ws.principal
        with database.session() as session:
            user = UserRepository(session).by_os_user(ws.principal.name)
    except (IdsyncError, SQLAlchemyError):
        return ws.principal
    finally:
        if database is not None:
            database.dispose()
    return Principal(user.name, "user") if user is not None else ws.principal
