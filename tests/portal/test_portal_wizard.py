"""The job collection wizard in a real browser (headless Debian chromium):
an operator creates a collection through the four steps, with a schedule,
notifications and the preview on, and sees the preview; a wrong recipient
is shown on the Scheduling and Notifications step with every other answer
kept; editing a stored collection shows the differences on the review."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from idsync.domain.collections import CollectionDefinition
from idsync.domain.principals import Principal
from idsync.services import collections
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.scheduler_world import World


def stored(portal: Portal, name: str) -> CollectionDefinition | None:
    return collections.find_collection(portal.world.ws.acting_as(Principal("olivia", "user")), name)


def open_wizard(portal: Portal, page: Page, path: str) -> None:
    """A schedule ``nightly`` exists; otto (operator) signs in and opens *path*."""
    World(portal.world.ws.acting_as(Principal("olivia", "user")), portal.world.root).schedule("nightly", [{"kind": "daily", "start": "2030-01-01T02:00"}])
    page.goto(f"{portal.url}/signin")
    sign_in(page, "otto")
    page.goto(f"{portal.url}{path}")


def test_an_operator_creates_a_collection_through_the_four_steps_and_sees_its_preview(
    portal: Portal, page: Page
) -> None:
    open_wizard(portal, page, "/collections")
    page.get_by_role("link", name="New collection").click()
    expect(page).to_have_url(f"{portal.url}/collections/new")
    expect(page.get_by_role("heading", level=2)).to_have_text("Step 1: Jobs")
    page.get_by_label("Job to add").select_option("people")
    page.get_by_role("button", name="Add job").click()
    page.get_by_label("Job to add").select_option("ou")
    page.get_by_label("On its failure").select_option("continue")
    page.get_by_role("button", name="Add job").click()
    page.get_by_role("button", name="Move ou up").click()  # ou first: people go into what it creates
    jobs = page.get_by_role("table", name="Jobs in run order")
    expect(jobs.get_by_role("row").nth(1)).to_contain_text("ou")
    expect(page.get_by_label("On failure of ou")).to_have_value("continue")
    assert_accessible(page)
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()

    expect(page.get_by_role("heading", level=2)).to_have_text("Step 2: Scheduling and Notifications")
    expect(page.get_by_role("link", name="See or create schedules")).to_have_attribute("href", "/schedules")
    page.get_by_label("Schedule", exact=True).select_option("nightly")
    page.get_by_label("Enable notifications").check()
    page.get_by_label("Recipients").fill("ops@example.org")
    page.get_by_label("Always").check()
    page.get_by_label("The job collection fails").check()
    page.get_by_label("Preview job collection when finished").check()
    screenshot(page, "wizard-scheduling")
    assert_accessible(page)
    page.get_by_role("button", name="Review your changes").click()

    expect(page.get_by_role("heading", level=2)).to_have_text("Step 3: Review your changes")
    summary = page.get_by_role("table", name="The new job collection")
    expect(summary.get_by_role("row", name=re.compile("^jobs"))).to_contain_text("1. ou (on failure: continue)")
    expect(summary.get_by_role("row", name=re.compile("^schedule"))).to_contain_text("nightly")
    expect(summary.get_by_role("row", name=re.compile("^notifications.recipients"))).to_contain_text("ops@example.org")
    page.get_by_label("Name (required)").fill("nightly-people")
    page.get_by_label("Description").fill("people, every night")
    page.get_by_role("button", name="Finish").click()

    expect(page.get_by_role("status")).to_contain_text("The job collection nightly-people is created")
    preview = page.get_by_role("table", name="Preview of nightly-people, job by job")
    expect(preview.get_by_role("row", name=re.compile("^people"))).to_contain_text("created 2")
    expect(preview.get_by_role("row", name=re.compile("^ou"))).to_contain_text("unchanged 1")
    screenshot(page, "wizard-preview")
    saved = stored(portal, "nightly-people")
    assert saved is not None
    assert [(j.job, j.on_failure) for j in saved.jobs] == [("ou", "continue"), ("people", "abort")]
    assert saved.schedule == "nightly" and saved.description == "people, every night"
    assert saved.notifications.enabled and saved.notifications.recipients == ["ops@example.org"]
    assert saved.notifications.triggers == ["always", "failed"] and saved.preview_when_finished


def test_a_wrong_recipient_is_shown_on_its_step_with_the_other_answers_kept(portal: Portal, page: Page) -> None:
    open_wizard(portal, page, "/collections/new")
    page.get_by_label("Job to add").select_option("people")
    page.get_by_role("button", name="Add job").click()
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()
    page.get_by_label("Schedule", exact=True).select_option("nightly")
    page.get_by_label("Enable notifications").check()
    page.get_by_label("Recipients").fill("ops@example.org, not-an-address")
    page.get_by_label("Records are updated").check()
    page.get_by_label("Preview job collection when finished").check()
    page.get_by_role("button", name="Review your changes").click()

    expect(page.get_by_role("heading", level=2)).to_have_text("Step 2: Scheduling and Notifications")
    expect(page.get_by_role("alert")).to_contain_text("'not-an-address' is not an e-mail address")
    expect(page.get_by_label("Schedule", exact=True)).to_have_value("nightly")
    expect(page.get_by_label("Enable notifications")).to_be_checked()
    expect(page.get_by_label("Recipients")).to_have_value("ops@example.org, not-an-address")
    expect(page.get_by_label("Records are updated")).to_be_checked()
    expect(page.get_by_label("Preview job collection when finished")).to_be_checked()
    expect(page.locator("main")).to_contain_text("Jobs: people (on failure: abort)")

    page.get_by_label("Recipients").fill("ops@example.org")
    page.get_by_role("button", name="Review your changes").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("Step 3: Review your changes")
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("alert")).to_contain_text("name the new collection")  # kept on step 3, nothing saved
    assert stored(portal, "new-collection") is None


def test_editing_a_collection_shows_the_differences_from_the_stored_version(portal: Portal, page: Page) -> None:
    open_wizard(portal, page, "/collections")
    page.get_by_role("link", name="Edit c").click()
    expect(page).to_have_url(f"{portal.url}/collections/c/edit")
    page.get_by_label("Job to add").select_option("ou")
    page.get_by_role("button", name="Add job").click()
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()
    page.get_by_label("Schedule", exact=True).select_option("nightly")
    page.get_by_role("button", name="Review your changes").click()

    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes.get_by_role("row", name=re.compile("^jobs"))).to_contain_text("2. ou (on failure: abort)")
    expect(changes.get_by_role("row", name=re.compile("^schedule"))).to_contain_text("none")
    expect(changes.get_by_role("row", name=re.compile("^schedule"))).to_contain_text("nightly")
    expect(changes.get_by_role("row")).to_have_count(3)  # the heading, jobs and schedule: nothing else differs
    screenshot(page, "wizard-review")
    assert_accessible(page)
    page.get_by_role("button", name="Finish").click()

    expect(page).to_have_url(f"{portal.url}/collections/c")
    saved = stored(portal, "c")
    assert saved is not None and saved.job_names == ["people", "ou"] and saved.schedule == "nightly"
