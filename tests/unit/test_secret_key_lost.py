"""A lost key file is reported, never silently replaced; an export needs no key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from idsync.domain.principals import Principal
from idsync.errors import ConfigError
from idsync.services import definitions, yamlio
from idsync.services.workspace import Workspace

SQL = {"name": "hr", "kind": "sql", "url": "postgresql+psycopg://app@db.example.org/hr", "table": "people"}
CSV = {"name": "staff", "kind": "csv", "path": "/data/staff.csv"}


@pytest.fixture
def home(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return tmp_home


def workspace() -> Workspace:
    return Workspace(principal=Principal("tester"))


def save_sources(ws: Workspace, password: str = "pw-42") -> None:
    definitions.save(ws, "source", definitions.parse("source", {**SQL, "password": password}))
    definitions.save(ws, "source", definitions.parse("source", CSV))


def test_a_missing_key_file_is_not_replaced_while_secrets_need_it(home: Path) -> None:
    ws = workspace()
    save_sources(ws)
    ws.close()
    key_file = home / "secret.key"
    key_file.unlink()
    again = workspace()
    with pytest.raises(ConfigError) as caught:
        definitions.load(again, "source", "hr")
    assert caught.value.message == (
        f"the secret key file {key_file} is missing, but 1 encrypted secret(s) in the database "
        "were saved with the key it held; a new key would not read them"
    )
    assert caught.value.hint == "restore the key file from a backup, or give its key in IDSYNC_SECRET_KEY"
    assert not key_file.exists()  # no new key to make the loss permanent
    again.close()


def test_a_key_file_is_created_when_nothing_needs_the_old_one(home: Path) -> None:
    ws = workspace()
    definitions.save(ws, "source", definitions.parse("source", CSV))
    definitions.save(ws, "source", definitions.parse("source", {**SQL, "password": "pw-42"}))
    assert (home / "secret.key").exists()
    assert definitions.load(ws, "source", "hr").secrets == {"password": "pw-42"}
    ws.close()


def test_an_export_needs_no_secret_key(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    ws = workspace()
    save_sources(ws)
    definitions.save(ws, "source", definitions.parse("source", {**SQL, "name": "hr2", "password": "env:HR_PW"}))
    ws.close()
    (home / "secret.key").unlink()
    again = workspace()
    with caplog.at_level(logging.WARNING):
        exported = yaml.safe_load(yamlio.export_all(again))
    sources = {item["name"]: item for item in exported["sources"]}
    assert sorted(sources) == ["hr", "hr2", "staff"]
    assert "password" not in sources["hr"] and "password" not in sources["hr2"]
    assert sources["staff"]["path"] == "/data/staff.csv"
    # The env reference was inside the encrypted secrets: left out, and said so.
    assert any("'hr2' is exported without its env references" in r.getMessage() for r in caplog.records)
    assert not (home / "secret.key").exists()
    again.close()
