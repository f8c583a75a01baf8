"""``POST /jobs/{name}/try`` and ``POST /jobs/try``: a job's mappings on its first rows, nothing written."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.scheduler_world import PEOPLE


def test_a_stored_job_is_tried_and_an_edited_one_too(api: Api) -> None:
    plans = api.call("GET", "/plans").json()
    tried = api.call("POST", "/jobs/people/try", user="otto", json={"rows": 1}).json()
    assert (tried["job"], tried["rows"], tried["read"]) == ("people", 1, 1)
    assert tried["entries"][0]["dn"] == f"uid=1,{PEOPLE}"
    assert tried["entries"][0]["attributes"]["cn"] == ["Ada Lovelace"]
    assert api.call("POST", "/jobs/people/try", user="otto").json()["read"] == 2

    job = api.call("GET", "/jobs/people").json()
    job["mappings"].append({"attribute": "mail", "from": "email"})
    edited = api.call("POST", "/jobs/try", user="otto", json={"job": job, "rows": 5}).json()
    assert edited["entries"] == [] and [e["attribute"] for e in edited["errors"]] == ["email", "email"]
    assert edited["errors"][0]["key"] == "1" and "source has no field 'email'" in edited["errors"][0]["message"]
    assert "mail" not in str(api.call("GET", "/jobs/people").json()["mappings"]), "nothing was saved"
    assert api.call("GET", "/plans").json() == plans


def test_try_refuses_auditors_bad_row_counts_and_bad_definitions(api: Api) -> None:
    refused = api.call("POST", "/jobs/people/try", user="audrey", expect=403)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert api.call("POST", "/jobs/people/try", json={"rows": 51}, expect=422)
    bad = api.call("POST", "/jobs/try", json={"job": {"name": "x", "source": "people"}}, expect=422)
    assert "destination" in bad.json()["detail"]
    assert api.call("POST", "/jobs/absent/try", expect=404)
