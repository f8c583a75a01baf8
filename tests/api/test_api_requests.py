"""The approval flow through the API [S7]: an operator's run raises a
request; an approver finds it in the inbox and approves part of it; the run
applies exactly that. Who may not decide is refused."""

from __future__ import annotations

from idsync.domain.entry import Scope
from idsync.domain.principals import Principal
from idsync.services import connections
from tests.api.conftest import Api
from tests.scheduler_world import PEOPLE


def people(api: Api) -> list[str]:
    with connections.directory(api.world.ws.acting_as(Principal.system("test")), "dir") as directory:
        return sorted(e.dn for e in directory.search(PEOPLE, Scope.ONE, "(objectClass=*)", ["uid"]))


def require_approval(api: Api) -> None:
    read = api.call("GET", "/stores/dir")
    body = {**read.json(), "workflow": {"manual": True, "approvers": ["alice", "bob"]}}
    api.call("PUT", "/stores/dir", json=body, headers={"If-Match": read.headers["ETag"]})


def raise_request(api: Api) -> tuple[int, int]:
    """Run collection c as otto: the run awaits approval; (run id, request id)."""
    started = api.call("POST", "/collections/c/run", user="otto", expect=202)
    path = started.headers["Location"].removeprefix("/api/v1")
    report = api.until(path, lambda b: b["run"]["state"] == "awaiting_approval", user="otto")
    assert report["request"]["state"] == "pending"
    return report["run"]["id"], report["request"]["id"]


def test_an_approver_approves_part_of_a_request_and_exactly_that_is_applied(api: Api) -> None:
    require_approval(api)
    bypass = api.call("POST", "/jobs/people/run", user="otto", expect=409).json()
    assert bypass["field"] == "job" and "collection" in bypass["hint"]  # running the job alone would skip approval
    run_id, request_id = raise_request(api)
    assert people(api) == []

    mine = api.call("GET", "/requests", user="otto").json()["items"]
    assert [(r["id"], r["requested_by"]) for r in mine] == [(request_id, "otto")]
    inbox = api.call("GET", "/requests?scope=inbox", user="alice").json()["items"]
    assert [r["id"] for r in inbox] == [request_id]
    assert api.call("GET", "/requests/inbox-count", user="alice").json() == {"count": 1}
    assert api.call("GET", "/requests/inbox-count", user="otto").json() == {"count": 0}

    shown = api.call("GET", f"/requests/{request_id}", user="alice").json()
    assert shown["eligible"] == ["alice", "bob"]
    plan_url = shown["plans"][0]["url"]
    changes = api.call("GET", plan_url.removeprefix("/api/v1") + "/changes", user="alice").json()["items"]
    assert [c["dn"] for c in changes] == [f"uid=1,{PEOPLE}", f"uid=2,{PEOPLE}"]

    # Neither the requester nor an administrator without the approver role decides.
    refused = api.call("POST", f"/requests/{request_id}/approve", user="olivia", json={}, expect=403)
    assert "that needs the role approver" in refused.json()["detail"]
    api.call("POST", f"/requests/{request_id}/approve", user="otto", json={}, expect=403)
    api.call("POST", f"/requests/{request_id}/approve", user="audrey", json={}, expect=403)
    api.call("POST", f"/requests/{request_id}/approve", user="alice", json={"kinds": ["explode"]}, expect=422)

    decided = api.call(
        "POST", f"/requests/{request_id}/approve", user="alice",
        json={"kinds": ["create"], "exclude": [f"uid=2,{PEOPLE}"], "comment": "not Alan yet"},
    ).json()
    assert decided["request"]["state"] == "executed"
    assert decided["run"]["counts"]["created"] == 1 and decided["run"]["counts"]["not_approved"] == 1
    assert people(api) == [f"uid=1,{PEOPLE}"]

    again = api.call("POST", f"/requests/{request_id}/deny", user="bob", json={"reason": "too late"}, expect=409)
    assert again.json()["title"] == "Not in a state that allows this"
    trail = api.call("GET", f"/requests/{request_id}", user="audrey").json()["trail"]
    assert [(row["actor"], row["action"]) for row in trail] == [("alice", "approve"), ("idsync", "execute")]
    run = api.call("GET", f"/runs/{run_id}", user="otto").json()
    assert run["request"]["id"] == request_id
    assert api.call("POST", "/audit/verify", user="audrey").json()["intact"] is True


def test_a_denial_needs_a_reason_and_a_comment_and_reroute_are_recorded(api: Api) -> None:
    require_approval(api)
    _run_id, request_id = raise_request(api)
    api.call("POST", f"/requests/{request_id}/deny", user="bob", json={}, expect=422)
    api.call("POST", f"/requests/{request_id}/comment", user="otto", json={"text": "urgent please"})
    rerouted = api.call("POST", f"/requests/{request_id}/reroute", user="alice", json={"to": "bob", "reason": "HR"})
    assert rerouted.json()["request"]["state"] == "pending"
    denied = api.call("POST", f"/requests/{request_id}/deny", user="bob", json={"reason": "wrong export"}).json()
    assert denied["request"]["state"] == "denied" and denied["run"] is None
    assert people(api) == []
    every = api.call("GET", "/requests?scope=all&status=denied", user="audrey").json()["items"]
    assert [r["id"] for r in every] == [request_id]
    api.call("GET", "/requests?scope=all", user="otto", expect=403)
