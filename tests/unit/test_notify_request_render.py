"""The messages of workflow requests: what approvers and requesters read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from idsync.domain.results import Counts
from idsync.notify.events import ChangedObject
from idsync.notify.request_notice import REQUEST_EVENTS, PlanSummary, RequestNotice, render_request

RAISED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def notice(event: str, **overrides: object) -> RequestNotice:
    values: dict[str, object] = {
        "request_id": 12,
        "event": event,
        "collection": "HR to LDAP",
        "kind": "manual",
        "reason": "manual run",
        "requested_by": "alice",
        "created_at": RAISED,
        "expires_at": RAISED + timedelta(days=7),
        "required": 2,
        "approvals": ("bob",),
        "plans": (PlanSummary("people", 31, Counts(read=100, created=25, deleted=3)),),
        "changes": (
            ChangedObject("people", "delete", "uid=old,ou=people,dc=example,dc=org"),
            ChangedObject("people", "create", "uid=new,ou=people,dc=example,dc=org", attributes=("mail: new@x",)),
        ),
        "changes_total": 28,
        "link": "https://idsync.example.org/requests/12",
    }
    values.update(overrides)
    return RequestNotice(**values)  # type: ignore[arg-type]


def test_approvers_read_what_they_approve_and_how_to_decide() -> None:
    message = render_request(notice("awaiting"))
    assert message.subject == "[idsync] request 12 awaits your approval: HR to LDAP (25 created, 3 deleted)"
    assert "alice asks to run collection HR to LDAP" in message.text
    assert "job people, plan 31: read 100, created 25, deleted 3" in message.text
    assert "delete uid=old,ou=people,dc=example,dc=org (job people)" in message.text
    assert "(first 2 of 28)" in message.text
    assert "Approvals:  1 of 2 (bob)" in message.text
    assert "idsync request approve 12" in message.text
    assert 'idsync request deny 12 --reason "..."' in message.text
    assert "https://idsync.example.org/requests/12" in message.text
    assert 'href="https://idsync.example.org/requests/12"' in message.html


def test_a_stale_plan_is_flagged_in_the_message() -> None:
    stale = (PlanSummary("people", 31, Counts(created=1), stale="its source changed since it was computed"),)
    message = render_request(notice("reminder", plans=stale))
    assert message.subject.startswith("[idsync] reminder: request 12 still awaits approval")
    assert "[STALE: its source changed since it was computed]" in message.text
    assert "STALE: its source changed" in message.html


def test_a_held_request_lists_every_delete() -> None:
    deletes = tuple(f"uid=u{i},ou=people,dc=example,dc=org" for i in range(40))
    message = render_request(notice("awaiting", kind="held", reason="600 deletes exceed the limit of 500", deletes=deletes))
    assert "Deletes (40), every one:" in message.text
    assert all(dn in message.text for dn in deletes)
    assert "(held: 600 deletes exceed the limit of 500)" in message.text


def test_the_requester_learns_the_outcome_without_decision_commands() -> None:
    executed = render_request(
        notice("executed", applied=Counts(created=25), run_state="succeeded", not_approved=3, approvals=("bob", "carol"))
    )
    assert executed.subject == (
        "[idsync] request 12 approved and run: HR to LDAP succeeded; 25 created; 3 changes not approved"
    )
    assert "3 changes of the plans were not approved and not applied." in executed.text
    assert "idsync request approve" not in executed.text
    denied = render_request(notice("denied", decided_by="bob", comment="wrong export date"))
    assert denied.subject == "[idsync] request 12 denied by bob: HR to LDAP"
    assert "Reason: wrong export date" in denied.text
    expired = render_request(notice("expired"))
    assert "expired at 2026-03-09 09:00:00+00:00 without a decision" in expired.text


@pytest.mark.parametrize("event", REQUEST_EVENTS)
def test_every_event_renders_in_text_and_html(event: str) -> None:
    message = render_request(notice(event, decided_by="bob", comment="why", applied=Counts(), run_state="succeeded"))
    assert message.subject.startswith("[idsync] ")
    assert "\n" not in message.subject
    assert message.html.startswith("<!DOCTYPE html>")
    assert "Request:    12" in message.text


def test_html_escapes_what_comes_from_data() -> None:
    message = render_request(notice("denied", decided_by="bob", comment="<script>alert(1)</script>"))
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
