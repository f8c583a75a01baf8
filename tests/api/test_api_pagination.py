"""Lists kept in the database page by keyset: an item added between two
pages neither repeats an item nor hides one, and a cursor from elsewhere is
refused in the common shape."""

from __future__ import annotations

from tests.api.conftest import Api


def source(name: str) -> dict[str, str]:
    return {"name": name, "kind": "csv", "path": f"/nowhere/{name}.csv"}


def test_an_entry_added_between_pages_shifts_nothing(api: Api) -> None:
    for name in ("a", "b", "c"):
        api.call("POST", "/sources", json=source(name), expect=201)
    everything = [e["id"] for e in api.call("GET", "/audit?limit=500").json()["items"]]
    first = api.call("GET", "/audit?limit=2").json()
    assert [e["id"] for e in first["items"]] == everything[:2]
    api.call("POST", "/sources", json=source("d"), expect=201)  # newer than every entry listed
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = api.call("GET", "/audit", params={"limit": 2, "cursor": cursor}).json()
        rest += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert rest == everything[2:]


def test_a_cursor_of_another_list_is_refused(api: Api) -> None:
    api.call("POST", "/sources", json=source("a"), expect=201)
    api.call("POST", "/sources", json=source("b"), expect=201)
    by_name = api.call("GET", "/sources?limit=1").json()["next_cursor"]
    refused = api.call("GET", "/runs", params={"cursor": by_name}, expect=422).json()
    assert refused["field"] == "cursor" and refused["type"] == "urn:idsync:problem:invalid"
    assert api.call("GET", "/outbox", params={"cursor": "garbage"}, expect=422).json()["field"] == "cursor"


def test_an_id_beyond_the_database_range_is_refused_not_a_server_error(api: Api) -> None:
    huge = 2**70
    for method, path in (("GET", f"/runs/{huge}"), ("GET", f"/plans/{huge}/changes"), ("GET", f"/outbox?run_id={huge}"),
                         ("POST", f"/runs/{huge}/terminate"), ("POST", f"/runs/{huge}/passwords")):
        refused = api.call(method, path, json={"reason": "x"} if method == "POST" else None, expect=422).json()
        assert refused["type"] == "urn:idsync:problem:invalid" and "integer range" in refused["detail"], path
