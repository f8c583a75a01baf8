"""Composing a store from a front end's fields: notification server and every
other field, reviewed with secrets masked before anything is saved."""

from __future__ import annotations

import re

import pytest

from idsync.errors import ConfigError
from idsync.services import definitions, store_edits
from idsync.services.store_edits import StoreEdit
from tests.scheduler_world import World


def test_an_edit_changes_the_named_server_fields_and_keeps_the_rest(world: World) -> None:
    current = store_edits.load_store(world.ws, "dir")
    edited = store_edits.edit_store(current, StoreEdit(
        fields={"description": "people"},
        notification={"port": 2525, "default_to": ["ops@example.org"], "username": "bot", "password": "s3cret",
                       "allow_plaintext_login": True},
    ))
    server = edited.notification_server
    assert (server.host, server.port, server.tls, server.username) == ("127.0.0.1", 2525, "none", "bot")
    assert server.default_to == ["ops@example.org"] and edited.description == "people"
    review = store_edits.review_changes(world.ws, edited)
    assert {c.field for c in review.changes} == {
        "description", "notification_server.port", "notification_server.username", "notification_server.password",
        "notification_server.default_to", "notification_server.allow_plaintext_login",
    }
    assert "s3cret" not in "\n".join(review.lines())
    assert "    now: ********" in review.lines()
    assert store_edits.save_store(world.ws, edited) == "updated"
    assert definitions.load(world.ws, "store", "dir").secrets["notification_server.password"] == "s3cret"


def test_a_changed_secret_shows_as_changed_never_as_its_text(world: World) -> None:
    current = store_edits.load_store(world.ws, "dir")
    first = store_edits.edit_store(current, StoreEdit(notification={"tls": "starttls", "username": "bot", "password": "one"}))
    store_edits.save_store(world.ws, first)
    second = store_edits.edit_store(first, StoreEdit(notification={"password": "two"}))
    lines = store_edits.review_changes(world.ws, second).lines()
    assert "    was: ********" in lines and "    now: ******** (changed)" in lines
    assert not any(line.endswith((": one", ": two")) for line in lines)


def test_a_stored_secret_not_given_again_is_shown_as_kept(world: World) -> None:
    current = store_edits.load_store(world.ws, "dir")
    store_edits.save_store(world.ws, store_edits.edit_store(
        current, StoreEdit(notification={"tls": "starttls", "username": "bot", "password": "one"})))
    again = store_edits.new_store("dir", "local", StoreEdit(fields={"path": current.path, "suffix": current.suffix},
                                  notification={"host": "127.0.0.1", "port": 9, "sender": "idsync@example.org",
                                                "username": "bot"}))
    changes = {c.field for c in store_edits.review_changes(world.ws, again).changes}
    assert "notification_server.password" not in changes


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (StoreEdit(fields={"url": "ldap://x"}), "url does not apply to a local store (ldap stores only)"),
        (StoreEdit(fields={"colour": "red"}), "colour does not apply to a local store (not a store field)"),
        (StoreEdit(fields={"kind": "ldap"}), "the kind of a store cannot be changed"),
        (StoreEdit(notification={"tls": "sometimes"}), "notification_server.tls"),
        (StoreEdit(notification={"port": 2525}, remove_notification=True), "or remove it, not both"),
        (StoreEdit(), "nothing to change was given"),
    ],
)
def test_bad_store_edits_are_one_config_error(world: World, edit: StoreEdit, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        store_edits.edit_store(store_edits.load_store(world.ws, "dir"), edit)


def test_the_notification_server_can_be_removed_and_added_again(world: World) -> None:
    current = store_edits.load_store(world.ws, "dir")
    removed = store_edits.edit_store(current, StoreEdit(remove_notification=True))
    assert removed.notification_server is None
    store_edits.save_store(world.ws, removed)
    with pytest.raises(ConfigError, match="sender"):
        store_edits.edit_store(removed, StoreEdit(notification={"host": "mail.example.org"}))
    added = store_edits.edit_store(removed, StoreEdit(notification={"host": "mail.example.org", "sender": "a@example.org"}))
    assert added.notification_server.effective_port == 587


def test_a_new_ldap_store_takes_its_server_fields_and_clears_empty_optionals() -> None:
    store = store_edits.new_store("corp", "ldap", StoreEdit(
        fields={"url": "ldaps://ldap.example.org", "base_dn": ""},
        notification={"host": "mail.example.org", "sender": "idsync@example.org", "tls": "implicit"},
    ))
    assert store.base_dn is None and store.notification_server.effective_port == 465
