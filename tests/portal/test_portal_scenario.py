"""The acceptance scenario of the portal, in one browser session after
another (headless Debian chromium), with an outbox sender delivering to a
real SMTP server (aiosmtpd), as ``idsync serve`` runs one:

1. an operator signs in;
2. creates an identity store (with its notification server and a workflow
   asking alice to approve), a data source and a job, and tries the job's
   mappings;
3. creates a schedule, and walks the collection wizard through Scheduling and Notifications and
   Review your changes to Finish, with the preview on;
4. sees the preview, then runs the collection (run now, on its schedule);
5. the approver signs in, sees the request with its badge, excludes one
   object, and approves;
6. the run report shows the counts, and the excluded object as not approved;
7. the collection's notification reached the SMTP server.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from idsync.domain.principals import Principal
from idsync.runtime.node import run_sender
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.scheduler_world import SUFFIX
from tests.servers.smtp import SmtpServer

STAFF = f"ou=Staff,{SUFFIX}"


@pytest.fixture
def smtp(portal: Portal) -> Iterator[SmtpServer]:
    """aiosmtpd, and an outbox sender delivering to it in a thread (as ``serve`` runs one)."""
    stop = threading.Event()
    sender_ws = portal.world.ws.acting_as(Principal("olivia", "user"))
    with SmtpServer() as server:
        sender = threading.Thread(target=run_sender, args=(sender_ws, stop, lambda _line: None),
                                  kwargs={"poll": 0.2}, daemon=True)
        sender.start()
        yield server
        stop.set()
        sender.join(timeout=15)


def create_store(page: Page, portal: Portal, smtp: SmtpServer) -> None:
    page.get_by_role("link", name="Stores").click()
    page.get_by_role("link", name="New identity store").click()
    page.get_by_role("link", name="Embedded directory").click()
    page.get_by_label("Name (required)").fill("hq")
    page.get_by_label("Directory file").fill(str(portal.world.root / "hq.db"))
    page.get_by_label("Suffix").fill(SUFFIX)
    page.get_by_label("SMTP host").fill("127.0.0.1")
    page.get_by_label("SMTP port").fill(str(smtp.port))
    page.get_by_label("TLS", exact=True).select_option("none")
    page.get_by_label("From address").fill("idsync@example.org")
    page.get_by_label("Manual runs need approval").check()
    page.get_by_label("Scheduled runs need approval").check()
    page.get_by_label("Approvers (idsync users)").fill("alice")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection succeeded")
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The identity store hq is created")


def create_source(page: Page, portal: Portal) -> None:
    (portal.world.root / "staff.csv").write_text(
        "id,first,last\n1,Ada,Lovelace\n2,Alan,Turing\n3,Grace,Hopper\n", encoding="utf-8"
    )
    page.get_by_role("link", name="Sources").click()
    page.get_by_role("link", name="New data source").click()
    page.get_by_role("link", name="CSV file").click()
    page.get_by_label("Name (required)").fill("staff")
    page.get_by_label("File", exact=True).fill(str(portal.world.root / "staff.csv"))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection succeeded")
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The data source staff is created")


def create_job(page: Page) -> None:
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="New sync job").click()
    page.get_by_label("Name (required)").fill("staff")
    page.get_by_label("Data source").select_option("staff")
    page.get_by_label("Identity store", exact=True).select_option("hq")
    page.get_by_label("Container DN of new objects").fill(STAFF)
    page.get_by_label("Create the container when missing").check()
    page.locator("#m0-attribute").fill("uid")
    page.locator("#m0-text").fill("id")
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m1-attribute").fill("cn")
    page.locator("#m1-origin").select_option("join")
    page.locator("#m1-text").fill("first, last")
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m2-attribute").fill("sn")
    page.locator("#m2-text").fill("last")
    page.get_by_role("button", name="Try it").click()
    expect(page.locator("#trial-summary")).to_contain_text("3 entries, 0 errors; nothing written.")
    expect(page.locator(".trial-entries")).to_contain_text(f"uid=3,{STAFF}")
    expect(page.locator(".trial-entries")).to_contain_text("Grace Hopper")
    screenshot(page, "scenario-try-it")
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The sync job staff is created")


def create_schedule(page: Page) -> None:
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("link", name="New schedule").click()
    page.get_by_label("Name (required)").fill("weekly")
    page.get_by_label("When it runs").select_option("weekly")
    page.get_by_label("At (HH:MM; daily, weekly and monthly)").fill("02:00")
    page.get_by_label("Weekdays (weekly: mon,tue,wed,thu,fri,sat,sun)").fill("mon")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Save schedule weekly").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")


def walk_the_wizard(page: Page) -> None:
    page.get_by_role("link", name="Collections").click()
    page.get_by_role("link", name="New collection").click()
    page.get_by_label("Job to add").select_option("staff")
    page.get_by_role("button", name="Add job").click()
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()
    page.get_by_label("Schedule", exact=True).select_option("weekly")
    page.get_by_label("Enable notifications").check()
    page.get_by_label("Recipients").fill("ops@example.org")
    page.get_by_label("Always").check()
    page.get_by_label("Preview job collection when finished").check()
    page.get_by_role("button", name="Review your changes").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("Step 3: Review your changes")
    page.get_by_label("Name (required)").fill("hq-staff")
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("status")).to_contain_text("The job collection hq-staff is created")
    preview = page.get_by_role("table", name="Preview of hq-staff, job by job")
    expect(preview.get_by_role("row", name=re.compile("^staff"))).to_contain_text("created 4")  # ou=Staff and 3 people
    screenshot(page, "scenario-preview")


def reload_until(page: Page, state: str, timeout: float = 30.0) -> None:
    """Reload the run's page until its heading shows *state* (the page has no live refresh without script)."""
    deadline = time.monotonic() + timeout
    heading = page.get_by_role("heading", level=1)
    while state not in heading.inner_text():
        assert time.monotonic() < deadline, heading.inner_text()
        time.sleep(0.2)
        page.reload()


def test_the_portal_scenario_from_a_new_store_to_an_approved_run_and_its_notification(
    portal: Portal, page: Page, smtp: SmtpServer
) -> None:
    page.goto(f"{portal.url}/signin")
    sign_in(page, "otto")
    create_store(page, portal, smtp)
    create_source(page, portal)
    create_job(page)
    create_schedule(page)
    walk_the_wizard(page)

    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("button", name="Run weekly now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    reload_until(page, "awaiting approval")  # the run plans in the background, then waits
    screenshot(page, "scenario-awaiting-approval")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "alice")
    expect(page.locator("#inbox-badge")).to_have_text("1")
    page.get_by_role("link", name=re.compile("^Requests")).click()
    page.get_by_role("link", name=re.compile(r"^request \d+")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hq-staff")
    page.get_by_label(re.compile(rf"create uid=3,{STAFF}")).uncheck()
    assert_accessible(page)
    screenshot(page, "scenario-request")
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(f"{portal.url}/runs/{run_id}")
    counts = page.get_by_role("table", name=f"Counts of run {run_id}")
    expect(counts.get_by_role("row", name="created")).to_contain_text("3")  # ou=Staff, Ada, Alan
    expect(counts.get_by_role("row", name="not approved")).to_contain_text("1")
    expect(page.locator("#inbox-badge")).to_have_count(0)
    screenshot(page, "scenario-run")

    messages = smtp.wait_for(2, timeout=30)  # alice's request message, then the run's notification
    to_ops = [m for m in messages if m.rcpt_tos == ["ops@example.org"]]
    assert to_ops and "hq-staff" in to_ops[0].subject, [(m.rcpt_tos, m.subject) for m in messages]
