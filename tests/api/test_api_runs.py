"""Long work through the API: a preview and a run answer 202 with what to
follow; plans page their changes by cursor and export; progress streams as
server-sent events."""

from __future__ import annotations

import json

from tests.api.conftest import Api
from tests.scheduler_world import PEOPLE


def events(text: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_preview_answers_202_with_its_plan_whose_changes_page_by_cursor(api: Api) -> None:
    started = api.call("POST", "/jobs/people/preview", expect=202)
    url = started.headers["Location"]
    assert url == started.json()["url"] and url.startswith("/api/v1/plans/")
    plan = api.until(url.removeprefix("/api/v1"), lambda b: b["plan"]["state"] != "computing")["plan"]
    assert plan["state"] == "ready" and plan["counts"]["created"] == 2

    first = api.call("GET", f"/plans/{plan['id']}/changes?limit=1").json()
    assert [c["dn"] for c in first["items"]] == [f"uid=1,{PEOPLE}"] and first["items"][0]["op"] == "create"
    second = api.call("GET", f"/plans/{plan['id']}/changes?limit=1&cursor={first['next_cursor']}").json()
    assert [c["dn"] for c in second["items"]] == [f"uid=2,{PEOPLE}"] and second["next_cursor"] is None
    assert api.call("GET", f"/plans/{plan['id']}/changes?op=delete").json() == {"items": [], "next_cursor": None}
    turing = api.call("GET", f"/plans/{plan['id']}/changes", params={"text": "turing"}).json()["items"]
    assert [c["dn"] for c in turing] == [f"uid=2,{PEOPLE}"]
    assert len(api.call("GET", f"/plans/{plan['id']}/changes", params={"attribute": "SN"}).json()["items"]) == 2
    assert api.call("GET", f"/plans/{plan['id']}/changes", params={"attribute": "mail"}).json()["items"] == []
    assert api.call("GET", f"/plans/{plan['id']}/changes?op=explode", expect=422)
    assert api.call("GET", f"/plans/{plan['id']}/changes?cursor=garbage", expect=422).json()["field"] == "cursor"

    csv = api.call("GET", f"/plans/{plan['id']}/export?format=csv")
    assert csv.headers["content-type"].startswith("text/csv") and f"uid=1,{PEOPLE}" in csv.text
    assert api.call("GET", f"/plans/{plan['id']}/export?format=json").json()[0]["op"] == "create"
    assert f"dn: uid=2,{PEOPLE}" in api.call("GET", f"/plans/{plan['id']}/export?format=ldif").text
    listed = api.call("GET", "/plans?job=people").json()["items"]
    assert plan["id"] in [p["id"] for p in listed]


def test_a_run_answers_202_its_progress_streams_and_its_report_shows_what_it_did(api: Api) -> None:
    started = api.call("POST", "/jobs/people/run", json={}, expect=202)
    url = started.headers["Location"]
    path = url.removeprefix("/api/v1")
    with api.client.stream("GET", url + "/events", headers=api.as_("olivia")) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    found = events(text)
    assert found[-1][0] == "end" and found[-1][1]["state"] == "succeeded"
    assert any(name == "progress" for name, _ in found)
    assert any(name == "log" and "started" in data["message"] for name, data in found)

    report = api.call("GET", path).json()
    assert report["run"]["state"] == "succeeded" and report["run"]["counts"]["created"] == 2
    assert report["log"] and report["errors"] == [] and report["plan"] == f"/api/v1/plans/{report['run']['plan_id']}"
    assert api.call("POST", path + "/terminate", json={"reason": "late"}, expect=409)
    assert api.call("GET", "/runs/99999/events", expect=404)


def test_run_history_pages_by_cursor_and_filters(api: Api) -> None:
    for _ in range(3):
        url = api.call("POST", "/jobs/people/run", expect=202).headers["Location"]
        api.until(url.removeprefix("/api/v1"), lambda b: b["run"]["state"] not in ("running", "pending"))
    everything = api.call("GET", "/runs?limit=500").json()["items"]
    seen, cursor = [], ""
    while True:
        page = api.call("GET", f"/runs?limit=2{cursor}").json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert [r["id"] for r in seen] == [r["id"] for r in everything]
    people = api.call("GET", "/runs?job=people&state=succeeded").json()["items"]
    assert len(people) == 3 and {r["job_name"] for r in people} == {"people"}
    assert api.call("GET", "/runs?limit=0", expect=422)
    newest = everything[0]["created_at"]
    assert [r["id"] for r in api.call("GET", "/runs", params={"since": newest}).json()["items"]] == [everything[0]["id"]]
    assert everything[0]["id"] not in [r["id"] for r in api.call("GET", "/runs", params={"until": newest}).json()["items"]]
    backwards = api.call("GET", "/runs", params={"since": newest, "until": "2000-01-01T00:00:00"}, expect=422).json()
    assert backwards["field"] == "to" and backwards["status"] == 422


def test_a_collection_runs_and_previews_in_the_background(api: Api) -> None:
    task = api.call("POST", "/collections/c/preview", expect=202)
    done = api.until(task.headers["Location"].removeprefix("/api/v1"), lambda b: b["state"] != "running")
    assert done["state"] == "succeeded" and done["result"]["counts"]["created"] == 2
    assert api.call("GET", task.headers["Location"].removeprefix("/api/v1"), user="otto", expect=404)  # not otto's

    started = api.call("POST", "/collections/c/run", expect=202).json()
    assert started["state"] == "running"
    report = api.until(f"/runs/{started['run_id']}", lambda b: b["run"]["state"] == "succeeded")
    assert [job["job_name"] for job in report["jobs"]] == ["people"]
    assert api.call("GET", "/collections/c/runs").json()[0]["id"] == started["run_id"]
    status = api.call("GET", "/status", user="audrey").json()
    assert status["actor"] == "audrey" and "runs_recent" in status
