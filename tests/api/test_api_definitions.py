"""Definitions through the API: create, read without secrets, replace with
If-Match (412 on a stale ETag, 428 without one), delete, test connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.api.conftest import Api

SECRET = "s3cret-bind-password"


def ldap_store(name: str = "corp") -> dict:  # type: ignore[type-arg]
    return {
        "name": name, "kind": "ldap", "url": "ldap://127.0.0.1:1", "bind_dn": "cn=admin,dc=example,dc=org",
        "bind_password": SECRET, "base_dn": "dc=example,dc=org",
    }


def test_a_definition_is_created_read_without_secrets_and_replaced_with_its_etag(api: Api) -> None:
    created = api.call("POST", "/stores", json=ldap_store(), expect=201)
    assert created.json() == {"name": "corp", "outcome": "created", "warning": None}
    assert created.headers["Location"] == "/api/v1/stores/corp"
    assert SECRET not in created.text

    read = api.call("GET", "/stores/corp")
    body, etag = read.json(), read.headers["ETag"]
    assert body["url"] == "ldap://127.0.0.1:1" and "bind_password" not in body
    assert SECRET not in read.text and SECRET not in api.call("GET", "/stores").text
    assert etag == created.headers["ETag"]

    edited = {**body, "description": "the corporate directory"}
    missing = api.call("PUT", "/stores/corp", json=edited, expect=428)
    assert missing.json()["field"] == "If-Match"
    stale = api.call("PUT", "/stores/corp", json=edited, headers={"If-Match": '"0123"'}, expect=412)
    assert stale.json()["detail"] == "identity store 'corp' changed since it was read"
    saved = api.call("PUT", "/stores/corp", json=edited, headers={"If-Match": etag})
    assert saved.json()["outcome"] == "updated"
    assert saved.headers["ETag"] != etag
    # The first reader's ETag is stale now: its edit is refused, not merged.
    assert api.call("PUT", "/stores/corp", json={**body, "description": "other"}, headers={"If-Match": etag}, expect=412)
    assert api.call("GET", "/stores/corp").json()["description"] == "the corporate directory"
    # The secret left out of the body was kept.
    assert api.world.ws and api.call("GET", "/stores/corp").headers["ETag"] == saved.headers["ETag"]

    conflict = api.call("POST", "/stores", json=ldap_store(), expect=409)
    assert "PUT" in conflict.json()["hint"]
    renamed = api.call("PUT", "/stores/corp", json={**body, "name": "other"}, headers={"If-Match": "*"}, expect=422)
    assert renamed.json()["field"] == "name"

    assert api.call("DELETE", "/stores/corp", expect=204)
    assert api.call("GET", "/stores/corp", expect=404)


def test_sources_jobs_schedules_and_collections_share_the_routes(api: Api, tmp_path: Path) -> None:
    (tmp_path / "more.csv").write_text("id,first,last\n7,Grace,Hopper\n", encoding="utf-8")
    api.call("POST", "/sources", json={"name": "more", "kind": "csv", "path": str(tmp_path / "more.csv")}, expect=201)
    tested = api.call("POST", "/sources/more/test").json()
    assert tested["ok"] is True and tested["detail"]
    job = api.call("GET", "/jobs/people").json()
    made = api.call("POST", "/jobs", json={**job, "name": "more", "source": "more"}, expect=201).json()
    assert made["outcome"] == "created"
    bad_job = api.call("POST", "/jobs", json={**job, "name": "bad", "source": "nowhere"}, expect=None)
    assert bad_job.status_code in (404, 422), bad_job.text
    api.call("POST", "/schedules", json={"name": "nightly", "triggers": [{"kind": "daily", "start": "2030-01-01T02:00"}]}, expect=201)
    api.call("POST", "/collections", json={"name": "more", "jobs": ["more"], "schedule": "nightly"}, expect=201)
    names = [item["name"] for item in api.call("GET", "/collections").json()["items"]]
    assert names == ["c", "more"]
    status = api.call("GET", "/schedules/nightly/status").json()
    assert status["status"]["targets"] == ["more"] and len(status["upcoming"]) == 5
    assert api.call("POST", "/schedules/nightly/disable").json()["enabled"] is False
    assert api.call("DELETE", "/schedules/nightly", expect=409)  # the collection uses it
    assert api.call("POST", "/stores/dir/test").json()["ok"] is True


def test_an_auditor_reads_but_changes_nothing(api: Api) -> None:
    assert api.call("GET", "/jobs/people", user="audrey").json()["name"] == "people"
    etag = api.call("GET", "/jobs/people", user="audrey").headers["ETag"]
    body = api.call("GET", "/jobs/people", user="audrey").json()
    api.call("PUT", "/jobs/people", user="audrey", json=body, headers={"If-Match": etag}, expect=403)
    api.call("POST", "/sources", user="audrey", json={"name": "x", "kind": "csv", "path": "/tmp/x.csv"}, expect=403)
    api.call("DELETE", "/collections/c", user="audrey", expect=403)
    api.call("POST", "/collections/c/run", user="audrey", expect=403)
    api.call("POST", "/users", user="audrey", json={"name": "eve", "roles": ["admin"]}, expect=403)
    assert api.call("GET", "/collections/c", user="audrey").headers["ETag"]



def test_an_edit_racing_another_on_the_same_etag_is_refused_not_merged(api: Api) -> None:
    """The version check and the write are one transaction: edit A has passed
    its check and is held just before its write while edit B, based on the
    same ETag, is saved; A's write then finds the row changed and answers 412."""
    api.call("POST", "/stores", json=ldap_store(), expect=201)
    read = api.call("GET", "/stores/corp")
    body, etag = read.json(), read.headers["ETag"]
    engine = api.client.app.state.idsync.ws.db.engine  # type: ignore[attr-defined]
    held, released = threading.Event(), threading.Event()

    def hold_first_write(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE IDENTITY_STORES") and not held.is_set():
            held.set()
            released.wait(30)

    def put(description: str) -> Any:
        return api.call("PUT", "/stores/corp", json={**body, "description": description},
                        headers={"If-Match": etag}, expect=None)

    event.listen(engine, "before_cursor_execute", hold_first_write)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(put, "edit A")
            assert held.wait(30), "edit A never reached its write"
            second = put("edit B")
            released.set()
            first_answer = first.result(30)
    finally:
        released.set()
        event.remove(engine, "before_cursor_execute", hold_first_write)
    assert second.status_code == 200, second.text
    assert first_answer.status_code == 412, first_answer.text
    assert first_answer.json()["detail"] == "identity store 'corp' changed since it was read"
    assert api.call("GET", "/stores/corp").json()["description"] == "edit B"
