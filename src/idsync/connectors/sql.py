"""Database tables, views and queries as a data source, through SQLAlchemy.

Any database SQLAlchemy reaches by URL can be read (SQLite and PostgreSQL
are tested; others need their driver installed). The source reads only:

- a query must be one ``SELECT`` (or ``WITH ... SELECT``) statement, checked
  before it is sent (:func:`read_only_query`); PostgreSQL runs it, and table
  reads, in a ``READ ONLY`` transaction, and a SQLite file is opened with a
  read-only connection, so the database refuses writes a check missed;
- a table (or view) name is looked up in the database's catalogue and read
  through SQLAlchemy's quoting, never pasted into SQL text. Its rows come in
  primary-key order when it has one, so row numbers are stable.

Rows are streamed: a server-side cursor where the driver has one
(``stream_results``), fetched ``batch_size`` at a time, so memory does not
grow with the table. Values arrive as the driver returns them and become
text predictably (:func:`value_text`): numbers without a spurious ``.0`` or
an exponent, dates in ISO 8601, binary data in hexadecimal, NULL as ``""``.

The password is a secret: the stored URL never holds it; it is put into the
URL object only to connect, and every message shows the URL with the
password hidden (and has it scrubbed, should a driver quote it).
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import MetaData, Table, create_engine, event, inspect, select, type_coerce
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    NoSuchTableError,
    SQLAlchemyError,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.types import NullType

from idsync import settings
from idsync.connectors.excel import cell_text, datetime_text
from idsync.connectors.files import open_source_file
from idsync.domain.definitions import SqlSource
from idsync.domain.entry import Record
from idsync.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    IdsyncError,
    RecordError,
    TransientError,
)

_SHOWN = 12
_CONNECT_TIMEOUT = 10

# ---------------------------------------------------------------- values as text


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent and without trailing fractional zeros: ``1.50`` → ``1.5``, ``1E+3`` → ``1000``."""
    if not value.is_finite():
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def value_text(value: object) -> str:
    """A database value as record text.

    The rules of the Excel source (:func:`idsync.connectors.excel.cell_text`)
    for numbers, booleans, times and durations, and: a DATE → ``2024-03-01``
    and a TIMESTAMP → ``2024-03-01T00:00:00`` always (the column's type
    decides, not the value); timestamps with a time zone in UTC with ``Z``;
    decimals as :func:`decimal_text`; binary data as lower-case hexadecimal;
    UUIDs in their usual form; JSON documents and arrays as compact JSON.
    """
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is Decimal:
        return decimal_text(value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    if isinstance(value, Decimal):
        return decimal_text(value)
    return cell_text(value)


def _json_default(value: object) -> object:
    if isinstance(value, date | time | timedelta | Decimal | uuid.UUID | bytes):
        return value_text(value)
    return str(value)


# ---------------------------------------------------------------- read-only queries

_WRITING_WORDS = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|TRUNCATE|DROP|ALTER|CREATE|GRANT|REVOKE|INTO|ATTACH|DETACH)\b",
    re.IGNORECASE,
)
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")


def _skeleton(sql: str) -> str:
    """*sql* with comments, string literals and quoted identifiers blanked out
    (same length, so positions still match the original); ConfigError when one
    is never closed, since what follows it cannot be checked."""
    out = list(sql)
    i, n = 0, len(sql)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] not in "\r\n":
                out[k] = " "

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise _unclosed("comment /*")
            blank(i, j)
            i = j
        elif c in "'\"`":
            backslash = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            j = i + 1
            while j < n:
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                raise _unclosed(f"quote {c}")
            blank(i, j + 1)
            i = j + 1
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)) and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            end = sql.find(m.group(0), m.end())
            if end < 0:
                raise _unclosed(f"dollar quote {m.group(0)}")
            end += len(m.group(0))
            blank(i, end)
            i = end
        else:
            i += 1
    return "".join(out)


