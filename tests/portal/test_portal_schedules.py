"""Schedules in the portal (headless Debian chromium): an operator creates
one from the form (a wrong weekday first, refused on the form with every
answer kept), reviews it, saves it, sees its next runs in its own zone,
attaches it to nothing yet, adds and removes triggers through the review,
and a stale review is refused; an auditor reads but cannot save."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from idsync.domain.principals import Principal
from idsync.services import schedules
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.scheduler_world import World


def system(portal: Portal) -> World:
    """The portal's world, acting with every right (the test's own hand)."""
    return World(portal.world.ws.acting_as(Principal.system("tests")), portal.world.root)


def test_an_operator_creates_a_schedule_reviews_it_and_edits_its_triggers(portal: Portal, page: Page) -> None:
    page.goto(f"{portal.url}/schedules/new")
    sign_in(page, "otto")
    expect(page.get_by_role("heading", level=1)).to_have_text("New schedule")
    page.get_by_label("Name (required)").fill("nightly")
    page.get_by_label("When it runs").select_option("weekly")
    page.get_by_label("At (HH:MM; daily, weekly and monthly)").fill("02:30")
    page.get_by_label("Time zone (IANA name)").fill("Europe/Berlin")
    page.get_by_label("Weekdays (weekly: mon,tue,wed,thu,fri,sat,sun)").fill("mon,fry")
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_role("alert")).to_have_text("Weekdays: 'fry' is not a weekday (use mon,tue,wed,thu,fri,sat,sun)")
    expect(page.get_by_label("Name (required)")).to_have_value("nightly")  # nothing typed is lost

    page.get_by_label("Weekdays (weekly: mon,tue,wed,thu,fri,sat,sun)").fill("mon,fri")
    page.get_by_role("button", name="Review").click()
    summary = page.get_by_role("table", name="The new schedule")
    expect(summary).to_contain_text("weekly on Mon, Fri at 02:30")
    expect(summary).to_contain_text("Europe/Berlin")
    assert schedules.find_schedule(system(portal).ws, "nightly") is None  # a review saves nothing
    screenshot(page, "schedule-review")
    assert_accessible(page)
    page.get_by_role("button", name="Save schedule nightly").click()

    expect(page).to_have_url(re.compile(r"/schedules/nightly\?saved=1$"))
    expect(page.get_by_role("status")).to_have_text("Saved.")
    upcoming = page.locator("#upcoming li")
    expect(upcoming).to_have_count(10)
    expect(upcoming.first).to_contain_text(re.compile(r"02:30 CES?T"))  # its own zone, named
    screenshot(page, "schedule")
    assert_accessible(page)

    page.get_by_role("link", name="Edit triggers and settings").click()
    page.get_by_label("When it runs").select_option("cron")
    page.get_by_label("Cron expression (cron)").fill("*/15 * * * *")
    page.get_by_role("button", name="Review").first.click()
    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes).to_contain_text("*/15 * * * *")
    page.get_by_role("button", name="Save schedule nightly").click()
    expect(page.locator("#triggers li")).to_have_count(2)

    page.get_by_role("link", name="Edit triggers and settings").click()
    page.get_by_role("button", name="Remove trigger 1").click()
    # someone else edits the schedule between the review and the save
    stored = schedules.find_schedule(system(portal).ws, "nightly")
    system(portal).define("schedule", {**stored.model_dump(mode="json"), "description": "changed meanwhile"})
    page.get_by_role("button", name="Save schedule nightly").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The definition changed since it was read")
    expect(page.locator("main")).to_contain_text("schedule 'nightly' changed since it was read")
    assert len(schedules.find_schedule(system(portal).ws, "nightly").triggers) == 2

    page.goto(f"{portal.url}/schedules/nightly/edit")
    page.get_by_role("button", name="Remove trigger 1").click()
    page.get_by_role("button", name="Save schedule nightly").click()
    expect(page.locator("#triggers li")).to_have_count(1)
    expect(page.locator("#triggers li")).to_contain_text("*/15 * * * *")


def test_an_auditor_reads_schedules_but_cannot_save_one(portal: Portal, page: Page) -> None:
    system(portal).schedule("weekly", [{"kind": "daily", "start": "2026-01-01T03:00:00", "timezone": "UTC"}])
    page.goto(f"{portal.url}/schedules/weekly")
    sign_in(page, "audrey")
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedule weekly")
    page.get_by_role("link", name="Edit triggers and settings").click()
    page.get_by_role("button", name="Disable trigger 1").click()
    page.get_by_role("button", name="Save schedule weekly").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Permission denied")
    expect(page.locator("main")).to_contain_text("may not")
    assert schedules.find_schedule(system(portal).ws, "weekly").triggers[0].enabled
