"""The job collection wizard in a real browser (headless Debian chromium):
an operator creates a collection through the four steps, with a schedule,
notifications and the preview on, and sees the preview; a wrong recipient
is shown on the Scheduling and Notifications step with every other answer
kept; editing a stored collection shows the differences on the review;
forms without the CSRF token and users without the operator role are
refused. Then the wizard's pure logic (job list buttons, errors' steps,
composing an edit)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from idsync.domain.collections import CollectionDefinition
from idsync.domain.principals import Principal
from idsync.errors import ConfigError
from idsync.portal import wizard
from idsync.portal.web import CSP
from idsync.services import collections
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.portal.test_portal_security import csrf_of, signed_in
from tests.scheduler_world import SUFFIX, World


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
    expect(page.get_by_role("link", name="Create a schedule")).to_have_attribute("href", "/schedules/new")
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
    olivia = World(portal.world.ws.acting_as(Principal("olivia", "user")), portal.world.root)
    olivia.define("smart_group_job", {"name": "groups", "store": "dir", "containers": [SUFFIX]})
    olivia.define("smart_group_job", {"name": "elsewhere", "store": "other", "containers": ["dc=other"]})
    open_wizard(portal, page, "/collections")
    page.get_by_role("link", name="Edit c").click()
    expect(page).to_have_url(f"{portal.url}/collections/c/edit")
    page.get_by_label("Job to add").select_option("ou")
    page.get_by_role("button", name="Add job").click()
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()
    page.get_by_label("Schedule", exact=True).select_option("nightly")
    picker = page.get_by_role("group", name="Smart group update jobs to run after the jobs")
    expect(picker.get_by_role("checkbox")).to_have_count(1)  # only the update jobs of dir, the jobs' destination
    picker.get_by_label("groups").check()
    page.get_by_role("button", name="Review your changes").click()

    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes.get_by_role("row", name=re.compile("^jobs"))).to_contain_text("2. ou (on failure: abort)")
    expect(changes.get_by_role("row", name=re.compile("^schedule"))).to_contain_text("none")
    expect(changes.get_by_role("row", name=re.compile("^schedule"))).to_contain_text("nightly")
    expect(changes.get_by_role("row", name=re.compile("^smart group jobs"))).to_contain_text("groups")
    expect(changes.get_by_role("row")).to_have_count(4)  # the heading, jobs, schedule, smart group jobs: no more
    screenshot(page, "wizard-review")
    assert_accessible(page)
    page.get_by_role("button", name="Finish").click()

    expect(page).to_have_url(f"{portal.url}/collections/c")
    saved = stored(portal, "c")
    assert saved is not None and saved.job_names == ["people", "ou"] and saved.schedule == "nightly"
    assert saved.smart_group_jobs == ["groups"]


def test_an_edit_begun_from_an_older_version_is_reviewed_again_not_saved_over_it(portal: Portal, page: Page) -> None:
    open_wizard(portal, page, "/collections/c/edit")
    page.get_by_role("button", name="Next: Scheduling and Notifications").click()
    page.get_by_label("Preview job collection when finished").check()
    page.get_by_role("button", name="Review your changes").click()
    olivia = World(portal.world.ws.acting_as(Principal("olivia", "user")), portal.world.root)
    olivia.collection("c", ["people"], description="changed meanwhile")
    page.get_by_role("button", name="Finish").click()

    expect(page.get_by_role("alert")).to_contain_text("was changed by someone else since this edit began")
    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes.get_by_role("row", name=re.compile("^preview when finished"))).to_contain_text("yes")
    saved = stored(portal, "c")
    assert saved is not None and not saved.preview_when_finished  # nothing saved over the other change
    page.get_by_role("button", name="Finish").click()  # the user saw the new version: now it saves
    expect(page.get_by_role("status")).to_contain_text("The job collection c is updated")
    saved = stored(portal, "c")
    assert saved is not None and saved.preview_when_finished


def test_the_wizard_refuses_forms_without_the_token_and_users_without_the_operator_role(portal: Portal) -> None:
    with signed_in(portal, "otto") as otto:
        page = otto.get("/collections/new")
        assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
        assert "<script>" not in page.text and "style=" not in page.text
        finish = {"job": "people", "on_failure": "abort", "name": "sneaky", "go": "finish"}
        refused = otto.post("/collections/new", data=finish)
        assert refused.status_code == 403 and "security token" in refused.text
    with signed_in(portal, "audrey") as audrey:
        assert audrey.get("/collections/new").status_code == 403
        assert audrey.get("/collections/c/edit").status_code == 403
        assert "/collections/new" not in audrey.get("/collections").text
        token = csrf_of(audrey.get("/collections").text)
        assert audrey.post("/collections/new", data={**finish, "csrf_token": token}).status_code == 403
        assert audrey.post("/collections/c/edit", data={**finish, "csrf_token": token}).status_code == 403
    with signed_in(portal, "otto") as otto:
        assert otto.get("/collections/nowhere/edit").status_code == 404
    assert stored(portal, "sneaky") is None


# ---------------------------------------------------------------- pure logic


def test_job_list_buttons_move_and_remove_and_ignore_what_is_out_of_range() -> None:
    answers = wizard.Answers(jobs=[("a", "abort"), ("b", "continue"), ("c", "abort")])
    assert wizard._moved(answers, "up:1").jobs == [("b", "continue"), ("a", "abort"), ("c", "abort")]  # type: ignore[union-attr]
    assert wizard._moved(answers, "down:2").jobs == answers.jobs  # type: ignore[union-attr]
    assert wizard._moved(answers, "remove:0").jobs == [("b", "continue"), ("c", "abort")]  # type: ignore[union-attr]
    assert wizard._moved(answers, "remove:9") is None and wizard._moved(answers, "to:2") is None


def test_errors_are_shown_on_the_step_that_asks_for_their_field() -> None:
    assert wizard.step_of(ConfigError("x", field="jobs")) == 1
    assert wizard.step_of(ConfigError("x", field="notifications.triggers")) == 2
    assert wizard.step_of(ConfigError("x", field="name")) == 3
    try:
        wizard.compose(wizard.Answers(jobs=[("a", "abort")], notify=True, recipients="nope", triggers=["always"]), None)
    except ConfigError as exc:
        assert wizard.step_of(exc) == 2 and "'nope' is not an e-mail address" in exc.message
    else:
        raise AssertionError("a wrong address was accepted")
    try:
        wizard.compose(wizard.Answers(), None)
    except ConfigError as exc:
        assert wizard.step_of(exc) == 1
    else:
        raise AssertionError("a collection without jobs was accepted")


def test_an_edit_keeps_what_the_wizard_does_not_ask_about() -> None:
    current = CollectionDefinition.model_validate(
        {"name": "c", "jobs": ["a"], "owners": ["otto"], "overlap": "queue", "schedule": "nightly"}
    )
    answers = wizard.answers_of(current)
    edited = wizard.compose(wizard.Answers(**{**answers.__dict__, "schedule": "", "recipients": "a@example.org"}), current)
    assert edited.owners == ["otto"] and edited.overlap == "queue" and edited.schedule is None
    assert edited.notifications.recipients == ["a@example.org"] and not edited.notifications.enabled
