"""The SQL data source on the real PostgreSQL named by ``IDSYNC_TEST_POSTGRES_URL``.

The module creates a database of its own on that server (and drops it
afterwards). Without the variable the tests are skipped, except in CI
(``CI=true``), where a skipped suite would hide a broken setup and fails.
"""

from __future__ import annotations

import os
import socket
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from idsync.connectors.sql import SqlReader, open_sql_source
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs, Record
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import AuthError, ConfigError, ConnectorError, NotFoundError, TransientError
from idsync.services import definitions, jobs
from idsync.services.workspace import Workspace
from tests.e2e.test_cli import Cli

pytestmark = pytest.mark.postgres

URL_VARIABLE = "IDSYNC_TEST_POSTGRES_URL"
SUFFIX = "dc=example,dc=org"

SETUP = """
CREATE SCHEMA hr;
CREATE TABLE hr.people (
    id integer PRIMARY KEY, first text, last text, mail text, hired date, updated timestamptz,
    salary numeric(10, 2), active boolean, badge bytea, ref uuid, extra jsonb, shift interval, score float8
);
INSERT INTO hr.people VALUES
    (3, 'Cy', 'Ng', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (1, 'Ann', 'Lee', 'ann@example.org', '2021-04-01', '2024-03-01 10:00:00+02', 52000.00, true,
     '\\xdeadbeef', '12345678-1234-5678-1234-567812345678', '{"desk": 12, "tags": ["a"]}', '26 hours', 1.0),
    (2, 'Bob', 'Stone', 'bob@example.org', '2022-05-02', '2024-03-02 00:00:00+00', 61000.50, false,
     NULL, NULL, NULL, '00:30:00', 0.1);
CREATE VIEW hr.active_people AS SELECT id, first, last FROM hr.people WHERE active;
CREATE TABLE "Mixed Case" (id integer);
CREATE SEQUENCE hr.badge_seq;
CREATE TABLE public.big AS SELECT n AS id, 'user' || n || '@example.org' AS mail FROM generate_series(1, 50000) AS n;
"""


def server_url() -> str:
    url = os.environ.get(URL_VARIABLE, "")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{URL_VARIABLE} is not set: CI must run the PostgreSQL tests")
    pytest.skip(f"{URL_VARIABLE} is not set")


