"""Editing definitions as whole forms: secrets kept or never borrowed,
sealed between steps, a stale edit refused; the store, source and job forms'
reading of posted fields; the mapping editor's rows and buttons."""

from __future__ import annotations

from typing import Any

import pytest

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import ConfigError, PermissionDeniedError, StateConflictError
from idsync.portal import job_forms
from idsync.portal.form_fields import NOTIFICATION, WORKFLOW, read_body
from idsync.portal.web import Form
from idsync.services import definition_edits, definitions, users
from tests.scheduler_world import World

SECRET = "typed-secret-42"


def form(**fields: Any) -> Form:
    return Form({name.replace("__", "."): value if isinstance(value, list) else [value] for name, value in fields.items()})


def corp(**extra: Any) -> dict[str, Any]:
    return {"name": "corp", "kind": "ldap", "url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin", **extra}


def test_an_edit_keeps_a_secret_left_empty_and_a_new_definition_never_borrows_one(world: World) -> None:
    definitions.save(world.ws, "store", definitions.parse("store", corp(bind_password=SECRET)))
    edit = definition_edits.editable(world.ws, "store", "corp")
    assert "bind_password" not in edit.body and edit.stored_secrets == {"bind_password"}
    kept = definition_edits.compose(world.ws, "store", {**edit.body, "description": "x"})
    assert kept.bind_password == SECRET
    fresh = definition_edits.compose(world.ws, "store", corp(), creating=True)
    assert fresh.bind_password is None


def test_a_secret_typed_into_a_form_is_sealed_for_that_definition_only(world: World) -> None:
    typed = definitions.parse("store", corp(bind_password=SECRET))
    token = definition_edits.seal(world.ws, "store", "corp", typed, corp(bind_password=SECRET))
    assert token and SECRET not in token
    assert definition_edits.unseal(world.ws, "store", "corp", token, corp())["bind_password"] == SECRET
    assert "bind_password" not in definition_edits.unseal(world.ws, "store", "other", token, corp())
    assert "bind_password" not in definition_edits.unseal(world.ws, "store", "corp", "forged", corp())
    assert definition_edits.unseal(world.ws, "store", "corp", token, corp(bind_password="new"))["bind_password"] == "new"
    assert definition_edits.seal(world.ws, "store", "corp", typed, corp()) == ""  # a stored secret kept: not sealed


def test_a_save_over_a_newer_version_or_an_existing_name_is_refused(world: World) -> None:
    definitions.save(world.ws, "store", definitions.parse("store", corp()))
    version = definition_edits.editable(world.ws, "store", "corp").version
    definitions.save(world.ws, "store", definitions.parse("store", corp(description="meanwhile")))
    edited = definitions.parse("store", corp(description="mine"))
    with pytest.raises(StateConflictError, match="was changed by someone else since this edit began"):
        definition_edits.save_edited(world.ws, "store", edited, version, creating=False)
    with pytest.raises(StateConflictError, match="exists already"):
        definition_edits.save_edited(world.ws, "store", edited, None, creating=True)
    fresh = definition_edits.current_version(world.ws, "store", "corp")
    assert definition_edits.save_edited(world.ws, "store", edited, fresh, creating=False) == "updated"


def test_the_review_masks_a_source_password_and_says_it_changed(world: World) -> None:
    sql = {"name": "hr", "kind": "sql", "url": "sqlite:///hr.db", "table": "people", "password": SECRET}
    definitions.save(world.ws, "source", definitions.parse("source", sql))
    review = definition_edits.review_changes(world.ws, "source", definitions.parse("source", {**sql, "password": "x"}))
    assert review.action == "update" and SECRET not in str(review) and "x" not in [c.after for c in review.changes]
    assert [(c.field, c.after) for c in review.changes] == [("password", "******** (changed)")]


