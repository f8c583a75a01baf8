"""Signing in for a session cookie, the CSRF token it needs, bearer tokens, signing out."""

from __future__ import annotations

from idsync.api.routers import session as session_router
from tests.api.conftest import PASSWORD, Api


def sign_in(api: Api, name: str, password: str = PASSWORD) -> dict:  # type: ignore[type-arg]
    response = api.client.post("/api/v1/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_session_cookie_needs_its_csrf_token_to_change_anything(api: Api) -> None:
    signed = sign_in(api, "otto")
    assert signed["user"] == "otto" and signed["roles"] == ["operator"]
    cookie = api.client.cookies.get("idsync_session")
    assert cookie
    set_cookie = api.client.post("/api/v1/session", json={"name": "otto", "password": PASSWORD}).headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and "Secure" not in set_cookie
    csrf = api.client.get("/api/v1/session").json()["csrf_token"]

    assert api.client.get("/api/v1/whoami").json()["user"] == "otto"
    refused = api.client.post("/api/v1/jobs/people/preview")
    assert refused.status_code == 403 and refused.json()["field"] == "X-CSRF-Token"
    wrong = api.client.post("/api/v1/jobs/people/preview", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    accepted = api.client.post("/api/v1/jobs/people/preview", headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202, accepted.text

    assert api.client.delete("/api/v1/session").status_code == 403  # signing out needs it too
    assert api.client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert api.client.get("/api/v1/whoami").status_code == 401


def test_a_forged_or_foreign_cookie_is_not_a_session(api: Api) -> None:
    api.client.cookies.set("idsync_session", "eyJ1Ijoib2xpdmlhIiwiYyI6IngifQ.forged.sig")
    assert api.client.get("/api/v1/whoami").status_code == 401


def test_a_bearer_token_needs_no_csrf_token(api: Api) -> None:
    assert api.call("POST", "/jobs/people/preview", user="otto", expect=202)
    me = api.call("GET", "/whoami", user="alice").json()
    assert (me["user"], me["roles"]) == ("alice", ["approver"])


def test_a_wrong_password_is_refused_and_repeated_failures_are_slowed_down(api: Api) -> None:
    session_router.FAILURES.clear(("bob", "testclient"))
    for _ in range(session_router.MAX_FAILURES):
        wrong = api.client.post("/api/v1/session", json={"name": "bob", "password": "not it at all"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "sign-in refused: wrong user name or password"
    assert "idsync_session" not in api.client.cookies
    held = api.client.post("/api/v1/session", json={"name": "bob", "password": PASSWORD})
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    session_router.FAILURES.clear(("bob", "testclient"))
    assert sign_in(api, "bob")["user"] == "bob"


def test_an_unknown_user_gets_the_same_answer(api: Api) -> None:
    response = api.client.post("/api/v1/session", json={"name": "mallory", "password": "whatever it is"})
    assert response.status_code == 401
    assert response.json()["detail"] == "sign-in refused: wrong user name or password"


def test_signing_in_takes_json_only_so_no_form_of_another_site_can_sign_a_visitor_in(api: Api) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        forged = api.client.post("/api/v1/session", content=f'{{"name": "olivia", "password": "{PASSWORD}"}}',
                                 headers={"Content-Type": content_type})
        assert forged.status_code == 422, (content_type, forged.text)
        assert "idsync_session" not in forged.headers.get("set-cookie", "")
