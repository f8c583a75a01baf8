"""The portal's admin pages in a real browser (headless Debian chromium):
an administrator manages users, roles and role groups; a token's secret is
shown once and works until revoked; an auditor pages through the audit log
and verifies it; failed notifications are retried and finished ones
purged; the settings show where each value comes from, secrets masked.
Operators and auditors are refused what only administrators may do, on
the page and on the form alike (over plain HTTP)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from idsync.domain.principals import Principal
from idsync.portal.web import CSP
from idsync.runtime.sender import Sender
from idsync.services import collection_runs, outbox, tokens, users
from tests.api.conftest import PASSWORD
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.portal.test_portal_security import csrf_of, sign_in_form, signed_in
from tests.scheduler_world import SUFFIX, World

NEW_PASSWORD = "a longer passphrase"
DB_SECRET = "hunter2-db-secret"


def test_an_admin_manages_users_roles_and_role_groups(portal: Portal, page: Page) -> None:
    page.goto(f"{portal.url}/admin")
    sign_in(page, "olivia")
    page.get_by_role("link", name="Users and roles").click()
    expect(page.get_by_role("table", name="Users and their roles")).to_contain_text("otto")

    add = page.locator("form[action='/admin/users']")
    add.get_by_label("User name").fill("nora")
    add.get_by_label("Password (local users)").fill("short")
    add.get_by_label("operator").check()
    add.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")  # refused, with why

    add = page.locator("form[action='/admin/users']")
    add.get_by_label("User name").fill("nora")
    add.get_by_label("Display name").fill("Nora Kerr")
    add.get_by_label("Password (local users)").fill("nora's first password")
    add.get_by_label("operator").check()
    add.get_by_role("button", name="Add user").click()
    expect(page).to_have_url(f"{portal.url}/admin/users/nora?done=added")
    expect(page.locator("#user-roles")).to_have_text("operator")

    page.get_by_label("auditor").check()
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#user-roles")).to_have_text("auditor, operator")
    page.get_by_label("operator").check()
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#user-roles")).to_have_text("auditor")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#user-state")).to_have_text("disabled")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#user-state")).to_have_text("enabled")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_have_text("The password is set.")
    screenshot(page, "admin-user")
    assert_accessible(page)
    assert NEW_PASSWORD not in page.content()

    with httpx.Client(base_url=portal.url) as nora:
        answer = sign_in_form(nora, name="nora", password=NEW_PASSWORD)
    assert answer.status_code == 303  # the new password signs nora in

    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Users and roles").click()
    group = f"cn=helpdesk,{SUFFIX}"
    page.get_by_label("Store", exact=True).fill("dir")
    page.get_by_label("Group DN").fill(group)
    page.get_by_label("Role", exact=True).select_option("operator")
    page.get_by_role("button", name="Add group").click()
    expect(page.get_by_role("table", name="Role groups")).to_contain_text(group)
    screenshot(page, "admin-users")
    assert_accessible(page)
    page.get_by_role("button", name=f"Stop {group} granting operator").click()
    expect(page.get_by_text("No directory group grants a role.")).to_be_visible()


@pytest.mark.parametrize("name", ["otto", "audrey"])
def test_operators_and_auditors_are_refused_the_admin_pages_and_forms(portal: Portal, name: str) -> None:
    with signed_in(portal, name) as client:
        index = client.get("/admin")
        assert index.status_code == 200 and index.headers["content-security-policy"] == CSP
        assert 'href="/admin/users"' not in index.text  # no link to what only admins may open
        token = csrf_of(index.text)
        for path in ("/admin/users", "/admin/users/olivia", "/admin/settings", "/admin/tokens?every=1"):
            refused_page = client.get(path)
            assert refused_page.status_code == 403, path
            assert refused_page.headers["content-security-policy"] == CSP
        posts = {
            "/admin/users": {"name": "mallory", "password": "a password long enough", "roles": "admin"},
            f"/admin/users/{name}/roles": {"roles": "admin", "action": "grant"},
            "/admin/users/olivia/disabled": {"disabled": "true"},
            "/admin/users/olivia/password": {"password": "taken over at last"},
            "/admin/role-groups": {"store": "dir", "group_dn": f"cn=x,{SUFFIX}", "role": "admin"},
            "/admin/tokens": {"name": "stolen", "user": "olivia"},
        }
        for path, form in posts.items():
            refused = client.post(path, data={**form, "csrf_token": token})
            assert refused.status_code == 403, path
        if name == "audrey":  # an auditor changes nothing: not the outbox either
            for path in ("/admin/outbox/retry", "/admin/outbox/purge"):
                assert client.post(path, data={"csrf_token": token}).status_code == 403
        assert client.post("/admin/users", data={"name": "mallory"}).status_code == 403  # no CSRF token
    olivia = portal.world.ws.acting_as(Principal("olivia", "user"))
    assert "mallory" not in [d.user.name for d in users.list_users(olivia)]
    assert users.show_user(olivia, name).roles == [("operator" if name == "otto" else "auditor")]
    assert not users.show_user(olivia, "olivia").user.disabled
    assert [t.name for t in tokens.list_tokens(olivia)] == ["tests"]
    assert users.list_role_groups(olivia) == []


def test_a_new_token_is_shown_once_and_works_until_revoked(portal: Portal, page: Page) -> None:
    page.goto(f"{portal.url}/admin/tokens")
    sign_in(page, "otto")
    page.get_by_label("Token name").fill("ci")
    page.get_by_label("Valid for").fill("30d")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"idsync_[0-9a-f]{12}_\S+", secret)
    expect(page.get_by_text("it is shown this once")).to_be_visible()
    screenshot(page, "admin-token-created")
    assert_accessible(page)

    api = httpx.get(f"{portal.url}/api/v1/runs", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200

    page.goto(f"{portal.url}/admin/tokens")
    assert secret not in page.content() and secret.rsplit("_", 1)[1] not in page.content()
    table = page.get_by_role("table", name="My tokens")
    expect(table).to_contain_text("ci")
    table.get_by_role("button", name="Revoke token ci of otto").click()
    expect(page.get_by_role("status")).to_have_text("The token is revoked.")
    assert httpx.get(f"{portal.url}/api/v1/runs", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_an_auditor_pages_through_the_audit_log_and_verifies_it(portal: Portal, page: Page) -> None:
    olivia = portal.world.ws.acting_as(Principal("olivia", "user"))
    for number in range(55):
        tokens.create(olivia, f"batch {number}")

    page.goto(f"{portal.url}/admin/audit")
    sign_in(page, "audrey")
    page.get_by_label("Kind of object").fill("token")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/admin/audit\?kind=token&name=$"))
    entries = page.get_by_role("table", name="Audit entries")
    expect(entries.locator("tbody tr")).to_have_count(50)
    expect(entries).to_contain_text("olivia/batch 54")
    page.get_by_role("link", name="Older").click()
    expect(entries.locator("tbody tr")).to_have_count(60 - 50)  # 5 tokens of the fixture, 55 here
    expect(entries).to_contain_text("olivia/tests")
    expect(page.get_by_role("link", name="Newest")).to_be_visible()
    expect(page.get_by_role("link", name="Older")).to_have_count(0)  # the last page

    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="The audit trails are intact")).to_be_visible()
    expect(page.get_by_role("table", name="Trails checked")).to_contain_text("audit")
    screenshot(page, "admin-audit")
    assert_accessible(page)

    with signed_in(portal, "otto") as otto:  # verifying needs the auditor role
        token = csrf_of(otto.get("/admin/audit").text)
        assert otto.post("/admin/audit/verify", data={"csrf_token": token}).status_code == 403


def test_failed_notifications_are_retried_and_finished_ones_purged(
    portal: Portal, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_OUTBOX_GIVE_UP_SECONDS", "1")  # nothing listens on the store's port 9
    world = World(portal.world.ws.acting_as(Principal("otto", "user")), portal.world.root)
    world.collection("n", ["people"], notifications={
        "enabled": True, "recipients": ["ops@example.org"], "triggers": ["always"]})
    run = collection_runs.run_collection(world.ws, "n").run
    Sender(world.ws).send_due(run_ids=[run.id])
    (failed,) = outbox.list_messages(world.ws, run_id=run.id)
    assert failed.state == "failed"

    page.goto(f"{portal.url}/admin/outbox")
    sign_in(page, "olivia")
    given_up = page.get_by_role("table", name="Messages given up on")
    expect(given_up).to_contain_text("ops@example.org")
    screenshot(page, "admin-outbox")
    assert_accessible(page)
    given_up.get_by_role("button", name=f"Retry message {failed.id}").click()
    expect(page.get_by_role("status")).to_have_text("1 failed message put back to be sent.")
    (again,) = outbox.list_messages(world.ws, run_id=run.id)
    assert again.state in ("pending", "sending", "failed") and again.id == failed.id

    Sender(world.ws).send_due(run_ids=[run.id])
    page.get_by_role("button", name="Purge sent and failed messages").click()
    expect(page.get_by_role("status")).to_have_text("1 finished message deleted.")
    assert outbox.list_messages(world.ws, run_id=run.id) == []


def test_the_settings_show_their_sources_with_secrets_masked(
    portal: Portal, page: Page, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = (tmp_path / "home" / "secret.key").read_text(encoding="utf-8").strip()  # the key in use, so nothing changes
    monkeypatch.setenv("IDSYNC_SECRET_KEY", key)
    monkeypatch.setenv("IDSYNC_DATABASE_URL", f"postgresql+psycopg://idsync:{DB_SECRET}@db.example.org/idsync")
    monkeypatch.setenv("IDSYNC_LOG_LEVEL", "INFO")

    page.goto(f"{portal.url}/admin/settings")
    sign_in(page, "olivia")
    table = page.get_by_role("table", name="Settings in effect")
    log_level = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="log_level", exact=True))
    expect(log_level).to_contain_text("INFO")
    expect(log_level).to_contain_text("environment")
    batch = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="batch_size", exact=True))
    expect(batch).to_contain_text("default")
    url = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="database_url", exact=True))
    expect(url).to_contain_text("idsync:***@db.example.org")
    secret_key = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="secret_key", exact=True))
    expect(secret_key).to_contain_text("(set)")
    html = page.content()
    assert DB_SECRET not in html and key not in html
    screenshot(page, "admin-settings")
    assert_accessible(page)
    assert PASSWORD not in html
