"""The portal in a real browser (headless Debian chromium): an approver
follows the link of a request, signs in (a wrong password first), sees the
inbox badge, approves only the creates, and the run's report shows what was
created and what was not approved; a denial without a reason is refused;
the dashboard and the request page pass an axe-core accessibility check."""

from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.portal.conftest import Portal, screenshot, sign_in

SERIOUS = ("serious", "critical")


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on *page*."""
    results = Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"] if v.get("impact") in SERIOUS
    ]
    assert bad == [], bad


def test_an_approver_opens_the_emailed_link_signs_in_and_approves_only_the_creates(portal: Portal, page: Page) -> None:
    run_id, request_id = portal.raise_request()

    page.goto(f"{portal.url}/requests/{request_id}")  # the link an approver's email carries
    expect(page).to_have_url(re.compile(rf"/signin\?next=/requests/{request_id}$"))
    sign_in(page, "alice", "not her password")
    expect(page.get_by_role("alert")).to_contain_text("sign-in refused")
    sign_in(page, "alice")
    expect(page).to_have_url(f"{portal.url}/requests/{request_id}")
    expect(page.locator("#inbox-badge")).to_have_text("1")
    expect(page.locator("#inbox-badge")).to_have_css("background-color", "rgb(179, 38, 30)")  # the CSS loaded under the CSP
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Request {request_id}: c")
    expect(page.locator(".change.op-update")).to_contain_text("uid=1,")
    expect(page.locator(".change.op-create")).to_contain_text("uid=3,")
    screenshot(page, "request")
    assert_accessible(page)

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#inbox-badge")).to_have_text("1")
    inbox = page.get_by_role("region", name="Requests waiting for me")
    expect(inbox.get_by_role("link", name=f"request {request_id}")).to_be_visible()
    screenshot(page, "dashboard")
    assert_accessible(page)

    inbox.get_by_role("link", name=f"request {request_id}").click()
    for kind in ("update", "delete", "disable", "move"):
        page.get_by_label(kind, exact=True).uncheck()
    page.get_by_label("Comment on the approval").fill("only the newcomer for now")
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(f"{portal.url}/runs/{run_id}")
    counts = page.get_by_role("table", name=f"Counts of run {run_id}")
    expect(counts.get_by_role("row", name="created")).to_contain_text("1")
    expect(counts.get_by_role("row", name="not approved")).to_contain_text("1")
    expect(page.locator("#inbox-badge")).to_have_count(0)  # nothing waits for alice any more
    screenshot(page, "run")
    page.get_by_role("link", name=f"request {request_id}").click()
    expect(page.get_by_role("table").last).to_contain_text("only the newcomer for now")


def test_a_denial_without_a_reason_is_refused_with_a_message(portal: Portal, page: Page) -> None:
    _run_id, request_id = portal.raise_request()
    page.goto(f"{portal.url}/signin")
    sign_in(page, "bob")
    page.goto(f"{portal.url}/requests/{request_id}")
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("alert")).to_contain_text("a denial needs a reason")
    expect(page.get_by_role("heading", level=1)).to_contain_text("pending")

    page.get_by_label("Reason (required)").fill("wrong export")
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("status")).to_have_text("The request is denied.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("denied")