def _unclosed(what: str) -> ConfigError:
    return ConfigError(f"the query has a {what} that is never closed")


def read_only_query(sql: str) -> str:
    """*sql* without a trailing ``;`` when it is one SELECT (or WITH ... SELECT)
    statement that writes nothing; ConfigError saying why otherwise.

    This catches mistakes before anything is sent; the database's read-only
    transaction or connection is the guard that cannot be talked around.
    """
    skeleton = _skeleton(sql)
    statements = [part for part in skeleton.split(";") if part.strip()]
    if not statements:
        raise ConfigError("the query is empty: give one SELECT statement")
    if len(statements) > 1:
        raise ConfigError("the query holds several statements: give exactly one SELECT statement")
    first = _FIRST_WORD.match(statements[0])
    word = first.group(1).upper() if first else ""
    if word not in ("SELECT", "WITH"):
        raise ConfigError(
            f"the query starts with {word or statements[0].strip()[:20]!r}: a source reads only, "
            "so it must be one SELECT (or WITH ... SELECT) statement"
        )
    writing = _WRITING_WORDS.search(statements[0])
    if writing:
        raise ConfigError(
            f"the query contains {writing.group(1).upper()}: a source reads only, so the query must not "
            "write, lock or create anything (quote a column named like that keyword)"
        )
    end = skeleton.rfind(";")
    return (sql[:end] if end >= 0 and not skeleton[end + 1 :].strip() else sql).strip()


# ---------------------------------------------------------------- the reader


