"""Settings as ``idsync settings`` shows them: no secret in clear."""

from __future__ import annotations

import pytest

from idsync import settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://idsync:s3cr%40t@db.example.org:5432/idsync",
         "postgresql+psycopg://idsync:***@db.example.org:5432/idsync"),
        ("postgresql://idsync@db/idsync", "postgresql://idsync@db/idsync"),
        ("sqlite:////var/lib/idsync/idsync.db", "sqlite:////var/lib/idsync/idsync.db"),
        ("postgresql://:only-password@db/x", "postgresql://:***@db/x"),
    ],
)
def test_the_database_url_is_shown_without_its_password(
    url: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_DATABASE_URL", url)
    assert settings._BY_NAME["database_url"].shown() == shown


def test_the_secret_key_is_shown_only_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_SECRET_KEY", "k" * 44)
    assert settings._BY_NAME["secret_key"].shown() == "(set)"
    monkeypatch.delenv("IDSYNC_SECRET_KEY")
    assert settings._BY_NAME["secret_key"].shown() == ""
