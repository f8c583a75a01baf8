"""Review your changes: the summary and the field-by-field differences (pure)."""

from __future__ import annotations

from idsync.domain.collections import CollectionDefinition
from idsync.services.collections import render_job
from idsync.services.review import diff, flatten, render, review


def nightly(**data: object) -> CollectionDefinition:
    return CollectionDefinition.model_validate({"name": "nightly", "jobs": ["hr", "groups"], **data})


def test_a_new_definition_is_summarised_with_every_field_and_its_defaults() -> None:
    result = review("job collection", nightly(), None, render_job)
    assert result.action == "create" and result.changes == []
    summary = dict(result.summary)
    assert summary["jobs"] == "1. hr (on failure: abort)\n2. groups (on failure: abort)"
    assert summary["schedule"] == "none"
    assert summary["notifications.enabled"] == "no"
    assert summary["preview when finished"] == "no"
    assert summary["overlap"] == "skip"
    lines = result.lines()
    assert lines[0] == "job collection 'nightly' (new)"
    assert "    1. hr (on failure: abort)" in lines


def test_an_edit_lists_each_changed_field_with_both_values() -> None:
    old = nightly()
    new = nightly(
        jobs=["groups", {"job": "hr", "on_failure": "continue"}],
        schedule="weekdays",
        notifications={"enabled": True, "recipients": ["ops@example.org"], "triggers": ["failed"]},
    )
    result = review("job collection", new, old, render_job)
    assert result.action == "update"
    changes = {c.field: (c.before, c.after) for c in result.changes}
    assert changes == {
        "jobs": (
            "1. hr (on failure: abort)\n2. groups (on failure: abort)",
            "1. groups (on failure: abort)\n2. hr (on failure: continue)",
        ),
        "schedule": ("none", "weekdays"),
        "notifications.enabled": ("no", "yes"),
        "notifications.recipients": ("none", "ops@example.org"),
        "notifications.triggers": ("none", "failed"),
    }
    text = "\n".join(result.lines())
    assert "differences from the stored version:" in text
    assert "  schedule:\n    was: none\n    now: weekdays" in text


def test_saving_the_same_definition_is_unchanged() -> None:
    result = review("job collection", nightly(), nightly(), render_job)
    assert result.action == "unchanged" and not result.has_changes
    assert result.lines()[-1] == "no differences from the stored version: nothing to save"


def test_diff_of_plain_data_reports_added_and_removed_fields() -> None:
    changes = diff({"a": 1, "gone": True}, {"a": 2, "new": "x"})
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("a", "1", "2"),
        ("new", "(not set)", "x"),
        ("gone", "yes", "(not set)"),
    ]


def test_render_and_flatten() -> None:
    assert render(None) == "none"
    assert render(True) == "yes"
    assert render("") == "(empty)"
    assert render([]) == "none"
    assert render(["a", "b"]) == "a, b"
    assert render([{"k": 1}, {"k": 2}]) == "1. k: 1\n2. k: 2"
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}


def test_a_section_set_whole_is_shown_field_by_field_without_a_row_for_the_section() -> None:
    old = {"name": "corp", "workflow": None}
    new = {"name": "corp", "workflow": {"manual": True, "approvers": ["ada"]}}
    changes = diff(old, new)
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("workflow.manual", "(not set)", "yes"), ("workflow.approvers", "(not set)", "ada"),
    ]
    removed = diff(new, old)
    assert [c.field for c in removed] == ["workflow.manual", "workflow.approvers"]
