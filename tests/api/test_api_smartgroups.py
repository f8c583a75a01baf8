"""Smart groups and their update jobs through the API: definitions with
ETags, preview, update, explain, and update jobs' targets and runs; each
refused to the roles that may not, with the common error shape."""

from __future__ import annotations

import pytest

from idsync.domain.principals import Principal
from idsync.services import directory, jobs
from tests.api.conftest import Api
from tests.scheduler_world import PEOPLE, SUFFIX

GROUPS = f"ou=Groups,{SUFFIX}"
STAFF = f"cn=staff,{GROUPS}"
ADA = f"uid=1,{PEOPLE}"
ALAN = f"uid=2,{PEOPLE}"
GROUP_LDIF = f"dn: {STAFF}\nobjectClass: groupOfNames\ncn: staff\nmember: {ALAN}\n"


def staff() -> dict:  # type: ignore[type-arg]
    return {
        "name": "staff", "store": "dir", "dn": STAFF,
        "queries": [{"base": PEOPLE, "scope": "one", "filter": "(sn=Lovelace)"}],
    }


@pytest.fixture
def groups(api: Api) -> Api:
    """The people written to the directory, and ou=Groups to hold the groups."""
    ws = api.world.ws.acting_as(Principal.system("tests"))
    jobs.run_job(ws, "people")
    directory.add_container(ws, "dir", GROUPS)
    api.call("POST", "/stores/dir/ldif", content=GROUP_LDIF, headers={"Content-Type": "text/x-ldif"})
    return api


def test_a_smart_group_is_defined_previewed_updated_and_explained(groups: Api) -> None:
    api = groups
    created = api.call("POST", "/smart-groups", json=staff(), expect=201)
    assert created.json() == {"name": "staff", "outcome": "created", "warning": None}
    assert created.headers["Location"] == "/api/v1/smart-groups/staff"
    assert [g["name"] for g in api.call("GET", "/smart-groups", user="audrey").json()["items"]] == ["staff"]

    preview = api.call("GET", "/smart-groups/staff/preview").json()
    assert preview["add"] == [ADA] and preview["remove"] == [ALAN] and preview["members"] == 1

    task = api.call("POST", "/smart-groups/staff/update", expect=202)
    assert task.json()["state"] == "running" and task.headers["Location"] == task.json()["url"]
    done = api.until(task.headers["Location"].removeprefix("/api/v1"), lambda b: b["state"] != "running")
    assert done["state"] == "succeeded" and done["kind"] == "smart group update", done
    updated = done["result"]
    assert updated["run"]["state"] == "succeeded", updated
    assert updated["groups"][0]["added_dns"] == [ADA]
    assert api.call("GET", updated["run_url"].removeprefix("/api/v1")).json()["run"]["job_name"] == "staff"
    assert api.call("GET", "/smart-groups/staff/preview").json()["add"] == []

    why = api.call("GET", "/smart-groups/staff/explain", user="audrey", params={"dn": ALAN}).json()
    assert why["member"] is False and why["in_group_now"] is False and why["pending_change"] is None, why
    assert why["summary"].startswith(f"{ALAN} is not a member")

    read = api.call("GET", "/smart-groups/staff")
    body, etag = read.json(), read.headers["ETag"]
    widened = {**body, "queries": [{"base": PEOPLE, "scope": "one", "filter": "(objectClass=*)"}]}
    assert api.call("PUT", "/smart-groups/staff", json=widened, headers={"If-Match": etag}).json()["outcome"] == "updated"
    stale = api.call("PUT", "/smart-groups/staff", json=body, headers={"If-Match": etag}, expect=412).json()
    assert stale["status"] == 412 and stale["type"].endswith("precondition-failed")
    explained = api.call("GET", "/smart-groups/staff/explain", params={"dn": ALAN}).json()
    assert explained["member"] is True and explained["pending_change"] == "the next update adds it"


def test_an_update_job_lists_its_targets_and_runs(groups: Api) -> None:
    api = groups
    api.call("POST", "/smart-groups", json=staff(), expect=201)
    job = {"name": "nightly-groups", "store": "dir", "containers": [GROUPS]}
    assert api.call("POST", "/smart-group-jobs", json=job, expect=201).json()["outcome"] == "created"
    assert api.call("GET", "/smart-group-jobs/nightly-groups/targets", user="audrey").json() == {
        "name": "nightly-groups", "targets": ["staff"],
    }
    task = api.call("POST", "/smart-group-jobs/nightly-groups/run", expect=202).json()
    ran = api.until(task["url"].removeprefix("/api/v1"), lambda b: b["state"] != "running")["result"]
    assert ran["run"]["job_name"] == "nightly-groups" and ran["groups"][0]["outcome"] == "updated"
    assert api.call("GET", "/smart-group-jobs").json()["items"][0]["name"] == "nightly-groups"
    assert api.call("DELETE", "/smart-group-jobs/nightly-groups", expect=204)
    assert api.call("GET", "/smart-group-jobs/nightly-groups", expect=404).json()["status"] == 404
    assert api.call("DELETE", "/smart-groups/staff", expect=204)
    assert api.call("POST", "/smart-groups/staff/update", expect=404).json()["status"] == 404  # at once, not in a task
    assert api.call("POST", "/smart-group-jobs/nightly-groups/run", expect=404).json()["status"] == 404


@pytest.mark.parametrize("user", ["audrey", "alice"])
def test_who_is_not_an_operator_changes_no_smart_group(groups: Api, user: str) -> None:
    api = groups
    api.call("POST", "/smart-groups", json=staff(), expect=201)
    api.call("POST", "/smart-group-jobs", json={"name": "j", "store": "dir", "groups": ["staff"]}, expect=201)
    for method, path in (
        ("POST", "/smart-groups"), ("GET", "/smart-groups/staff/preview"), ("POST", "/smart-groups/staff/update"),
        ("DELETE", "/smart-groups/staff"), ("POST", "/smart-group-jobs/j/run"), ("DELETE", "/smart-group-jobs/j"),
    ):
        refused = api.call(method, path, user=user, json=staff() if method == "POST" else None, expect=403).json()
        assert refused["type"] == "urn:idsync:problem:permission-denied", (method, path, refused)
    assert api.call("GET", "/smart-groups/staff", user=user).json()["name"] == "staff"


def test_a_smart_group_that_is_not_valid_is_refused_in_the_common_shape(groups: Api) -> None:
    api = groups
    bad = api.call("POST", "/smart-groups", json={**staff(), "dn": "not a dn"}, expect=422).json()
    assert bad["status"] == 422 and bad["title"] == "Not valid" and bad["detail"]
    missing = api.call("GET", "/smart-groups/staff/explain", expect=422).json()
    assert missing["field"] == "query.dn" and missing["errors"]
    assert api.call("GET", "/smart-groups/nothing/preview", expect=404).json()["type"] == "urn:idsync:problem:not-found"