def test_only_operators_save_or_test(world: World) -> None:
    users.add_user(world.ws, "root", roles=[Role.ADMIN])
    users.add_user(world.ws.acting_as(Principal("root", "user")), "audrey", roles=[Role.AUDITOR])
    audrey = world.ws.acting_as(Principal("audrey", "user"))
    local = definitions.parse("store", {"name": "x", "kind": "local", "path": "x.db"})
    with pytest.raises(PermissionDeniedError):
        definition_edits.save_edited(audrey, "store", local, None, creating=True)
    with pytest.raises(PermissionDeniedError):
        definition_edits.test_connection(audrey, "store", local)


@pytest.mark.parametrize("step", ["upper", {"left": 3}, {"suffix": "@example.org"}, {"replace": {"old": "-", "new": ""}}])
def test_transform_steps_go_to_text_and_back(step: Any) -> None:
    assert definition_edits.parse_step(definition_edits.step_text(step), "m") == step


def test_a_transform_that_is_not_one_step_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs one step name"):
        definition_edits.parse_step("{left: 3, right: 2}", "mapping 'cn'")
    with pytest.raises(ConfigError, match="is not a step"):
        definition_edits.parse_step("{left: [", "mapping 'cn'")


def test_an_empty_section_is_no_section_and_fields_not_shown_are_kept() -> None:
    start = {"name": "s", "kind": "local", "notification_server": {"host": "mx", "sender": "a@b.c", "webhook_url": "https://h"}}
    kept = read_body(form(notification_server__host="mx2", notification_server__sender="a@b.c",
                          notification_server__tls="none"), (NOTIFICATION,), start)
    assert kept["notification_server"] == {"host": "mx2", "sender": "a@b.c", "tls": "none", "webhook_url": "https://h"}
    removed = read_body(form(notification_server__tls="starttls", notification_server__password=""),
                        (NOTIFICATION,), start)
    assert "notification_server" not in removed
    flow = read_body(form(workflow__manual="yes", workflow__approvers="alice, bob", workflow__expires_after="7d",
                          workflow__escalation__after=""), (WORKFLOW,), {})
    assert flow["workflow"] == {"manual": True, "approvers": ["alice", "bob"], "expires_after": "7d"}


def test_mapping_rows_round_trip_with_the_settings_the_editor_does_not_show() -> None:
    stored = {"attribute": "manager", "join": {"fields": ["a", "b"], "separator": "-"}, "transforms": ["trim"],
              "resolve": {"base_dn": "ou=People", "attribute": "employeeNumber"}, "required": True}
    row = job_forms.row_of(stored)
    assert (row.origin, row.text, row.transforms, row.required) == ("join", "a, b", ("trim",), True)
    assert job_forms.mapping_of(row) == stored


def test_the_mapping_editor_buttons_move_add_and_remove() -> None:
    rows = [job_forms.MappingRow("uid"), job_forms.MappingRow("cn", transforms=("a", "b")), job_forms.MappingRow("sn")]
    posted = form(m1__newt="upper")
    moved = job_forms.edited_rows(rows, "m-up:2", posted)
    assert moved is not None and [r.attribute for r in moved] == ["uid", "sn", "cn"]
    added = job_forms.edited_rows(rows, "t-add:1", posted)
    assert added is not None and added[1].transforms == ("a", "b", "upper")
    swapped = job_forms.edited_rows(rows, "t-down:1:0", posted)
    assert swapped is not None and swapped[1].transforms == ("b", "a")
    removed = job_forms.edited_rows(rows, "m-remove:0", posted)
    assert removed is not None and [r.attribute for r in removed] == ["cn", "sn"]
    assert job_forms.edited_rows(rows, "m-remove:9", posted) is None
    assert job_forms.edited_rows(rows, "review", posted) is None


def test_the_posted_rows_are_read_in_order_with_their_flags() -> None:
    posted = form(mappings="2", m0__attribute="uid", m0__origin="from", m0__text="id", m0__key="yes",
                  m1__attribute="mail", m1__origin="expression", m1__text="source['id'] + '@x.org'",
                  m1__t=["lower", ""])
    rows = job_forms.read_rows(posted)
    assert [job_forms.mapping_of(r) for r in rows] == [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "mail", "expression": "source['id'] + '@x.org'", "transforms": ["lower"]},
    ]
