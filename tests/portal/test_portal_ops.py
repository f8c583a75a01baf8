"""The portal's runs in a real browser (headless Debian chromium): the run
history filtered by date (kept in the query string, a bad range refused
with its reason), the run page telling what the run notified (messages
delivered to an aiosmtpd server), and a slow run followed live through the
API's event stream, then stopped with the Terminate button."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.runtime.sender import Sender
from idsync.services import collection_runs, history, jobs
from idsync.services.workspace import Workspace
from idsync.store.runs_repo import RunRow
from tests.integration.test_notify_outbox import point_store
from tests.integration.test_run_stop_slow_records import SLOW, running_run, slow_job
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.portal.test_portal_security import csrf_of, signed_in
from tests.scheduler_world import World
from tests.servers.smtp import SmtpServer

RECIPIENTS = ["ops@example.org", "lead@example.org"]


def operated(portal: Portal) -> World:
    """The portal's world acting as otto (an operator): once users exist, only they define things."""
    return World(portal.world.ws.acting_as(Principal("otto", "user")), portal.world.root)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def test_the_run_history_is_filtered_by_date_and_a_bad_range_is_refused(portal: Portal, page: Page) -> None:
    otto = portal.world.ws.acting_as(Principal("otto", "user"))
    run = collection_runs.run_collection(otto, "c").run
    today = dt.datetime.now(dt.UTC).date()
    tomorrow, yesterday = today + dt.timedelta(days=1), today - dt.timedelta(days=1)

    page.goto(f"{portal.url}/runs")
    sign_in(page, "audrey")
    page.get_by_label("Collection or job").fill("c")
    page.get_by_label("From").fill(today.isoformat())
    page.get_by_label("To").fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"/runs\?collection=c&state=&from={today}&to={today}$"))
    expect(page.get_by_role("link", name=f"run {run.id}", exact=True)).to_be_visible()
    expect(page.get_by_label("From")).to_have_value(today.isoformat())  # the filters stay filled in
    screenshot(page, "runs")
    assert_accessible(page)

    page.goto(f"{portal.url}/runs?collection=c&from={tomorrow}")
    expect(page.get_by_text("No run matches.")).to_be_visible()
    page.goto(f"{portal.url}/runs?to={yesterday}")
    expect(page.get_by_text("No run matches.")).to_be_visible()

    with signed_in(portal, "audrey") as audrey:
        backwards = audrey.get("/runs", params={"from": today.isoformat(), "to": yesterday.isoformat()})
        assert backwards.status_code == 422 and "ends before it starts" in backwards.text
        not_a_day = audrey.get("/runs", params={"from": "2026-13-01"})
        assert not_a_day.status_code == 422 and "is not a day" in not_a_day.text
        assert f"run {run.id}<" in audrey.get("/runs", params={"from": today.isoformat()}).text

    # The service's filter, as every front end gets it.
    start = dt.datetime.combine(today, dt.time(), dt.UTC)
    found = history.list_runs(otto, since=start, before=start + dt.timedelta(days=1))
    assert run.id in [r.id for r in found]
    assert history.list_runs(otto, since=start + dt.timedelta(days=1)) == []


def test_the_run_page_shows_what_the_run_notified(portal: Portal, page: Page, smtp_server: SmtpServer) -> None:
    world = operated(portal)
    point_store(world, smtp_server.port)
    world.collection("n", ["people"], notifications={"enabled": True, "recipients": RECIPIENTS, "triggers": ["always"]})
    run = collection_runs.run_collection(world.ws, "n").run
    Sender(world.ws).send_due(run_ids=[run.id])
    delivered = sorted(r for m in smtp_server.messages for r in m.rcpt_tos)
    assert delivered == sorted(RECIPIENTS)

    page.goto(f"{portal.url}/runs/{run.id}")
    sign_in(page, "audrey")
    notified = page.get_by_role("table", name=f"Messages of run {run.id}")
    for recipient in RECIPIENTS:
        row = notified.get_by_role("row").filter(has_text=recipient)
        expect(row).to_contain_text("always")
        expect(row).to_contain_text("sent")
    expect(page.locator("#live-run")).to_have_count(0)  # a finished run is not followed
    screenshot(page, "run-notified")
    assert_accessible(page)


def _run_slow(database_url: str, ended: list[RunRow]) -> threading.Thread:
    def run() -> None:
        ws = Workspace(database_url=database_url, principal=Principal("otto", "user"))
        try:
            ended.append(jobs.run_job(ws, "slow"))
        finally:
            ws.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_running_run_is_followed_live_and_terminated_from_its_page(
    portal: Portal, page: Page, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IDSYNC_RECORD_TIME_LIMIT_SECONDS", "5")
    world = operated(portal)
    slow_job(world, SLOW)
    ended: list[RunRow] = []
    thread = _run_slow(world.ws.database_url, ended)
    run = running_run(world, "slow")

    # An auditor sees the run but gets no Terminate button, and the form is refused.
    with signed_in(portal, "audrey") as audrey:
        shown = audrey.get(f"/runs/{run.id}")
        assert shown.status_code == 200 and "Reload this page" in shown.text  # what shows without JavaScript
        assert f'action="/runs/{run.id}/terminate"' not in shown.text
        refused = audrey.post(f"/runs/{run.id}/terminate", data={"csrf_token": csrf_of(shown.text)})
        assert refused.status_code == 403
        assert audrey.get(f"/runs/{run.id}/terminate").status_code == 405  # a GET stops nothing
    with httpx.Client(base_url=portal.url) as anonymous:
        assert anonymous.post(f"/runs/{run.id}/terminate").status_code in (303, 403)

    page.goto(f"{portal.url}/runs/{run.id}")
    sign_in(page, "otto")
    status = page.locator("#live-status")
    expect(status).to_have_text("The run is running.")  # written by the script from the event stream
    expect(page.locator("#run-log li").first).to_be_visible()
    screenshot(page, "run-live")
    assert_accessible(page)

    page.get_by_label("Reason for terminating").fill("maintenance window")
    page.get_by_role("button", name="Terminate").click()
    expect(page.get_by_role("status").filter(has_text="Termination asked")).to_be_visible()
    # The stream's end reloads the page: the report of the stopped run.
    expect(page.get_by_role("heading", level=1)).to_contain_text("terminated", timeout=30_000)
    expect(page.locator("#live-run")).to_have_count(0)
    expect(page.locator("#run-log")).to_contain_text("maintenance window")
    thread.join(timeout=30)
    (finished,) = ended
    assert finished.state is RunState.TERMINATED and finished.error is not None
    assert finished.error == "terminated by otto: maintenance window"
