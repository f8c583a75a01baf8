"""Failures of the idsync database as idsync errors: one line a user can act on.

Every statement, connection and commit of a :class:`~idsync.store.db.Database`
goes through its one SQLAlchemy engine; :func:`translate_errors` hooks the
engine's error event, so a driver failure is translated once, where it
happens (in a session or not, mid-transaction too), instead of being caught
around each call. The driver's exception stays the cause, for the logs.

Translated: what the operator has to deal with — the database cannot be
reached, is locked, is damaged or is not idsync's. Left as they are:
integrity errors, which repositories catch on purpose (a row written twice),
and programming errors (bugs, which keep their traceback).
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DataError, IntegrityError, NotSupportedError, ProgrammingError

from idsync.errors import AuthError, ConfigError, ConnectorError, IdsyncError, TransientError

SQLITE_HEADER = b"SQLite format 3\x00"

NOT_OURS_HINT = "point the database URL at idsync's database, or move this file away"
DAMAGED_HINT = "restore it from a backup"


def translate_errors(engine: Engine, url: URL, file: Path | None) -> None:
    """Make every driver failure of *engine* raise the matching idsync error.

    *file* is the SQLite file, None for PostgreSQL or an in-memory database.
    """

    def on_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return  # the pool is testing a connection: it reconnects by itself
        error = translate(context, url, file)
        if error is not None:
            raise error

    event.listen(engine, "handle_error", on_error)


def translate(context: ExceptionContext, url: URL, file: Path | None) -> IdsyncError | None:
    """The idsync error for the failure in *context*, or None to leave it as it is."""
    original = context.original_exception
    if isinstance(original, OverflowError):  # raised by the driver binding a parameter, before the database sees it
        return ConfigError(
            "a number given is beyond the database's integer range", hint="give an id that a list or a report shows",
        )
    wrapped = context.sqlalchemy_exception
    if wrapped is None or isinstance(wrapped, (IntegrityError, ProgrammingError, DataError, NotSupportedError)):
        return None
    original = context.original_exception
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    detail = lines[0] if lines else type(original).__name__
    if url.password:
        detail = detail.replace(str(url.password), "***")
    if url.get_backend_name() == "sqlite":
        return _sqlite(original, detail, url, file)
    return _postgresql(
        original, detail, url, connecting=context.connection is None, lost=context.is_disconnect
    )


def _sqlite(original: BaseException, detail: str, url: URL, file: Path | None) -> IdsyncError:
    code = str(getattr(original, "sqlite_errorname", ""))
    low = detail.lower()
    where = f"the database file {file}" if file is not None else f"database {url.render_as_string(hide_password=True)}"
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in low:
        return TransientError(
            f"{where} is locked by another process", hint="try again once the other process has finished its write"
        )
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "file is not a database" in low or "malformed" in low:
        if file is not None and not looks_like_sqlite(file):
            return ConfigError(f"{where} is not an idsync database: it is not a SQLite file", hint=NOT_OURS_HINT)
        return ConfigError(f"{where} is damaged: {detail}", hint=DAMAGED_HINT)
    return ConnectorError(f"{where}: {detail}")


def looks_like_sqlite(file: Path) -> bool:
    """True when *file* starts as a SQLite file does (or cannot be read to tell)."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:
        return True
    return head == SQLITE_HEADER or (bool(head) and SQLITE_HEADER.startswith(head))


_SQLSTATE_TRANSIENT = ("08", "40", "53", "57")
"""Connection exception, transaction rollback (serialization, deadlock),
insufficient resources, operator intervention (shutdown, cancel)."""


def _postgresql(original: BaseException, detail: str, url: URL, *, connecting: bool, lost: bool) -> IdsyncError:
    at = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    state = str(getattr(original, "sqlstate", None) or "")
    reason = _reason(detail)
    low = reason.lower()
    if (
        state in ("28P01", "28000")
        or "password authentication failed" in low
        or "no password supplied" in low
        or (connecting and re.search(r'role ".*" does not exist', low))
    ):
        return AuthError(
            f"{at} refused the credentials of user {url.username!r}: {reason}",
            hint="check the user and password of the database URL",
        )
    if state == "3D000" or re.search(r'database ".*" does not exist', low):
        return ConfigError(f"{at} has no database {url.database!r}", hint="create it, or correct the database URL")
    if connecting:
        return TransientError(f"cannot connect to {at}: {reason}", hint="check that the server runs, and its host and port")
    if lost:
        return TransientError(f"lost the connection to {at}: {reason}", hint="try again")
    if state.startswith(_SQLSTATE_TRANSIENT) or not state:
        # No SQLSTATE: the connection itself failed (closed, reset) rather than a statement.
        return TransientError(f"{at}: {reason}", hint="try again")
    return ConnectorError(f"{at}: {reason}")


def _reason(detail: str) -> str:
    """The driver's words without its preamble: 'connection failed: connection
    to server at "h", port 1 failed: Connection refused' says 'Connection refused'."""
    reason = detail.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(?:FATAL|ERROR):\s*", "", reason).strip() or detail
