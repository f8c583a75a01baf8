"""The SQL data source on real SQLite files (PostgreSQL: tests/integration/test_sql_source.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from idsync.connectors.base import Source, factory_for
from idsync.connectors.sql import SqlReader, open_sql_source, read_only_query, value_text
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import SqlSource
from idsync.domain.entry import Attrs, Record
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError, TransientError
from idsync.services import definitions, jobs
from idsync.services.workspace import Workspace
from tests.files import open_fds_to

SUFFIX = "dc=example,dc=org"

SCHEMA = """
CREATE TABLE people (
    id INTEGER PRIMARY KEY, first TEXT, last TEXT, mail TEXT, hired DATE, active BOOLEAN,
    salary NUMERIC, photo BLOB
);
CREATE VIEW active_people AS SELECT id, first, last FROM people WHERE active = 1;
CREATE TABLE notes (body TEXT);
"""


def make_db(path: Path, rows: list[tuple[object, ...]] | None = None) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows if rows is not None else [
                (3, "Cy", "Ng", None, "2023-06-03", 0, None, None),
                (1, "Ann", "Lee", "ann@example.org", "2021-04-01", 1, 52000.0, b"\x00\xff"),
                (2, "Bob", "Stone", "bob@example.org", None, 1, 61000.5, None),
            ],
        )
        conn.commit()
    finally:
        conn.close()
    return path


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


# ---------------------------------------------------------------- values as text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("x", "x"),
        (True, "TRUE"),
        (0, "0"),
        (2.0, "2"),
        (0.1, "0.1"),
        (Decimal("1.50"), "1.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-0.00"), "0"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("12345678901234567890.123"), "12345678901234567890.123"),
        (Decimal("NaN"), "NaN"),
        (b"\x00\xffA", "00ff41"),
        (memoryview(b"\xde\xad"), "dead"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ({"a": [1, 2], "b": "é"}, '{"a":[1,2],"b":"é"}'),
        (["x", "y"], '["x","y"]'),
        (date(2024, 3, 1), "2024-03-01"),
        (datetime(2024, 3, 1), "2024-03-01T00:00:00"),
        (datetime(2024, 3, 1, 8, 30), "2024-03-01T08:30:00"),
        (datetime(2024, 3, 1, 10, tzinfo=timezone(timedelta(hours=2))), "2024-03-01T08:00:00Z"),
        (datetime(2024, 3, 1, tzinfo=UTC), "2024-03-01T00:00:00Z"),
        (time(23, 59, 1), "23:59:01"),
        (timedelta(days=1, hours=2), "26:00:00"),
    ],
)
def test_database_values_become_predictable_text(value: object, text: str) -> None:
    assert value_text(value) == text


# ---------------------------------------------------------------- read-only queries


@pytest.mark.parametrize(
    ("sql", "sent"),
    [
        ("SELECT * FROM people", "SELECT * FROM people"),
        ("  select id from people ;  ", "select id from people"),
        ("SELECT 1; -- the end", "SELECT 1"),
        ("WITH x AS (SELECT 1 AS n) SELECT n FROM x", "WITH x AS (SELECT 1 AS n) SELECT n FROM x"),
        ("(SELECT 1)", "(SELECT 1)"),
        ("SELECT 'a;b', 'delete from x' FROM t", "SELECT 'a;b', 'delete from x' FROM t"),
        ("SELECT 'it''s; DROP TABLE t' AS s", "SELECT 'it''s; DROP TABLE t' AS s"),
        ('SELECT "update", "insert" FROM t', 'SELECT "update", "insert" FROM t'),
        ("-- DELETE FROM t;\nSELECT 1", "-- DELETE FROM t;\nSELECT 1"),
        ("/* drop; /* nested */ table */ SELECT 1", "/* drop; /* nested */ table */ SELECT 1"),
        ("SELECT $$ ; insert $$, $tag$ ; drop $tag$", "SELECT $$ ; insert $$, $tag$ ; drop $tag$"),
        ("SELECT E'\\'; delete' AS s", "SELECT E'\\'; delete' AS s"),
        ("SELECT replace(name, 'a', 'b'), updated_at, created_by FROM t", "SELECT replace(name, 'a', 'b'), updated_at, created_by FROM t"),
    ],
)
def test_single_selects_are_accepted(sql: str, sent: str) -> None:
    assert read_only_query(sql) == sent


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("", "the query is empty"),
        ("-- nothing\n ; ", "the query is empty"),
        ("DELETE FROM people", "starts with 'DELETE'"),
        ("update people set x = 1", "starts with 'UPDATE'"),
        ("PRAGMA writable_schema = 1", "starts with 'PRAGMA'"),
        ("SELECT 1; DROP TABLE people", "several statements"),
        ("SELECT 1; SELECT 2;", "several statements"),
        ("WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d", "contains DELETE"),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "contains INSERT"),
        ("SELECT * INTO copy FROM people", "contains INTO"),
        ("SELECT * FROM people FOR UPDATE", "contains UPDATE"),
        ("SELECT 1 /* unclosed ; DROP", "has a comment /* that is never closed"),
        ("SELECT 'a; DROP TABLE t", "has a quote ' that is never closed"),
        ('SELECT "a; DROP TABLE t', "has a quote \" that is never closed"),
        ("SELECT $x$ ; DROP TABLE t", "has a dollar quote $x$ that is never closed"),
    ],
)
def test_anything_but_one_read_only_select_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_only_query(sql)
    assert reason in caught.value.message


# ---------------------------------------------------------------- reading SQLite


def test_a_table_is_read_in_key_order_with_nulls_as_empty_text(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    reader = SqlReader(url_of(db), table="people")
    assert isinstance(reader, Source)
    assert reader.columns() == ["id", "first", "last", "mail", "hired", "active", "salary", "photo"]
    assert list(reader.read()) == [
        Record({"id": "1", "first": "Ann", "last": "Lee", "mail": "ann@example.org", "hired": "2021-04-01",
                "active": "1", "salary": "52000", "photo": "00ff"}, line=1),
        Record({"id": "2", "first": "Bob", "last": "Stone", "mail": "bob@example.org", "hired": "",
                "active": "1", "salary": "61000.5", "photo": ""}, line=2),
        Record({"id": "3", "first": "Cy", "last": "Ng", "mail": "", "hired": "2023-06-03",
                "active": "0", "salary": "", "photo": ""}, line=3),
    ]


def test_test_describes_the_table_or_query(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    assert SqlReader(url_of(db), table="active_people").test() == (
        f"SQL source sqlite:///{db}, table active_people: 3 columns (id, first, last)"
    )
    assert SqlReader(url_of(db), query="SELECT id AS uid FROM people").test() == (
        f"SQL source sqlite:///{db}, query: 1 columns (uid)"
    )


def test_a_view_and_schema_qualified_names_are_read(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    view = [r.fields for r in SqlReader(url_of(db), table="active_people").read() if isinstance(r, Record)]
    assert sorted(f["first"] for f in view) == ["Ann", "Bob"]
    qualified = list(SqlReader(url_of(db), table="main.people").read())
    with_schema = list(SqlReader(url_of(db), table="people", schema="main").read())
    assert qualified == with_schema and len(qualified) == 3


def test_a_query_keeps_percent_signs_and_colons_and_names_its_columns(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    reader = SqlReader(
        url_of(db),
        query="SELECT id, first || ':' || last AS name, '10:30' AS t FROM people WHERE mail LIKE '%@example.org' ORDER BY id;",
    )
    assert reader.columns() == ["id", "name", "t"]
    assert list(reader.read()) == [
        Record({"id": "1", "name": "Ann:Lee", "t": "10:30"}, line=1),
        Record({"id": "2", "name": "Bob:Stone", "t": "10:30"}, line=2),
    ]


def test_a_table_that_does_not_exist_is_a_config_error_listing_the_tables(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    with pytest.raises(ConfigError) as caught:
        SqlReader(url_of(db), table="staff").read()
    assert caught.value.message == (
        f"SQL source sqlite:///{db}: no table or view 'staff'; the database has: active_people, notes, people"
    )
    # A table name is looked up, never pasted into SQL.
    with pytest.raises(ConfigError, match="no table or view 'people; DROP TABLE notes'"):
        SqlReader(url_of(db), table="people; DROP TABLE notes").columns()
    assert SqlReader(url_of(db), table="notes").columns() == ["body"]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("SELECT nope FROM people", "the query cannot be read: no such column: nope"),
        ("SELECT * FROM staff", "the query cannot be read: no such table: staff"),
        ("SELECT * FROM people WHERE", "the query cannot be read: incomplete input"),
        ("SELECT id, first AS id FROM people", "the result has two columns named 'id' (columns 1 and 2)"),
    ],
)
def test_a_bad_query_is_a_one_line_config_error(tmp_path: Path, query: str, detail: str) -> None:
    db = make_db(tmp_path / "hr.db")
    with pytest.raises(ConfigError) as caught:
        SqlReader(url_of(db), query=query).read()
    assert caught.value.message.startswith(f"SQL source sqlite:///{db}: ")
    assert detail in caught.value.message
    assert "\n" not in caught.value.message


def test_a_writing_query_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the query starts with 'DELETE'"):
        SqlReader(url_of(tmp_path / "missing.db"), query="DELETE FROM people")
    assert not (tmp_path / "missing.db").exists()


def test_the_database_refuses_a_write_that_gets_past_the_check(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    reader = SqlReader(url_of(db), query="SELECT 1")
    reader.query = "DELETE FROM people"  # as if the check had missed it
    with pytest.raises(ConfigError, match="the query tries to write, but a source only reads"):
        list(reader.read())
    reader.close()
    assert sqlite3.connect(db).execute("SELECT count(*) FROM people").fetchone() == (3,)


def test_text_that_is_not_utf8_fails_its_row_only(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db", rows=[(1, "Ann", "Lee", None, None, 1, None, None)])
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO people (id, first, last) VALUES (2, CAST(x'4dfc6c6c6572' AS TEXT), 'M')")
    conn.execute("INSERT INTO people (id, first, last) VALUES (3, 'Cy', 'Ng')")
    conn.commit()
    conn.close()
    items = list(SqlReader(url_of(db), table="people").read())
    assert [i.line for i in items if isinstance(i, Record)] == [1, 3]
    (error,) = [i for i in items if isinstance(i, RecordError)]
    assert error.line == 2
    assert error.message == (
        "row 2, column first: the text is not valid UTF-8 (b'M\\xfcller'); "
        "fix the value in the database, or read the column as a BLOB"
    )


# ---------------------------------------------------------------- bad files


def test_a_missing_sqlite_file_is_a_source_failure_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ConnectorError) as caught:
        SqlReader(url_of(missing), table="people").read()
    assert caught.value.message == f"SQLite database not found: {missing} (check the source's URL)"
    assert not isinstance(caught.value, NotFoundError)
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hr.db"
    path.write_text("id,name\n1,Ann\n", encoding="utf-8")
    with pytest.raises(ConnectorError) as caught:
        SqlReader(url_of(path), table="people").test()
    assert caught.value.message == f"SQL source sqlite:///{path}: the file is not a SQLite database"


@contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """*path* locked against reading: mode 000, and for root (who reads any
    file) the effective user switched to nobody for the duration."""
    path.chmod(0)
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)
    try:
        yield
    finally:
        if root:
            os.seteuid(0)
        path.chmod(0o644)


def test_a_locked_file_is_a_clear_permission_error(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    with unreadable(db), pytest.raises(ConnectorError) as caught:
        SqlReader(url_of(db), table="people").read()
    assert caught.value.message == f"SQLite database {db} cannot be read: permission denied (check the file's permissions)"


def test_a_database_locked_by_a_writer_is_transient(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TransientError, match="database is locked \\(try again later\\)"):
            SqlReader(f"{url_of(db)}?timeout=0.05", table="people").read()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_close_releases_reads_not_finished(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    reader = SqlReader(url_of(db), table="people", batch_size=1)
    items = reader.read()
    assert next(items) == Record(
        {"id": "1", "first": "Ann", "last": "Lee", "mail": "ann@example.org", "hired": "2021-04-01",
         "active": "1", "salary": "52000", "photo": "00ff"}, line=1,
    )
    assert open_fds_to(db) == 1
    reader.close()
    assert open_fds_to(db) == 0


def people_table(path: Path, rows: int) -> Path:
    """A database whose ``people`` holds *rows* numbered rows."""
    db = make_db(path, rows=[])
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO people (id, first, last, mail) VALUES (?, ?, ?, ?)",
            ((i, f"First{i}", f"Last{i}", f"user{i}@example.org") for i in range(1, rows + 1)),
        )
    return db


# ---------------------------------------------------------------- definitions, secrets, factory


def test_definitions_keep_the_password_out_of_the_url() -> None:
    with pytest.raises(ConfigError, match=r"url: .*must not hold the password"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "postgresql://u:pw@h/db", "table": "t"})
    with pytest.raises(ConfigError, match="must not hold the password"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "mysql://u@h/db?password=pw", "table": "t"})
    with pytest.raises(ConfigError, match=r"exactly one of table .* or query .* \(has both\)"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "sqlite:///x.db", "table": "t", "query": "SELECT 1"})
    with pytest.raises(ConfigError, match="exactly one of table"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match="schema applies to a table"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "sqlite:///x.db", "query": "SELECT 1", "schema": "s"})
    with pytest.raises(ConfigError, match="must be an SQLAlchemy URL"):
        definitions.parse("source", {"name": "db", "kind": "sql", "url": "hr.db", "table": "t"})
    parsed = definitions.parse("source", {"name": "db", "kind": "sql", "url": "sqlite:///x.db", "table": "t", "schema": "main"})
    assert isinstance(parsed, SqlSource) and parsed.schema_name == "main"
    assert definitions.public_body(parsed) == {"name": "db", "kind": "sql", "url": "sqlite:///x.db", "table": "t", "schema": "main"}


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def test_the_password_is_stored_as_a_secret_and_exported_only_as_a_reference(ws: Workspace, tmp_home: Path) -> None:
    source = {"name": "db", "kind": "sql", "url": "postgresql+psycopg://app@db.example.org/hr", "table": "people"}
    definitions.save(ws, "source", definitions.parse("source", {**source, "password": "pw-in-clear-42"}))
    assert "password" not in definitions.exportable(ws, "source", "db")
    assert definitions.load(ws, "source", "db").secrets == {"password": "pw-in-clear-42"}
    ws.db.dispose()
    for stored in tmp_home.rglob("*"):
        if stored.is_file():
            assert b"pw-in-clear-42" not in stored.read_bytes(), stored
    definitions.save(ws, "source", definitions.parse("source", {**source, "password": "env:HR_DB_PASSWORD"}))
    assert definitions.exportable(ws, "source", "db")["password"] == "env:HR_DB_PASSWORD"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_unreachable_server_is_transient_and_the_password_never_shows(ws: Workspace) -> None:
    port = free_port()
    definition = definitions.parse("source", {
        "name": "db", "kind": "sql", "url": f"postgresql+psycopg://app@127.0.0.1:{port}/hr", "table": "people",
    })
    reader = open_sql_source(definition, {"password": "pw-never-shown-7"})
    with pytest.raises(TransientError) as caught:
        reader.test()
    message = caught.value.message
    assert message.startswith(f"SQL source postgresql+psycopg://app:***@127.0.0.1:{port}/hr: cannot connect to the database: ")
    assert "Connection refused" in message and "\n" not in message
    assert "pw-never-shown-7" not in message and "pw-never-shown-7" not in repr(reader)


def test_an_unknown_dialect_or_missing_driver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown kind of database 'nosuchdb'"):
        SqlReader("nosuchdb://h/x", table="t").test()
    pytest.importorskip("sqlalchemy.dialects.mysql")
    if importlib.util.find_spec("pymysql") is None:
        with pytest.raises(ConfigError, match="the database driver 'pymysql' is not installed"):
            SqlReader("mysql+pymysql://u@h/x", table="t", password="pw").test()


def test_the_factory_resolves_a_relative_sqlite_file_under_the_home(tmp_home: Path) -> None:
    make_db(tmp_home / "hr.db")
    definition = definitions.parse("source", {"name": "hr", "kind": "sql", "url": "sqlite:///hr.db", "table": "people"})
    reader = factory_for("sql")(definition, {})
    assert reader.shown_url == f"sqlite:///{tmp_home / 'hr.db'}"
    assert len(list(reader.read())) == 3
    reader.close()


# ---------------------------------------------------------------- a real sync job


def test_a_sync_job_from_a_sqlite_table_into_the_embedded_directory(ws: Workspace, tmp_path: Path) -> None:
    from idsync.connectors.local import LocalDirectory

    db = make_db(tmp_path / "hr.db")
    dirpath = tmp_path / "dir.db"
    with LocalDirectory(dirpath, SUFFIX) as directory:
        ou = Change(ChangeOp.CREATE, f"ou=People,{SUFFIX}", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]}))
        assert all(o.error is None for o in directory.apply([ou]))
    definitions.save(ws, "store", definitions.parse("store", {"name": "dir", "kind": "local", "path": str(dirpath)}))
    definitions.save(ws, "source", definitions.parse("source", {"name": "hr", "kind": "sql", "url": url_of(db), "table": "people"}))
    jobs.save_job(ws, definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "dir", "container": f"ou=People,{SUFFIX}"},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
            {"attribute": "mail", "from": "mail"},
            {"attribute": "description", "from": "hired"},
        ],
        "actions": {"on_missing": "delete"},
    }))
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.counts.created == 3
    with LocalDirectory(dirpath, SUFFIX) as directory:
        found = {e.dn: e.attrs for e in directory.search(f"ou=People,{SUFFIX}", filterstr="(objectClass=inetOrgPerson)")}
    assert found[f"uid=1,ou=People,{SUFFIX}"].get_values("mail") == ("ann@example.org",)
    assert found[f"uid=1,ou=People,{SUFFIX}"].get_values("description") == ("2021-04-01",)
    # NULLs write no value.
    assert found[f"uid=3,ou=People,{SUFFIX}"].get_values("mail") == ()
    assert found[f"uid=2,ou=People,{SUFFIX}"].get_values("description") == ()
    assert found[f"uid=3,ou=People,{SUFFIX}"].get_values("cn") == ("Cy Ng",)

    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM people WHERE id = 2")
    conn.execute("UPDATE people SET mail = 'cy@example.org' WHERE id = 3")
    conn.commit()
    conn.close()
    second = jobs.run_job(ws, "people")
    assert (second.counts.deleted, second.counts.updated, second.counts.unchanged) == (1, 1, 1), second
    with LocalDirectory(dirpath, SUFFIX) as directory:
        (cy,) = directory.search(f"ou=People,{SUFFIX}", filterstr="(uid=3)", attributes=["mail"])
    assert cy.attrs.get_values("mail") == ("cy@example.org",)
