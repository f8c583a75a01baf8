"""Choosing where runs execute, the faster schedule clock tests use, and
workers refused where they cannot work (SQLite), in one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idsync.cli.app import app
from idsync.errors import ConfigError
from idsync.runtime.node import schedule_clock, workers_mode
from idsync.store.db import Database
from idsync.store.job_queue import _migrations_after, require_postgres


def test_the_workers_mode_comes_from_the_option_then_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert workers_mode(None) == "in-process"
    monkeypatch.setenv("IDSYNC_WORKERS", "external")
    assert workers_mode(None) == "external"
    assert workers_mode("In-Process") == "in-process"
    with pytest.raises(ConfigError, match="workers 'elsewhere' is not known: use in-process or external"):
        workers_mode("elsewhere")


def test_the_schedule_clock_is_real_time_until_its_start_then_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    assert abs((schedule_clock()() - datetime.now(UTC)).total_seconds()) < 1
    past = datetime.now(UTC) - timedelta(seconds=10)
    monkeypatch.setenv("IDSYNC_CLOCK_SPEED", "6")
    monkeypatch.setenv("IDSYNC_CLOCK_START", f"{past.timestamp():.3f}")
    ahead = schedule_clock()() - datetime.now(UTC)
    assert timedelta(seconds=49) < ahead < timedelta(seconds=52)  # 10 s at 6x: 60 s of schedule time
    monkeypatch.setenv("IDSYNC_CLOCK_START", f"{(past + timedelta(minutes=1)).timestamp():.3f}")
    assert abs((schedule_clock()() - datetime.now(UTC)).total_seconds()) < 1


def test_workers_are_refused_on_sqlite_in_one_line(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'idsync.db'}")
    try:
        with pytest.raises(ConfigError) as caught:
            require_postgres(db)
    finally:
        db.dispose()
    assert caught.value.message.startswith("workers need PostgreSQL: set IDSYNC_DATABASE_URL=postgresql+psycopg://")
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "args",
    [
        ["worker"], ["scheduler", "--workers", "external", "--once"], ["serve", "--workers", "external", "--port", "0"],
        ["serve", "--workers", "external", "--no-scheduler", "--port", "0"],  # its API defers runs all the same
    ],
)
def test_the_commands_refuse_workers_on_sqlite(tmp_home: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError), result.output
    assert result.exception.message.startswith("workers need PostgreSQL")


def test_an_upgrade_applies_the_queue_migrations_after_the_installed_version(tmp_path: Path) -> None:
    for name in ("02.14.01_01_a.sql", "03.00.00_01_pre_b.sql", "03.00.00_50_post_b.sql", "03.04.00_01_c.sql",
                 "03.05.00_01_d.sql"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert [p.name for p in _migrations_after("3.0.0", "3.4.1", tmp_path)] == ["03.04.00_01_c.sql"]
    assert [p.name for p in _migrations_after("2.15.0", "3.0.0", tmp_path)] == [
        "03.00.00_01_pre_b.sql", "03.00.00_50_post_b.sql"
    ]
    assert _migrations_after("3.10.0", "3.10.0", tmp_path) == []


def test_an_api_deferring_runs_is_refused_on_sqlite_and_an_unknown_place_at_once(tmp_path: Path) -> None:
    from idsync.api.app import create_app
    from idsync.api.state import ApiConfig
    from idsync.domain.principals import Principal
    from idsync.services.workspace import Workspace

    with pytest.raises(ConfigError, match="runs 'elsewhere' is not known: use in-process or external"):
        ApiConfig(runs="elsewhere")
    ws = Workspace(database_url=f"sqlite:///{tmp_path / 'idsync.db'}", principal=Principal.system("api tests"))
    try:
        with pytest.raises(ConfigError, match=r"^workers need PostgreSQL"):
            create_app(ws, ApiConfig(runs="external"))
    finally:
        ws.close()
