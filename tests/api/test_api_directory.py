"""Directory tools through the API: search (paged JSON, JSON lines), LDIF
export and import (dry run, per-record results), containers; writes refused
to who is not an operator; errors in the common shape."""

from __future__ import annotations

import json

import pytest

from idsync.domain.principals import Principal
from idsync.services import jobs
from tests.api.conftest import Api
from tests.scheduler_world import PEOPLE, SUFFIX

TEAMS = f"ou=Teams,{SUFFIX}"
LDIF = (
    f"dn: cn=red,{TEAMS}\nobjectClass: organizationalRole\ncn: red\n\n"
    f"dn: cn=blue,ou=Nowhere,{SUFFIX}\nobjectClass: organizationalRole\ncn: blue\n\n"
    f"dn: uid=1,{PEOPLE}\nchangetype: modify\nreplace: sn\nsn: Byron\n-\n"
)


@pytest.fixture
def people(api: Api) -> Api:
    jobs.run_job(api.world.ws.acting_as(Principal.system("tests")), "people")
    return api


def test_a_search_pages_by_cursor_and_streams_json_lines(people: Api) -> None:
    api = people
    query = {"base": PEOPLE, "scope": "one", "filter": "(uid=*)", "attributes": "uid,sn"}
    first = api.call("GET", "/stores/dir/entries", user="audrey", params={**query, "limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.call("GET", "/stores/dir/entries", params={**query, "limit": 1, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    dns = {first["items"][0]["dn"], second["items"][0]["dn"]}
    assert dns == {f"uid=1,{PEOPLE}", f"uid=2,{PEOPLE}"}
    assert set(second["items"][0]["attributes"]) == {"uid", "sn"}

    lines = api.call("GET", "/stores/dir/entries", params={**query, "format": "jsonl"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert {json.loads(line)["dn"] for line in lines.text.splitlines()} == dns
    negotiated = api.call("GET", "/stores/dir/entries", params=query, headers={"Accept": "application/x-ndjson"})
    assert len(negotiated.text.splitlines()) == 2


def test_an_export_streams_ldif(people: Api) -> None:
    exported = people.call("GET", "/stores/dir/ldif", user="audrey", params={"base": PEOPLE})
    assert exported.headers["content-type"].startswith("text/x-ldif")
    assert exported.text.startswith("version: 1")
    assert f"dn: uid=2,{PEOPLE}" in exported.text and "sn: Turing" in exported.text


def test_an_import_reports_each_record_and_a_dry_run_writes_nothing(people: Api) -> None:
    api = people
    assert api.call("POST", "/stores/dir/containers", json={"dn": TEAMS}, expect=201).json() == {
        "dn": TEAMS, "created": [TEAMS],
    }
    assert api.call("POST", "/stores/dir/containers", json={"dn": TEAMS}, expect=200).json()["created"] == []
    headers = {"Content-Type": "text/x-ldif"}
    dry = api.call("POST", "/stores/dir/ldif", params={"dry_run": True}, content=LDIF, headers=headers).json()
    assert dry["dry_run"] is True and dry["added"] == 2 and dry["modified"] == 1 and dry["failed"] == 0
    assert [r["action"] for r in dry["records"]] == ["add", "add", "modify"]
    assert api.call("GET", "/stores/dir/entries", params={"base": TEAMS, "scope": "one"}).json()["items"] == []

    done = api.call("POST", "/stores/dir/ldif", content=LDIF, headers=headers).json()
    assert (done["added"], done["modified"], done["failed"]) == (1, 1, 1), done
    failed = done["records"][0]
    assert failed["dn"] == f"cn=blue,ou=Nowhere,{SUFFIX}" and failed["line"] == 5 and failed["error"]
    sn = api.call("GET", "/stores/dir/entries", params={"base": f"uid=1,{PEOPLE}", "scope": "base"}).json()
    assert sn["items"][0]["attributes"]["sn"] == ["Byron"]

    stopped = api.call("POST", "/stores/dir/ldif", params={"stop_on_error": True}, content=LDIF, headers=headers)
    assert stopped.json()["stopped"] is True


@pytest.mark.parametrize("user", ["audrey", "alice"])
def test_who_is_not_an_operator_writes_nothing_to_a_directory(people: Api, user: str) -> None:
    api = people
    refused = api.call("POST", "/stores/dir/containers", user=user, json={"dn": TEAMS}, expect=403).json()
    assert refused["type"] == "urn:idsync:problem:permission-denied"
    imported = api.call("POST", "/stores/dir/ldif", user=user, content=LDIF, headers={"Content-Type": "text/x-ldif"},
                        expect=403)
    assert imported.json()["status"] == 403
    assert api.call("GET", "/stores/dir/entries", user=user, params={"base": PEOPLE}).json()["items"]  # reads


def test_bad_searches_are_refused_in_the_common_shape(people: Api) -> None:
    api = people
    scope = api.call("GET", "/stores/dir/entries", params={"scope": "everything"}, expect=422).json()
    assert scope["field"] == "query.scope" and scope["type"] == "urn:idsync:problem:invalid"
    bad_filter = api.call("GET", "/stores/dir/entries", params={"filter": "(uid=1"}, expect=422).json()
    assert bad_filter["status"] == 422 and bad_filter["detail"]
    assert api.call("GET", "/stores/nowhere/ldif", expect=404).json()["type"] == "urn:idsync:problem:not-found"
    bad_dn = api.call("POST", "/stores/dir/containers", json={"dn": "not a dn"}, expect=422).json()
    assert bad_dn["status"] == 422
