"""Input echoed in an error message is cut to a readable length."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.errors import ConfigError, NotFoundError, clipped, quoted
from idsync.services import definitions, history
from idsync.services.workspace import Workspace

LONG = "a" * 100_000


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    return Workspace(principal=Principal("tester"))


def test_a_short_value_is_quoted_whole_and_a_long_one_is_cut_with_its_length() -> None:
    assert quoted("hr") == "'hr'"
    assert quoted("x" * 80) == repr("x" * 80)
    assert quoted(LONG) == f"'{'a' * 80}…' (100,000 characters)"
    assert clipped("short") == "short"
    assert clipped(LONG, 10) == "aaaaaaaaaa… (100,000 characters)"


def test_a_missing_definition_with_a_huge_name_is_named_in_short(ws: Workspace) -> None:
    with pytest.raises(NotFoundError) as caught:
        definitions.load(ws, "job", LONG)
    assert caught.value.message == f"no job named '{'a' * 80}…' (100,000 characters)"
    ws.close()


def test_a_definition_with_a_huge_name_is_refused_in_a_short_message() -> None:
    with pytest.raises(ConfigError) as caught:
        definitions.parse("source", {"name": LONG, "kind": "csv", "path": "/x.csv"})
    message = caught.value.message
    assert len(message) < 300, message
    assert message.startswith("data source 'aaaa") and "(100,000 characters)" in message
    assert message.endswith("String should have at most 200 characters")


def test_a_huge_unknown_value_is_echoed_in_short(ws: Workspace) -> None:
    with pytest.raises(ConfigError) as caught:
        history.list_runs(ws, state=LONG)
    assert len(caught.value.message) < 300
    ws.close()
