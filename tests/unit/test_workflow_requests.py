"""The request state machine: every transition and every refusal [S7.2, S7.4]."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from idsync.domain.changes import ChangeOp
from idsync.errors import ConfigError, PermissionDeniedError, StateConflictError
from idsync.workflow.requests import Action, Decision, RequestFacts, Status, decide, fold

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FACTS = RequestFacts(id=7, requester="rita", required_approvals=1, expires_at=T0 + timedelta(days=7))
TWO = RequestFacts(id=8, requester="rita", required_approvals=2, expires_at=T0 + timedelta(days=7))
APPROVERS = frozenset({"alice", "bob", "carol"})


def d(actor: str, action: Action, minutes: int = 1, **kw: object) -> Decision:
    return Decision(actor=actor, action=action, at=T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def step(facts: RequestFacts, trail: list[Decision], decision: Decision, eligible: frozenset[str] = APPROVERS) -> Status:
    status = decide(facts, trail, decision, eligible)
    trail.append(decision)
    assert fold(trail, facts.required_approvals) == status, "the fold of the trail agrees with each decision"
    return status


# ---------------------------------------------------------------- transitions


def test_a_new_request_is_pending() -> None:
    assert fold([], 1).state == "pending"


def test_one_approval_of_one_required_approves() -> None:
    assert step(FACTS, [], d("alice", "approve")).state == "approved"


def test_two_approvals_required_need_two_distinct_people() -> None:
    trail: list[Decision] = []
    assert step(TWO, trail, d("alice", "approve")).state == "pending"
    with pytest.raises(PermissionDeniedError, match="approved request 8 already"):
        decide(TWO, trail, d("alice", "approve", 2), APPROVERS)
    status = step(TWO, trail, d("bob", "approve", 3))
    assert status.state == "approved"
    assert status.approvers == {"alice", "bob"}


def test_approved_then_executed() -> None:
    trail: list[Decision] = []
    step(FACTS, trail, d("alice", "approve"))
    status = step(FACTS, trail, d("idsync", "execute", 2))
    assert status.state == "executed"
    assert status.closed and status.closed_by == trail[-1]


def test_one_denial_ends_the_request_even_after_an_approval() -> None:
    trail: list[Decision] = []
    step(TWO, trail, d("alice", "approve"))
    status = step(TWO, trail, d("bob", "deny", 2, comment="too many deletes"))
    assert status.state == "denied"
    assert status.closed_by is not None and status.closed_by.comment == "too many deletes"


def test_the_requester_cancels() -> None:
    assert step(FACTS, [], d("rita", "cancel")).state == "cancelled"


def test_the_system_expires_a_request_at_its_expiry() -> None:
    at_expiry = Decision("idsync", "expire", FACTS.expires_at)
    assert step(FACTS, [], at_expiry).state == "expired"


def test_a_comment_changes_no_state_and_anyone_may_comment() -> None:
    assert step(FACTS, [], d("rita", "comment", comment="urgent")).state == "pending"
    assert step(FACTS, [], d("zed", "comment", comment="fyi"), frozenset()).state == "pending"


def test_a_comment_on_an_approved_request_is_kept() -> None:
    trail: list[Decision] = []
    step(FACTS, trail, d("alice", "approve"))
    assert step(FACTS, trail, d("bob", "comment", 2, comment="ok")).state == "approved"


def test_a_reroute_keeps_it_pending_and_routes_it_to_the_user() -> None:
    status = step(FACTS, [], d("alice", "reroute", comment="on leave", to_user="dave"))
    assert status.state == "pending"
    assert status.rerouted_to == {"dave"}
    assert "alice" in status.decided_by


def test_escalation_counts_its_steps() -> None:
    trail: list[Decision] = []
    step(FACTS, trail, d("idsync", "escalate"))
    assert step(FACTS, trail, d("idsync", "escalate", 2)).escalation_step == 2


def test_a_repreview_restarts_the_approvals() -> None:
    trail: list[Decision] = []
    step(TWO, trail, d("alice", "approve"))
    status = step(TWO, trail, d("rita", "repreview", 2))
    assert status.approvals == () and status.state == "pending"
    # alice's earlier approval was of other plans: she approves again, and it counts once
    assert step(TWO, trail, d("alice", "approve", 3)).state == "pending"
    assert step(TWO, trail, d("bob", "approve", 4)).state == "approved"


# ---------------------------------------------------------------- refusals


def test_self_approval_is_refused_even_when_the_requester_is_listed() -> None:
    with pytest.raises(PermissionDeniedError, match="raised request 7"):
        decide(FACTS, [], d("rita", "approve"), APPROVERS | {"rita"})


def test_the_requester_never_counts_toward_the_required_number() -> None:
    trail: list[Decision] = []
    step(TWO, trail, d("alice", "approve"))
    with pytest.raises(PermissionDeniedError):
        decide(TWO, trail, d("rita", "approve", 2), APPROVERS | {"rita"})
    assert fold(trail, 2).state == "pending"


def test_someone_not_eligible_cannot_approve_deny_or_reroute() -> None:
    for action, kw in (("approve", {}), ("deny", {"comment": "no"}), ("reroute", {"comment": "x", "to_user": "bob"})):
        with pytest.raises(PermissionDeniedError, match="is not an approver of request 7"):
            decide(FACTS, [], d("mallory", action, **kw), APPROVERS)  # type: ignore[arg-type]


def test_the_same_approver_twice_is_refused() -> None:
    trail: list[Decision] = []
    step(TWO, trail, d("alice", "approve"))
    with pytest.raises(PermissionDeniedError, match="distinct people"):
        decide(TWO, trail, d("alice", "approve", 5), APPROVERS)


@pytest.mark.parametrize("closing", ["deny", "cancel", "expire", "execute"])
@pytest.mark.parametrize("action", ["approve", "deny", "reroute", "comment", "cancel", "repreview", "expire", "execute"])
def test_every_decision_on_a_closed_request_is_a_state_conflict(closing: str, action: str) -> None:
    trail: list[Decision] = []
    if closing == "execute":
        step(FACTS, trail, d("alice", "approve"))
        step(FACTS, trail, d("idsync", "execute"))
    elif closing == "expire":
        step(FACTS, trail, Decision("idsync", "expire", FACTS.expires_at))
    else:
        actor = "rita" if closing == "cancel" else "alice"
        step(FACTS, trail, d(actor, closing, comment="reason"))  # type: ignore[arg-type]
    late = Decision("bob", action, FACTS.expires_at + timedelta(days=1), comment="x", to_user="carol")  # type: ignore[arg-type]
    with pytest.raises(StateConflictError, match="no decision can be made on it"):
        decide(FACTS, trail, late, APPROVERS)


def test_approval_after_expiry_is_refused_before_the_sweep_marked_it() -> None:
    late = Decision("alice", "approve", FACTS.expires_at)
    with pytest.raises(StateConflictError, match="expired at"):
        decide(FACTS, [], late, APPROVERS)


@pytest.mark.parametrize("action", ["deny", "reroute", "cancel", "comment", "repreview"])
def test_any_decision_after_expiry_is_refused(action: str) -> None:
    late = Decision("rita" if action == "cancel" else "alice", action, FACTS.expires_at + timedelta(seconds=1),  # type: ignore[arg-type]
                    comment="x", to_user="bob")
    with pytest.raises(StateConflictError, match="expired at"):
        decide(FACTS, [], late, APPROVERS)


def test_expiry_before_its_time_is_refused() -> None:
    with pytest.raises(StateConflictError, match="not before"):
        decide(FACTS, [], d("idsync", "expire"), APPROVERS)


def test_reroute_to_the_requester_is_refused() -> None:
    with pytest.raises(PermissionDeniedError, match="cannot be re-routed to its requester"):
        decide(FACTS, [], d("alice", "reroute", comment="hers", to_user="rita"), APPROVERS)


def test_cancel_by_someone_else_is_refused() -> None:
    with pytest.raises(PermissionDeniedError, match="only by its requester 'rita'"):
        decide(FACTS, [], d("alice", "cancel"), APPROVERS)


@pytest.mark.parametrize("action", ["deny", "reroute"])
def test_deny_and_reroute_need_a_reason(action: str) -> None:
    with pytest.raises(ConfigError, match="needs a reason") as caught:
        decide(FACTS, [], d("alice", action, comment="  ", to_user="bob"), APPROVERS)  # type: ignore[arg-type]
    assert caught.value.field == "reason"


def test_reroute_needs_a_user() -> None:
    with pytest.raises(ConfigError, match="user to route it to"):
        decide(FACTS, [], d("alice", "reroute", comment="away"), APPROVERS)


def test_execute_before_approval_is_refused() -> None:
    with pytest.raises(StateConflictError, match="before it is approved"):
        decide(FACTS, [], d("idsync", "execute"), APPROVERS)


@pytest.mark.parametrize("action", ["approve", "deny", "cancel", "reroute", "repreview", "expire", "escalate"])
def test_an_approved_request_takes_nothing_but_its_execution_and_comments(action: str) -> None:
    trail: list[Decision] = []
    step(FACTS, trail, d("alice", "approve"))
    with pytest.raises(StateConflictError, match="approved and being executed"):
        decide(FACTS, trail, d("bob", action, 2, comment="x", to_user="carol"), APPROVERS)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the trail as stored


def test_a_decision_round_trips_through_its_detail() -> None:
    decision = d("alice", "approve", kinds=frozenset({ChangeOp.CREATE, ChangeOp.UPDATE}), excluded=frozenset({"uid=x"}))
    back = Decision.from_detail(actor="alice", action="approve", at=decision.at, comment="", detail=decision.detail())
    assert back == decision
    assert decision.detail() == {"kinds": ["create", "update"], "excluded": ["uid=x"]}


def test_messages_are_one_line_and_name_no_command() -> None:
    trail: list[Decision] = []
    step(FACTS, trail, d("bob", "deny", comment="no"))
    with pytest.raises(StateConflictError) as caught:
        decide(FACTS, trail, d("alice", "approve"), APPROVERS)
    assert "\n" not in caught.value.message and "idsync " not in caught.value.message
