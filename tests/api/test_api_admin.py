"""Users, tokens, the audit log, the outbox and schedules through the API."""

from __future__ import annotations

from tests.api.conftest import PASSWORD, Api


def test_an_administrator_manages_users_and_a_user_its_own_tokens(api: Api) -> None:
    made = api.call("POST", "/users", json={"name": "carol", "password": PASSWORD, "roles": ["operator"]}, expect=201)
    assert made.json()["roles"] == ["operator"] and PASSWORD not in made.text
    assert api.call("POST", "/users", json={"name": "x", "password": "short"}, expect=422).json()["field"] == "password"
    assert "carol" in [u["user"]["name"] for u in api.call("GET", "/users").json()]
    api.call("POST", "/users/carol/grant", json={"roles": ["auditor"]})
    assert api.call("GET", "/users/carol", user="olivia").json()["roles"] == ["auditor", "operator"]
    api.call("GET", "/users/olivia", user="otto", expect=403)
    assert api.call("GET", "/users/otto", user="otto").json()["user"]["name"] == "otto"

    token = api.call("POST", "/tokens", user="otto", json={"name": "ci", "expires": "1d"}, expect=201).json()
    assert token["token"].startswith("idsync_") and token["user_name"] == "otto"
    listed = api.call("GET", "/tokens", user="otto").json()
    assert {t["name"] for t in listed} == {"tests", "ci"} and token["token"] not in str(listed)
    assert api.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token['token']}"}).json()["user"] == "otto"
    api.call("GET", "/tokens?all=true", user="otto", expect=403)
    api.call("DELETE", "/tokens/ci", user="otto")
    assert api.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token['token']}"}).status_code == 401
    api.call("POST", "/tokens", user="otto", json={"name": "bad", "expires": "soon"}, expect=422)

    api.call("POST", "/users/otto/disabled", json={"disabled": True})
    assert api.call("POST", "/jobs/people/preview", user="otto", expect=401)  # its tokens stop too
    api.call("POST", "/users/otto/disabled", json={"disabled": False})
    api.call("POST", "/users/carol/password", user="olivia", json={"new": "another long password"}, expect=204)
    assert api.client.post("/api/v1/session", json={"name": "carol", "password": "another long password"}).status_code == 200
    api.call("DELETE", "/users/carol", expect=204)


def test_the_audit_log_pages_by_cursor_and_verifies(api: Api) -> None:
    everything = api.call("GET", "/audit?limit=500", user="audrey").json()["items"]
    assert len(everything) > 5
    seen, cursor = [], ""
    while True:
        page = api.call("GET", f"/audit?limit=4{cursor}", user="audrey").json()
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == everything
    jobs = api.call("GET", "/audit?kind=job&name=people", user="audrey").json()["items"]
    assert jobs and {e["object_name"] for e in jobs} == {"people"}
    assert api.call("POST", "/audit/verify", user="audrey").json()["intact"] is True
    api.call("POST", "/audit/verify", user="otto", expect=403)


def test_the_outbox_lists_retries_and_purges(api: Api) -> None:
    assert api.call("GET", "/outbox").json() == {"items": [], "next_cursor": None}
    api.call("GET", "/outbox?state=lost", expect=422)
    assert api.call("POST", "/outbox/retry", json={}).json() == {"retried": 0}
    assert api.call("POST", "/outbox/purge", json={"older_than_days": 1}).json() == {"purged": 0}
    api.call("POST", "/outbox/purge", user="audrey", expect=403)


def test_a_schedule_runs_now_and_lists_its_next_runs(api: Api) -> None:
    api.call("POST", "/schedules", json={"name": "nightly", "triggers": [{"kind": "daily", "start": "2030-01-01T02:00"}]},
             expect=201)
    read = api.call("GET", "/collections/c")
    api.call("PUT", "/collections/c", json={**read.json(), "schedule": "nightly"}, headers={"If-Match": read.headers["ETag"]})
    now = api.call("POST", "/schedules/nightly/run-now", expect=202).json()
    assert [r["collection"] for r in now["runs"]] == ["c"]
    api.until(now["runs"][0]["url"].removeprefix("/api/v1"), lambda b: b["run"]["state"] == "succeeded")
    listed = api.call("GET", "/schedule-status", user="audrey").json()
    assert [s["name"] for s in listed] == ["nightly"]
    assert api.call("POST", "/schedules/nightly/enable").json()["enabled"] is True
    api.call("POST", "/schedules/nightly/run-now", user="audrey", expect=403)