class SqlReader:
    """A table, view or query of a database read as a stream of records.

    Give exactly one of ``table`` (optionally ``schema.table``, or with
    ``schema``) and ``query``. ``password`` is put into the URL to connect
    and nowhere else.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        password: str | None = None,
        table: str | None = None,
        query: str | None = None,
        schema: str | None = None,
        batch_size: int = 1000,
    ) -> None:
        try:
            parsed = make_url(url) if isinstance(url, str) else url
        except ArgumentError as exc:
            raise ConfigError(f"SQL source: the URL {_hide_in_text(str(url))!r} is not an SQLAlchemy URL "
                              "(e.g. postgresql+psycopg://user@host/db, sqlite:///file.db)") from exc
        self._password = password or parsed.password
        if password:
            parsed = parsed.set(password=password)
        self._url = parsed
        self.shown_url = parsed.render_as_string(hide_password=True)
        self._where = f"SQL source {self.shown_url}"
        if (table is None) == (query is None):
            raise ConfigError(f"{self._where}: give exactly one of table or query")
        if batch_size < 1:
            raise ConfigError(f"{self._where}: batch_size must be at least 1")
        self.table = table.strip() if table is not None else None
        self.schema = schema
        self.query = None
        if query is not None:
            try:
                self.query = read_only_query(query)
            except ConfigError as exc:
                raise ConfigError(f"{self._where}: {exc.message}") from None
        self.batch_size = batch_size
        self._engine: Engine | None = None
        # Open connections, with the result being read on each (closed first:
        # SQLite keeps a file open while a statement on it is unfinished).
        self._connections: dict[Connection, CursorResult[Any] | None] = {}
        self._undecodable = 0

    def __repr__(self) -> str:
        what = f"table={self.table!r}" if self.table is not None else "query=..."
        return f"SqlReader({self.shown_url!r}, {what})"

    @property
    def backend(self) -> str:
        return self._url.get_backend_name()

    # ------------------------------------------------------------ the Source protocol

    def read(self) -> Iterator[Record | RecordError]:
        """Connect and start the query (raising on source-level problems);
        then an iterator over the records."""
        conn = self._connect()
        try:
            result, names = self._execute(conn)
        except BaseException:
            self._close_connection(conn)
            raise
        return self._rows(conn, result, names)

    def columns(self) -> list[str]:
        """The column names: the table's, or those of the query's result."""
        conn = self._connect()
        try:
            if self.table is not None:
                return [c.name for c in self._reflect(conn).columns]
            result, names = self._execute(conn)
            result.close()
            return names
        finally:
            self._close_connection(conn)

    def test(self) -> str:
        """Connect and look up the table (or start the query); a one-line description."""
        names = self.columns()
        what = f"table {self._qualified()}" if self.table is not None else "query"
        return f"{self._where}, {what}: {len(names)} columns ({', '.join(names[:_SHOWN])}{', ...' if len(names) > _SHOWN else ''})"

    def close(self) -> None:
        """Close the connections of reads not iterated to the end, and the engine."""
        for conn in list(self._connections):
            self._close_connection(conn)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ------------------------------------------------------------ connecting

    def _make_engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        url, options = self._url, {}
        if self.backend == "sqlite":
            url = self._sqlite_read_only(url)
        elif self.backend == "postgresql" and "connect_timeout" not in url.query:
            options["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT}
        try:
            engine = create_engine(url, poolclass=NullPool, **options)
        except NoSuchModuleError as exc:
            raise ConfigError(
                f"{self._where}: unknown kind of database {self._url.drivername!r} "
                "(e.g. postgresql+psycopg, mysql+pymysql, mssql+pyodbc, oracle+oracledb, sqlite)"
            ) from exc
        except ImportError as exc:
            raise ConfigError(
                f"{self._where}: the database driver {exc.name or self._url.drivername!r} is not installed; "
                "install the package that provides it (for postgresql+psycopg: pip install 'idsync[postgres]')"
            ) from exc
        except (ArgumentError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self._where}: the URL cannot be used: {self._scrub(str(exc))}") from exc
        if self.backend == "sqlite" and self._url.get_driver_name() == "pysqlite":
            event.listen(engine, "connect", self._on_sqlite_connect)
        self._engine = engine
        return engine

    def _sqlite_read_only(self, url: URL) -> URL:
        """The URL of the SQLite file opened read-only; a missing file is an error
        (SQLite would otherwise create an empty database and read nothing)."""
        database = url.database or ""
        if self._url.get_driver_name() != "pysqlite" or database in ("", ":memory:") or database.startswith("file:"):
            return url
        path = Path(database)
        open_source_file(path, "SQLite database", "check the source's URL", mode="rb").close()
        return url.set(database="file:" + quote(str(path)), query={**url.query, "mode": "ro", "uri": "true"})

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # Text that is not valid UTF-8 would make sqlite3 raise in the middle of
        # the result; decoded leniently, it is counted and reported for its row.
        def text(raw: bytes) -> str:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                self._undecodable += 1
                return raw.decode("utf-8", "surrogateescape")

        dbapi_connection.text_factory = text

    def _connect(self) -> Connection:
        engine = self._make_engine()
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise self._error(exc, connecting=True) from exc
        except SQLAlchemyError as exc:
            raise ConnectorError(f"{self._where}: cannot connect: {self._scrub(str(exc))}") from exc
        self._connections[conn] = None
        try:
            if self.backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        except DBAPIError as exc:
            self._close_connection(conn)
            raise self._error(exc) from exc
        return conn

    def _close_connection(self, conn: Connection) -> None:
        result = self._connections.pop(conn, None)
        if result is not None:
            with contextlib.suppress(SQLAlchemyError, sqlite3.Error):
                result.close()
        with contextlib.suppress(SQLAlchemyError):  # a connection already lost has nothing to release
            conn.close()

    # ------------------------------------------------------------ querying

    def _qualified(self) -> str:
        assert self.table is not None
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def _reflect(self, conn: Connection) -> Table:
        """The table or view, looked up in the catalogue: exactly, else by a
        unique case-insensitive match of the schema and of the name (an
        unquoted ``People`` is ``people`` to PostgreSQL)."""
        assert self.table is not None
        schema, name = self.schema, self.table
        if schema is None and "." in name:
            schema, name = name.rsplit(".", 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # columns of types SQLAlchemy does not know are read as they come
                try:
                    return Table(name, MetaData(), schema=schema, autoload_with=conn, resolve_fks=False)
                except NoSuchTableError:
                    pass
                if schema is not None:
                    schemas = inspect(conn).get_schema_names()
                    if schema not in schemas:
                        same_schema = [s for s in schemas if s.casefold() == schema.casefold()]
                        if len(same_schema) != 1:
                            raise ConfigError(
                                f"{self._where}: no schema {schema!r} (for table {schema + '.' + name!r}); "
                                f"schemas: {', '.join(schemas)}"
                            )
                        schema = same_schema[0]
                known = self._tables(conn, schema)
                same = [n for n in known if n.casefold() == name.casefold()]
                if name in known or len(same) == 1:
                    return Table(name if name in known else same[0], MetaData(), schema=schema,
                                 autoload_with=conn, resolve_fks=False)
                raise self._no_table(schema, name, known)
        except DBAPIError as exc:
            raise self._error(exc) from exc

    @staticmethod
    def _tables(conn: Connection, schema: str | None) -> list[str]:
        found = inspect(conn)
        return sorted({*found.get_table_names(schema=schema), *found.get_view_names(schema=schema)})

    def _no_table(self, schema: str | None, name: str, known: list[str]) -> ConfigError:
        qualified = f"{schema}.{name}" if schema else name
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        where = f"schema {schema!r}" if schema else "the database"
        return ConfigError(
            f"{self._where}: no table or view {qualified!r}; "
            + (f"{where} has: {listed}" if known else f"{where} has no tables or views")
        )

    def _execute(self, conn: Connection) -> tuple[CursorResult[Any], list[str]]:
        streamed = {"stream_results": True, "yield_per": self.batch_size}
        try:
            if self.table is not None:
                table = self._reflect(conn)
                # Columns read untyped: values come as the driver returns them,
                # not re-parsed by SQLAlchemy (which fails on odd stored text).
                statement = select(*(type_coerce(c, NullType()).label(c.name) for c in table.columns))
                primary_key = list(table.primary_key.columns)
                if primary_key:
                    statement = statement.order_by(*primary_key)
                result: CursorResult[Any] = conn.execute(statement, execution_options=streamed)
            else:
                assert self.query is not None
                result = conn.exec_driver_sql(self.query, execution_options={**streamed, "no_parameters": True})
        except DBAPIError as exc:
            raise self._error(exc) from exc
        except IdsyncError:
            raise
        except SQLAlchemyError as exc:
            raise ConnectorError(f"{self._where}: the read failed: {self._scrub(str(exc).splitlines()[0])}") from exc
        if not result.returns_rows:
            result.close()
            raise ConfigError(f"{self._where}: the query returns no rows (it must be a SELECT statement)")
        columns = result.keys()
        names = [str(k) for k in columns]
        self._connections[conn] = result
        self._check_names(names)
        return result, names

    def _check_names(self, names: Sequence[str]) -> None:
        seen: dict[str, int] = {}
        for i, n in enumerate(names, start=1):
            if n in seen:
                raise ConfigError(
                    f"{self._where}: the result has two columns named {n!r} (columns {seen[n]} and {i}); "
                    "name them apart with AS"
                )
            seen[n] = i

    def _rows(self, conn: Connection, result: CursorResult[Any], names: list[str]) -> Iterator[Record | RecordError]:
        """The records, 1-based positions as lines. Kept lean: it runs once per row."""
        position = 0
        bad = self._undecodable
        try:
            for position, row in enumerate(result, start=1):
                values = [v if type(v) is str else value_text(v) for v in row]
                if self._undecodable != bad:
                    bad = self._undecodable
                    yield self._undecodable_row(values, names, position)
                    continue
                yield Record(dict(zip(names, values, strict=True)), position)
        except DBAPIError as exc:
            raise self._error(exc, row=position + 1) from exc
        except (UnicodeError, ValueError, SQLAlchemyError) as exc:
            raise ConnectorError(
                f"{self._where}: row {position + 1} cannot be read: {self._scrub(str(exc).splitlines()[0])}"
            ) from exc
        finally:
            result.close()
            self._close_connection(conn)

    def _undecodable_row(self, values: list[str], names: list[str], position: int) -> RecordError:
        for name, value in zip(names, values, strict=True):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                shown = value.encode("utf-8", "surrogateescape")[:40]
                return RecordError(
                    f"row {position}, column {name}: the text is not valid UTF-8 ({shown!r}); "
                    "fix the value in the database, or read the column as a BLOB",
                    line=position,
                )
        return RecordError(f"row {position}: a text value is not valid UTF-8", line=position)  # pragma: no cover

    # ------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _error(self, exc: DBAPIError, *, connecting: bool = False, row: int | None = None) -> IdsyncError:
        """A driver error as one line of the right class, the password hidden."""
        orig = exc.orig
        lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
        detail = self._scrub(lines[0] if lines else type(orig).__name__)
        detail = re.sub(r"^(connection failed: |\(\w+\) )", "", detail)
        low = detail.lower()
        state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
        where = self._where + (f": row {row}" if row else "")
        if state in ("28P01", "28000") or any(
            s in low for s in ("password authentication failed", "authentication failed", "no password supplied",
                               "access denied for user", "login failed")
        ) or (connecting and re.search(r'role ".*" does not exist', low)):
            return AuthError(f"{where}: the database refused the credentials: {detail} (check the user and password)")
        if state == "3D000" or re.search(r'database ".*" does not exist', low):
            # The source exists; the database its URL names does not: the source cannot be read.
            return ConnectorError(f"{where}: {detail} (check the database name in the URL)")
        if "file is not a database" in low:
            return ConnectorError(f"{where}: the file is not a SQLite database")
        if "database is locked" in low or state.startswith(("08", "57P", "53")):
            return TransientError(f"{where}: {detail} (try again later)")
        if state == "25006" or "readonly database" in low or "read-only transaction" in low:
            return ConfigError(f"{where}: the query tries to write, but a source only reads: {detail}")
        if connecting or (type(exc).__name__ == "OperationalError" and _unreachable(low)):
            return TransientError(
                f"{where}: cannot connect to the database: {detail} (check the host and port, and that the server runs)"
            )
        if state.startswith(("42", "22", "0A")) or type(exc).__name__ in ("ProgrammingError", "DataError") or (
            self.backend == "sqlite" and type(exc).__name__ == "OperationalError"
        ):
            what = "the table" if self.table is not None else "the query"
            return ConfigError(f"{where}: {what} cannot be read: {detail}")
        return ConnectorError(f"{where}: the read failed: {detail}")


def _unreachable(low: str) -> bool:
    return any(
        s in low
        for s in ("connection refused", "could not connect", "timeout", "timed out", "server closed the connection",
                  "could not translate host name", "name or service not known", "connection reset", "no route to host")
    )


def _hide_in_text(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def resolve_url(url: str) -> URL:
    """*url* parsed; a relative SQLite file is under IDSYNC_HOME (``~`` expanded)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"SQL source: the URL {_hide_in_text(url)!r} is not an SQLAlchemy URL") from exc
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        if not path.is_absolute():
            path = settings.home() / path
        parsed = parsed.set(database=str(path))
    return parsed


def open_sql_source(definition: SqlSource, secrets: Mapping[str, str]) -> SqlReader:
    """The reader for an SQL source definition; ``secrets["password"]`` is the
    resolved password, when there is one."""
    return SqlReader(
        resolve_url(definition.url),
        password=secrets.get("password") or None,
        table=definition.table,
        query=definition.query,
        schema=definition.schema_name,
        batch_size=definition.batch_size,
    )
