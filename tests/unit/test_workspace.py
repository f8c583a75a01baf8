"""The workspace a front end works through: who acts, and shared handles."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.services.workspace import Workspace


def test_a_view_acting_for_someone_else_shares_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    ws = Workspace(principal=Principal("alice"), database_url=f"sqlite:///{tmp_path / 'idsync.db'}")
    bob = ws.acting_as(Principal("bob"))
    assert (ws.actor, bob.actor) == ("alice", "bob")
    assert bob.db is ws.db and bob.secrets is ws.secrets
    ws.close()
    assert bob.db is ws.db  # opened again, still shared


def test_a_principal_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        Principal("  ")
