"""JSON logs at the most talkative level never carry a secret: a collection
run as a real process, reading a PostgreSQL query with its password and
writing to slapd with its bind password, logs lines naming its run,
collection, job and node, and neither password anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.e2e.test_cli import Cli
from tests.integration.test_sql_source import Pg, pg
from tests.servers.slapd import SlapdServer

__all__ = ["pg"]

pytestmark = [pytest.mark.slapd, pytest.mark.postgres]

SQL_PASSWORD = "sql-source-pw-7e41b9"  # the server trusts loopback: it is sent, and ignored


def test_a_run_under_debug_json_logs_names_its_ids_and_no_password(
    pg: Pg, slapd: SlapdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("IDSYNC_HOME", str(home))
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    container = slapd.new_container("logs")
    ws = Workspace(principal=Principal("tester"))
    try:
        for kind, body in (
            ("store", {"name": "ldap", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn,
                       "bind_password": slapd.root_pw}),
            ("source", {"name": "hr", "kind": "sql", "password": SQL_PASSWORD,
                        "url": pg.url.set(password=None).render_as_string(hide_password=False),
                        "query": "SELECT id, first, last FROM hr.people"}),
            ("job", {"name": "people", "source": "hr", "destination": {"store": "ldap", "container": container},
                     "mappings": [{"attribute": "uid", "from": "id", "key": True},
                                  {"attribute": "cn", "join": {"fields": ["first", "last"]}},
                                  {"attribute": "sn", "from": "last"}]}),
            ("collection", {"name": "hr-to-ldap", "jobs": ["people"]}),
        ):
            definitions.save(ws, kind, definitions.parse(kind, body))  # type: ignore[arg-type]
    finally:
        ws.close()

    cli = Cli(home)
    cli.env |= {"IDSYNC_LOG_FORMAT": "json", "IDSYNC_LOG_LEVEL": "DEBUG"}
    done = cli("collection", "run", "hr-to-ldap")

    assert "succeeded" in done.stdout, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    items = [json.loads(line) for line in lines]  # one JSON object a line, nothing else
    in_run = [item for item in items if {"run_id", "collection", "job", "node"} <= set(item)]
    assert in_run, lines
    assert {item["collection"] for item in in_run} == {"hr-to-ldap"}
    assert {item["job"] for item in in_run} == {"people"}
    assert any("bound to" in item["message"] for item in in_run)  # the LDAP bind is logged, its password not
    for secret in (slapd.root_pw, SQL_PASSWORD):
        assert secret not in done.stderr
        assert secret not in done.stdout
