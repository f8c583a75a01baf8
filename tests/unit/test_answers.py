"""Each answer of a wizard checked on its own, as the CLI and the portal ask them."""

from __future__ import annotations

import pytest

from idsync.errors import ConfigError
from idsync.services import answers
from tests.scheduler_world import World


def test_a_new_name_must_be_valid_and_free(world: World) -> None:
    assert answers.new_name(world.ws, "collection", " nightly ") == "nightly"
    with pytest.raises(ConfigError, match="is not a valid name"):
        answers.new_name(world.ws, "collection", "bad name!")
    with pytest.raises(ConfigError, match="a sync job named 'people' exists"):
        answers.new_name(world.ws, "job", "people")


def test_named_jobs_must_exist_and_the_error_lists_them(world: World) -> None:
    assert answers.existing(world.ws, "job", ["people", "ou"]) == ["people", "ou"]
    with pytest.raises(ConfigError, match=r"there is no sync job 'peeple' \(there are: ou, people\)"):
        answers.existing(world.ws, "job", ["ou", "peeple"])


@pytest.mark.parametrize(("text", "expected"), [("a", "abort"), ("Continue", "continue"), (" c ", "continue")])
def test_on_failure_takes_a_prefix(text: str, expected: str) -> None:
    assert answers.on_failure(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give at least one e-mail address"),
        ("ops-at-example.org", "'ops-at-example.org' is not an e-mail address"),
        ("a@example.org, A@example.org", "listed twice"),
    ],
)
def test_recipients_are_checked_as_given(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        answers.email_addresses(text)


def test_notification_triggers_are_known_and_distinct() -> None:
    assert answers.notify_triggers(["failed", "errors"]) == ["failed", "errors"]
    for names, message in (([], "choose at least one"), (["sometimes"], "is not a notification trigger"),
                           (["failed", "failed"], "listed twice")):
        with pytest.raises(ConfigError, match=message):
            answers.notify_triggers(names)
