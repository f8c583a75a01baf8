"""The portal's guards, over plain HTTP (httpx) against the served app: a
form without its session's CSRF token is refused, every page carries the
strict Content-Security-Policy, a sign-in only ever goes on to a page of
this site, a GET decides nothing, and a user without the approver role
cannot approve through the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest

from idsync.domain.principals import Principal
from idsync.portal.web import CSP, safe_next
from idsync.services import collection_runs, requests
from idsync.services.collection_runs import Runtime
from tests.api.conftest import PASSWORD
from tests.portal.conftest import Portal, sign_in_form
from tests.scheduler_world import World, now_utc, wall


@contextmanager
def signed_in(portal: Portal, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal.url, follow_redirects=False, timeout=15) as client:
        answer = sign_in_form(client, name=name, password=PASSWORD)
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def state_of(portal: Portal, request_id: int) -> str:
    return requests.get(portal.world.ws.acting_as(Principal("audrey", "user")), request_id).request.state


def test_a_form_without_the_csrf_token_is_refused_and_pages_carry_the_csp(portal: Portal) -> None:
    _run_id, request_id = portal.raise_request()
    with signed_in(portal, "bob") as bob:
        page = bob.get(f"/requests/{request_id}")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert "<script>" not in page.text and "style=" not in page.text

        for sent in ({"reason": "no token"}, {"reason": "forged", "csrf_token": "x" * 43}):
            refused = bob.post(f"/requests/{request_id}/deny", data=sent)
            assert refused.status_code == 403
            assert "security token" in refused.text
            assert refused.headers["content-security-policy"] == CSP
        assert state_of(portal, request_id) == "pending"

        # A GET never decides.
        assert bob.get(f"/requests/{request_id}/deny").status_code == 405
        assert state_of(portal, request_id) == "pending"

        denied = bob.post(f"/requests/{request_id}/deny", data={"reason": "not now", "csrf_token": csrf_of(page.text)})
        assert denied.status_code == 303 and denied.headers["location"] == f"/requests/{request_id}?done=denied"
        assert state_of(portal, request_id) == "denied"

    signin = httpx.get(f"{portal.url}/signin")
    assert signin.headers["content-security-policy"] == CSP
    for asset, media in (("portal.css", "text/css"), ("portal.js", "javascript")):
        served = httpx.get(f"{portal.url}/static/{asset}")  # the page's own CSS and script, from 'self'
        assert served.status_code == 200 and media in served.headers["content-type"]


def test_an_operator_cannot_approve_through_the_page(portal: Portal) -> None:
    _run_id, request_id = portal.raise_request()
    with signed_in(portal, "otto") as otto:
        page = otto.get(f"/requests/{request_id}")
        assert 'action="/requests/' + str(request_id) + '/approve"' not in page.text  # no form offered...
        refused = otto.post(f"/requests/{request_id}/approve", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403  # ...and none accepted
        assert "that needs the role approver" in refused.text
    assert state_of(portal, request_id) == "pending"


def test_pages_need_a_sign_in_that_goes_on_only_to_this_site(portal: Portal) -> None:
    with httpx.Client(base_url=portal.url, follow_redirects=False) as anonymous:
        answer = anonymous.get("/runs?state=failed")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=/runs%3Fstate%3Dfailed"
        gone = sign_in_form(anonymous, name="alice", password=PASSWORD, next="https://evil.example.org/")
        assert gone.status_code == 303 and gone.headers["location"] == "/"


def test_the_sign_in_form_itself_is_protected_from_forgery(portal: Portal) -> None:
    """Another site cannot sign a visitor in to an account of its choosing:
    the form's token must match the cookie set with the page (SameSite=Strict)."""
    with httpx.Client(base_url=portal.url, follow_redirects=False, timeout=15) as visitor:
        forged = visitor.post("/signin", data={"name": "alice", "password": PASSWORD, "next": "/"})
        assert forged.status_code == 403 and "security token" in forged.text
        assert "idsync_session" not in visitor.cookies
        page = visitor.get("/signin")
        cookie = page.headers["set-cookie"]
        assert "idsync_signin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        other = visitor.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": "x" * 43})
        assert other.status_code == 403 and "idsync_session" not in visitor.cookies
        signed = visitor.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        assert signed.status_code == 303 and "idsync_session" in visitor.cookies


@pytest.mark.parametrize(("given", "kept"), [
    ("/requests/7", "/requests/7"),
    ("/runs?state=failed", "/runs?state=failed"),
    ("//evil.example.org/x", "/"),
    ("/\\evil.example.org", "/"),
    ("https://evil.example.org/", "/"),
    ("javascript:alert(1)", "/"),
    ("", "/"),
    (None, "/"),
])
def test_only_local_paths_are_followed_after_sign_in(given: str | None, kept: str) -> None:
    assert safe_next(given) == kept


def test_an_auditor_reads_every_page_and_changes_nothing(portal: Portal) -> None:
    run_id, request_id = portal.raise_request()
    plan_id = requests.get(portal.world.ws.acting_as(Principal("audrey", "user")), request_id).plans[0].plan_id
    with signed_in(portal, "audrey") as audrey:
        pages = {
            "/": "Runs of the last 24 hours", "/runs?collection=c&state=awaiting_approval": f"run {run_id}",
            f"/runs/{run_id}": f"request {request_id}", f"/plans/{plan_id}?op=create": "uid=3,",
            "/requests?tab=all&status=pending": f"request {request_id}", f"/requests/{request_id}": "alice, bob",
            "/schedules": "No schedule", "/stores": "local", "/stores/dir": "&#34;approvers&#34;", "/jobs": "people → dir",
            "/jobs/people": "mappings", "/collections": "people", "/sources/people": "people.csv",
        }
        for path, shown in pages.items():
            answer = audrey.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert shown in answer.text, path
            assert answer.headers["content-security-policy"] == CSP
        ldif = audrey.get(f"/plans/{plan_id}/export.ldif")
        assert ldif.status_code == 200 and "changetype: add" in ldif.text and "uid=3," in ldif.text
        assert audrey.get("/requests/999").status_code == 404

        page = audrey.get(f"/requests/{request_id}")
        assert "/approve" not in page.text and "/deny" not in page.text
        token = csrf_of(page.text)
        assert audrey.post(f"/requests/{request_id}/deny", data={"reason": "x", "csrf_token": token}).status_code == 403
        assert audrey.post(f"/requests/{request_id}/comment", data={"text": "x", "csrf_token": token}).status_code == 403
    assert state_of(portal, request_id) == "pending"


def test_an_operator_disables_a_schedule_and_runs_it_now(portal: Portal) -> None:
    olivia = World(portal.world.ws.acting_as(Principal("olivia", "user")), portal.world.root)
    olivia.schedule("nightly", [{"kind": "once", "start": wall(now_utc() + timedelta(days=1))}])
    olivia.collection("d", ["people"], schedule="nightly")
    with signed_in(portal, "olivia") as client:
        page = client.get("/schedules")
        assert "Disable nightly" in page.text and "d" in page.text
        token = csrf_of(page.text)
        toggled = client.post("/schedules/nightly/enabled", data={"enabled": "false", "csrf_token": token})
        assert toggled.status_code == 303
        assert "Enable nightly" in client.get("/schedules").text
        started = client.post("/schedules/nightly/run-now", data={"csrf_token": token})
        assert started.status_code == 303 and started.headers["location"].startswith("/runs/")
        run_id = int(started.headers["location"].removeprefix("/runs/"))
    run = collection_runs.wait_for(olivia.ws, run_id, Runtime(), poll=0.1)
    assert run.state.value == "succeeded" and run.counts.created == 2