@dataclass
class Pg:
    url: URL
    engine: Engine

    @property
    def text_url(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def scalar(self, sql: str) -> object:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(sql, execution_options={"no_parameters": True}).scalar()


@pytest.fixture(scope="module")
def pg() -> Iterator[Pg]:
    server = make_url(server_url())
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"idsync_sql_source_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(SETUP)
        yield Pg(url, engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def reader(pg: Pg, **options: object) -> SqlReader:
    return SqlReader(pg.text_url, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- reading


def test_a_schema_table_is_read_in_key_order_with_typed_values_as_text(pg: Pg) -> None:
    source = reader(pg, table="hr.people")
    assert source.columns() == [
        "id", "first", "last", "mail", "hired", "updated", "salary", "active", "badge", "ref", "extra", "shift", "score",
    ]
    items = list(source.read())
    assert items == [
        Record({"id": "1", "first": "Ann", "last": "Lee", "mail": "ann@example.org", "hired": "2021-04-01",
                "updated": "2024-03-01T08:00:00Z", "salary": "52000", "active": "TRUE", "badge": "deadbeef",
                "ref": "12345678-1234-5678-1234-567812345678", "extra": '{"desk":12,"tags":["a"]}',
                "shift": "26:00:00", "score": "1"}, line=1),
        Record({"id": "2", "first": "Bob", "last": "Stone", "mail": "bob@example.org", "hired": "2022-05-02",
                "updated": "2024-03-02T00:00:00Z", "salary": "61000.5", "active": "FALSE", "badge": "",
                "ref": "", "extra": "", "shift": "0:30:00", "score": "0.1"}, line=2),
        Record({"id": "3", "first": "Cy", "last": "Ng", "mail": "", "hired": "", "updated": "", "salary": "",
                "active": "", "badge": "", "ref": "", "extra": "", "shift": "", "score": ""}, line=3),
    ]
    assert list(reader(pg, table="people", schema="hr").read()) == items


def test_a_view_a_mixed_case_name_and_a_query(pg: Pg) -> None:
    view = reader(pg, table="hr.active_people")
    assert view.test() == (
        f"SQL source {pg.url.render_as_string(hide_password=True)}, table hr.active_people: 3 columns (id, first, last)"
    )
    assert [r.fields["first"] for r in view.read() if isinstance(r, Record)] == ["Ann"]
    assert reader(pg, table="Mixed Case").columns() == ["id"]
    assert reader(pg, table="HR.PEOPLE").columns()[:2] == ["id", "first"]  # found by a unique match
    query = reader(pg, query="SELECT id, first || ' ' || last AS name FROM hr.people WHERE mail LIKE '%@example.org' ORDER BY id")
    assert query.columns() == ["id", "name"]
    assert [r.fields for r in query.read() if isinstance(r, Record)] == [
        {"id": "1", "name": "Ann Lee"}, {"id": "2", "name": "Bob Stone"},
    ]


def test_reads_run_in_a_read_only_transaction(pg: Pg) -> None:
    query = reader(pg, query="SELECT current_setting('transaction_read_only') AS ro")
    assert list(query.read()) == [Record({"ro": "on"}, line=1)]
    sneaky = reader(pg, query="SELECT 1")
    sneaky.query = "WITH u AS (UPDATE hr.people SET mail = 'x' RETURNING id) SELECT id FROM u"  # as if the check had missed it
    with pytest.raises(ConfigError):
        list(sneaky.read())
    # A SELECT can still change things through functions; the transaction refuses.
    with pytest.raises(ConfigError, match=r"tries to write, but a source only reads: cannot execute nextval\(\) in a read-only transaction"):
        list(reader(pg, query="SELECT nextval('hr.badge_seq') AS n").read())
    assert pg.scalar("SELECT count(*) FROM hr.people WHERE mail = 'x'") == 0
    assert pg.scalar("SELECT last_value FROM hr.badge_seq") == 1 and pg.scalar("SELECT is_called FROM hr.badge_seq") is False


def test_rows_stream_through_a_server_side_cursor_in_bounded_memory(pg: Pg) -> None:
    source = reader(pg, table="big", batch_size=500)
    try:
        items = source.read()
        taken = [next(items), next(items)]
        assert taken == [Record({"id": "1", "mail": "user1@example.org"}, line=1),
                         Record({"id": "2", "mail": "user2@example.org"}, line=2)]
        # While the read is open, the server holds a cursor for it and sends batches.
        activity = str(pg.scalar(
            f"SELECT query FROM pg_stat_activity WHERE datname = '{pg.url.database}' AND pid <> pg_backend_pid()"
        ))
        assert activity.startswith("FETCH FORWARD 500 FROM"), activity
        tracemalloc.start()
        try:
            count, last = 2, taken[-1]
            for item in items:
                count, last = count + 1, item
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        source.close()
    assert count == 50_000
    assert isinstance(last, Record) and last.line == 50_000 and last.fields["mail"] == "user50000@example.org"
    assert peak < 3_000_000, f"peak {peak:,} bytes"


def connections_to(pg: Pg) -> object:
    return pg.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{pg.url.database}' AND pid <> pg_backend_pid()")


def test_close_ends_a_read_not_finished(pg: Pg) -> None:
    source = reader(pg, table="big", batch_size=100)
    items = source.read()
    assert next(items).line == 1
    assert connections_to(pg) == 1
    source.close()
    deadline = time.monotonic() + 5
    while connections_to(pg) != 0:
        assert time.monotonic() < deadline, "the source's connection is still open"
        time.sleep(0.02)
    del items


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query": "SELECT nope FROM hr.people"}, 'the query cannot be read: column "nope" does not exist'),
        ({"query": "SELECT * FROM hr.staff"}, 'the query cannot be read: relation "hr.staff" does not exist'),
        ({"query": "SELECT FROM WHERE"}, 'the query cannot be read: syntax error at or near "WHERE"'),
        ({"query": "SELECT 1/0 AS x"}, "the query cannot be read: division by zero"),
        ({"table": "hr.staff"}, "no table or view 'hr.staff'; schema 'hr' has: active_people, people"),
        ({"table": "payroll.staff"}, "no schema 'payroll' (for table 'payroll.staff'); schemas: hr, information_schema, public"),
    ],
)
def test_a_bad_query_or_missing_table_is_a_one_line_config_error(pg: Pg, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        list(reader(pg, **options).read())
    assert caught.value.message == f"SQL source {pg.url.render_as_string(hide_password=True)}: {message}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_connection_failures_have_their_own_classes_and_never_show_the_password(pg: Pg) -> None:
    secret = "pw-not-to-be-seen-91"
    unknown_user = pg.url.set(username=f"nobody_{uuid.uuid4().hex[:8]}", password=None)
    with pytest.raises(AuthError) as auth:
        SqlReader(unknown_user, table="hr.people", password=secret).test()
    assert "the database refused the credentials" in auth.value.message and "does not exist" in auth.value.message
    with pytest.raises(ConnectorError) as missing:
        SqlReader(pg.url.set(database="no_such_database_here", password=None), table="t", password=secret).test()
    assert 'database "no_such_database_here" does not exist' in missing.value.message
    assert not isinstance(missing.value, (NotFoundError, TransientError, AuthError))
    with pytest.raises(TransientError) as down:
        SqlReader(pg.url.set(port=free_port(), password=None), table="t", password=secret).test()
    assert "cannot connect to the database" in down.value.message and "Connection refused" in down.value.message
    for error in (auth.value, missing.value, down.value):
        assert secret not in error.message and ":***@" in error.message and "\n" not in error.message


def test_a_server_that_never_answers_times_out_as_transient(pg: Pg) -> None:
    # A listener that accepts connections and never speaks: connect_timeout ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = pg.url.set(port=silent.getsockname()[1], query={"connect_timeout": "1"})
        with pytest.raises(TransientError, match="cannot connect to the database"):
            SqlReader(url, table="t").test()  # without connect_timeout, pytest's timeout would end it


# ---------------------------------------------------------------- definitions, jobs, CLI


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def test_a_sync_job_from_a_postgresql_query_into_the_embedded_directory(pg: Pg, ws: Workspace, tmp_path: Path) -> None:
    from idsync.connectors.local import LocalDirectory

    dirpath = tmp_path / "dir.db"
    with LocalDirectory(dirpath, SUFFIX) as directory:
        ou = Change(ChangeOp.CREATE, f"ou=People,{SUFFIX}", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]}))
        assert all(o.error is None for o in directory.apply([ou]))
    definitions.save(ws, "store", definitions.parse("store", {"name": "dir", "kind": "local", "path": str(dirpath)}))
    definitions.save(ws, "source", definitions.parse("source", {
        "name": "hr", "kind": "sql", "url": pg.url.set(password=None).render_as_string(hide_password=False),
        "password": "env:HR_DB_PASSWORD",
        "query": "SELECT id, first, last, mail, hired, salary FROM hr.people WHERE id <= 3",
    }))
    os.environ["HR_DB_PASSWORD"] = pg.url.password or "unused-with-trust-auth"
    try:
        jobs.save_job(ws, definitions.parse("job", {
            "name": "people", "source": "hr",
            "destination": {"store": "dir", "container": f"ou=People,{SUFFIX}"},
            "mappings": [
                {"attribute": "uid", "from": "id", "key": True},
                {"attribute": "cn", "join": {"fields": ["first", "last"]}},
                {"attribute": "sn", "from": "last"},
                {"attribute": "mail", "from": "mail"},
                {"attribute": "description", "join": {"fields": ["hired", "salary"], "separator": " "}},
            ],
        }))
        run = jobs.run_job(ws, "people")
        again = jobs.run_job(ws, "people")
    finally:
        del os.environ["HR_DB_PASSWORD"]
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.counts.created == 3
    assert (again.counts.unchanged, again.counts.changed) == (3, 0)
    with LocalDirectory(dirpath, SUFFIX) as directory:
        found = {e.dn: e.attrs for e in directory.search(f"ou=People,{SUFFIX}", filterstr="(objectClass=inetOrgPerson)")}
    assert found[f"uid=1,ou=People,{SUFFIX}"].get_values("description") == ("2021-04-01 52000",)
    assert found[f"uid=2,ou=People,{SUFFIX}"].get_values("mail") == ("bob@example.org",)
    assert found[f"uid=3,ou=People,{SUFFIX}"].get_values("mail") == ()  # NULL: no value


