"""What a user sees when a command fails: one line, a hint line, an exit code a script can test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_an_object_that_does_not_exist_exits_6_with_the_command_that_lists_them(cli: Cli) -> None:
    missing = cli("job", "show", "nope", ok=False)
    assert missing.returncode == 6
    assert missing.stderr.splitlines() == ["idsync: error: no job named 'nope'", "hint: list the jobs (`idsync job list`)"]
    retried = cli("outbox", "retry", "41", ok=False)
    assert retried.returncode == 6
    assert retried.stderr.splitlines() == [
        "idsync: error: no outbox message 41", "hint: list the outbox messages (`idsync outbox list`)",
    ]


def test_an_error_without_a_hint_is_one_line_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    missing = cli("apply", "-f", str(tmp_path / "nope.yaml"), ok=False)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"idsync: error: {tmp_path / 'nope.yaml'}: no such file"]
