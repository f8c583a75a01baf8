"""Generated passwords of a run, the database's schema revision, and
definitions as YAML (apply, export) through the API, with their refusals."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.api.conftest import Api


def finished(api: Api, user: str) -> dict[str, Any]:
    url = api.call("POST", "/jobs/people/run", user=user, json={}, expect=202).headers["Location"]
    body: dict[str, Any] = api.until(url.removeprefix("/api/v1"), lambda b: b["run"]["state"] not in ("running", "pending"))
    return body["run"]  # type: ignore[no-any-return]


def test_generated_passwords_are_shown_once_and_only_to_who_ran_the_job(api: Api) -> None:
    read = api.call("GET", "/jobs/people")
    job = {**read.json(), "passwords": {"generate": {"length": 20}, "recipients": ["helpdesk@example.org"]}}
    api.call("PUT", "/jobs/people", json=job, headers={"If-Match": read.headers["ETag"]})
    run = finished(api, "otto")
    assert run["state"] == "succeeded", run
    path = f"/runs/{run['id']}/passwords"
    assert api.call("GET", path, user="audrey").json() == {"run_id": run["id"], "waiting": 2}
    for user in ("olivia", "audrey", "alice"):
        refused = api.call("POST", path, user=user, expect=403).json()
        assert refused["type"] == "urn:idsync:problem:permission-denied"
    shown = api.call("POST", path, user="otto")
    assert shown.headers["Cache-Control"] == "no-store"
    passwords = shown.json()["passwords"]
    assert len(passwords) == 2 and all(len(p["password"]) == 20 for p in passwords)
    assert {p["recipients"][0] for p in passwords} == {"helpdesk@example.org"}
    assert api.call("POST", path, user="otto").json()["passwords"] == []
    assert api.call("GET", path).json()["waiting"] == 0
    assert api.call("GET", "/runs/99999/passwords", expect=404).json()["status"] == 404
    # The report of the run never holds them.
    report = api.call("GET", f"/runs/{run['id']}").text
    assert not any(p["password"] in report for p in passwords)


def test_the_schema_revision_is_for_administrators(api: Api) -> None:
    revision = api.call("GET", "/database").json()
    assert revision["up_to_date"] is True and revision["current"] == revision["head"]
    for user in ("otto", "alice", "audrey"):
        assert api.call("GET", "/database", user=user, expect=403).json()["status"] == 403


def test_the_settings_in_effect_are_for_administrators_with_secrets_masked(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_METRICS_TOKEN", "never-shown-token")
    monkeypatch.setenv("IDSYNC_BATCH_SIZE", "500")
    answer = api.call("GET", "/settings")
    assert "never-shown-token" not in answer.text
    found = {item["env_var"]: item for item in answer.json()}
    assert found["IDSYNC_METRICS_TOKEN"]["value"] == "(set)"
    assert (found["IDSYNC_BATCH_SIZE"]["value"], found["IDSYNC_BATCH_SIZE"]["source"]) == ("500", "environment")
    assert found["IDSYNC_LOG_FORMAT"]["source"] == "default"
    for user in ("otto", "alice", "audrey"):
        assert api.call("GET", "/settings", user=user, expect=403).json()["status"] == 403


def test_definitions_are_exported_and_applied_as_yaml(api: Api) -> None:
    exported = api.call("GET", "/definitions/export", user="audrey")
    assert exported.headers["content-type"].startswith("application/yaml")
    data = yaml.safe_load(exported.text)
    assert [j["name"] for j in data["jobs"]] == ["ou", "people"] and data["stores"][0]["name"] == "dir"

    data["schedules"] = [{"name": "nightly", "triggers": [{"kind": "daily", "start": "2030-01-01T02:00"}]}]
    data["collections"][0]["schedule"] = "nightly"
    applied = api.call("POST", "/definitions/apply", content=yaml.safe_dump(data),
                       headers={"Content-Type": "application/yaml"}).json()["items"]
    outcomes = {(i["kind"], i["name"]): i["outcome"] for i in applied}
    assert outcomes[("schedule", "nightly")] == "created" and outcomes[("collection", "c")] == "updated"
    assert outcomes[("job", "people")] == "unchanged"
    assert api.call("GET", "/collections/c").json()["schedule"] == "nightly"

    refused = api.call("POST", "/definitions/apply", user="audrey", content="jobs: []\n", expect=403).json()
    assert refused["type"] == "urn:idsync:problem:permission-denied"
    wrong = "schedules:\n  - name: weekly\n    triggers: oops\n"
    invalid = api.call("POST", "/definitions/apply", content=wrong, expect=422).json()
    assert invalid["detail"].startswith("the request body:3: ") and invalid["field"] == "file"
    assert api.call("GET", "/schedules/weekly", expect=404)
    broken = api.call("POST", "/definitions/apply", content="jobs: [", expect=422).json()
    assert "not valid YAML" in broken["detail"]