def test_the_cli_takes_the_password_from_stdin_and_never_shows_it(pg: Pg, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    url = pg.url.set(password=None).render_as_string(hide_password=False)
    cli("source", "add", "hr", "--kind", "sql", "--url", url, "--table", "people", "--schema", "hr",
        "--password-stdin", input="pw-typed-on-stdin-55\n")
    shown = cli("source", "show", "hr").stdout
    listed = cli("source", "list").stdout
    tested = cli("source", "test", "hr").stdout
    exported = cli("export").stdout
    assert "13 columns (id, first, last" in tested
    for text in (shown, listed, tested, exported):
        assert "pw-typed-on-stdin-55" not in text
    assert "pw-typed-on-stdin-55" not in "".join(
        p.read_bytes().decode("latin-1") for p in (tmp_path / "home").rglob("*") if p.is_file()
    )
    refused = cli("source", "add", "x", "--kind", "sql", "--url", url.replace("@", ":inline@", 1), "--table", "t", ok=False)
    assert refused.returncode == 1 and "must not hold the password" in refused.stderr


def test_the_factory_gives_the_resolved_password_to_the_driver(pg: Pg) -> None:
    definition = definitions.parse("source", {
        "name": "hr", "kind": "sql", "url": pg.url.set(password=None).render_as_string(hide_password=False),
        "table": "hr.people", "batch_size": 2,
    })
    source = open_sql_source(definition, {"password": "resolved-secret"})
    assert source.batch_size == 2 and "resolved-secret" not in repr(source)
    assert len(list(source.read())) == 3
    source.close()
