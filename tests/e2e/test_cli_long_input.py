"""A command given a huge argument answers in one short line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_a_name_of_100000_characters_is_not_echoed_back_whole(cli: Cli) -> None:
    shown = cli("job", "show", "a" * 100_000, ok=False)
    assert shown.returncode == 6
    assert shown.stderr.splitlines() == [
        f"idsync: error: no job named '{'a' * 80}…' (100,000 characters)",
        "hint: list the jobs (`idsync job list`)",
    ]
