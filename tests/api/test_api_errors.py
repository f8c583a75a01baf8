"""Every error is one RFC 9457 problem document, its status chosen by the error's class."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idsync.api import errors
from idsync.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    IdsyncError,
    NotFoundError,
    PermissionDeniedError,
    StateConflictError,
    TransientError,
)
from tests.api.conftest import Api

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"].startswith("urn:idsync:problem:")
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(("error", "status"), [
    (ConfigError("bad", field="name", hint="fix it"), 422),
    (NotFoundError("no such thing"), 404),
    (StateConflictError("already done"), 409),
    (PermissionDeniedError("not you"), 403),
    (TransientError("busy"), 503),
    (AuthError("the server refused idsync's bind"), 502),
    (ConnectorError("the server said no"), 502),
])
def test_each_error_class_has_its_status(error: IdsyncError, status: int) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/raise")
    def raise_it() -> None:
        raise error

    body = is_problem(TestClient(app).get("/raise"), status)
    assert body["detail"] == error.message
    if error.field:
        assert (body["field"], body["hint"]) == ("name", "fix it")
    if status == 503:
        assert TestClient(app).get("/raise").headers["Retry-After"] == "30"


def test_an_unexpected_error_is_a_500_with_a_generic_detail() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    body = is_problem(TestClient(app, raise_server_exceptions=False).get("/boom"), 500)
    assert "internals" not in body["detail"]


def test_the_api_answers_problems(api: Api) -> None:
    assert is_problem(api.client.get("/api/v1/stores"), 401)["title"] == "Authentication required"
    bad = api.client.get("/api/v1/stores", headers={"Authorization": "Bearer idsync_nope_nope"})
    assert is_problem(bad, 401)["detail"].startswith("the API token is not valid")
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert is_problem(api.client.get("/api/v1/stores", headers={"Authorization": "Basic abc"}), 401)
    assert "nope" in is_problem(api.call("GET", "/stores/nope", expect=None), 404)["detail"]
    assert is_problem(api.call("GET", "/nowhere", expect=None), 404)
    assert is_problem(api.call("GET", "/runs/abc", expect=None), 422)["field"] == "path.run_id"
    assert is_problem(api.call("GET", "/runs?state=sleeping", expect=None), 422)["field"] == "query.state"
    invalid = is_problem(api.call("POST", "/stores", json={"name": "x", "kind": "floppy"}, expect=None), 422)
    assert "floppy" in invalid["detail"] or "kind" in invalid["detail"]
    in_use = is_problem(api.call("DELETE", "/stores/dir", expect=None), 409)
    assert "is used by job(s)" in in_use["detail"] and in_use["hint"]
    refused = is_problem(api.call("POST", "/jobs/people/run", user="audrey", expect=None), 403)
    assert "that needs the role operator" in refused["detail"]
    assert is_problem(api.call("GET", "/users", user="otto", expect=None), 403)
