"""Smart groups in the portal, in a real browser: an operator lists them,
opens one, previews the members an update would add, asks why an entry is
or is not a member, updates it now and sees the run; runs an update job
from its page; an auditor reads the same pages but cannot update (the
service refuses a forged form too). The pages pass an axe-core check."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs, Scope
from idsync.domain.principals import Principal
from idsync.services import connections, definitions, jobs, requests, smartgroup_runs, smartgroups
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.scheduler_world import PEOPLE, SUFFIX, World

GROUP_DN = f"cn=Lovelaces,{SUFFIX}"


def _smart_group(portal: Portal) -> None:
    """Group 'lovelaces' (sn=Lovelace among the people, so uid=1 only) and
    update job 'groups' listing it; the group entry lists nobody yet."""
    ws = portal.world.ws.acting_as(Principal("olivia", "user"))
    jobs.run_job(ws, "people")
    with connections.directory(ws, "dir") as directory:
        [outcome] = directory.apply([Change(ChangeOp.CREATE, GROUP_DN, attrs=Attrs({
            "objectClass": ["groupOfNames"], "cn": ["Lovelaces"], "member": [SUFFIX],
        }))])
        assert outcome.error is None, outcome.error
    smartgroups.save_group(ws, definitions.parse("smart_group", {
        "name": "lovelaces", "store": "dir", "dn": GROUP_DN, "description": "The Lovelace family",
        "queries": [{"base": PEOPLE, "filter": "(sn=Lovelace)"}],
    }))
    smartgroups.save_job(ws, definitions.parse("smart_group_job", {"name": "groups", "store": "dir", "groups": ["lovelaces"]}))


def test_an_operator_previews_explains_and_updates_a_smart_group(portal: Portal, page: Page) -> None:
    _smart_group(portal)
    page.goto(f"{portal.url}/smartgroups")
    sign_in(page, "otto")
    expect(page.get_by_role("link", name="Smart groups")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Smart groups")
    expect(page.get_by_role("row", name=re.compile("lovelaces"))).to_contain_text("not updated lately")
    assert_accessible(page)

    page.get_by_role("link", name="lovelaces").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Smart group lovelaces")
    expect(page.locator("main")).to_contain_text("(sn=Lovelace)")
    expect(page.get_by_role("link", name="groups", exact=True)).to_be_visible()  # the update job that recomputes it
    screenshot(page, "smartgroup")
    assert_accessible(page)

    page.get_by_role("link", name="Preview the next update").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview of smart group lovelaces")
    added = page.get_by_role("region", name="Members to add")
    expect(added).to_contain_text(f"uid=1,{PEOPLE}")
    expect(added).not_to_contain_text("uid=2,")
    expect(page.get_by_role("region", name="Members to remove")).to_contain_text(SUFFIX)  # the placeholder leaves
    assert_accessible(page)

    page.get_by_role("link", name="Back to the group").click()
    page.get_by_label("Explain the entry (DN)").fill(f"uid=2,{PEOPLE}")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#verdict")).to_contain_text(f"uid=2,{PEOPLE} is not a member")
    expect(page.locator(".reasons")).to_contain_text("Turing")  # the failed term, with the entry's value
    assert_accessible(page)
    page.get_by_label("Entry (DN)").fill("not a DN")
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_role("alert")).to_contain_text("not a DN")

    page.goto(f"{portal.url}/smartgroups/lovelaces")
    page.get_by_role("button", name="Update now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("smartgroup lovelaces")
    groups = page.get_by_role("region", name="Smart groups")
    expect(groups.get_by_role("row", name=re.compile("lovelaces"))).to_contain_text("updated")
    assert_accessible(page)
    with connections.directory(portal.world.ws.acting_as(Principal("olivia", "user")), "dir") as directory:
        entry = next(iter(directory.search(GROUP_DN, Scope.BASE, "(objectClass=*)", ["member"])))
    assert [m.lower() for m in entry.attrs.get_values("member")] == [f"uid=1,{PEOPLE}".lower()]

    page.goto(f"{portal.url}/smartgroups")
    expect(page.get_by_role("row", name=re.compile("lovelaces"))).to_contain_text("updated (+1 −1)")


def test_an_update_job_runs_from_its_page_and_an_auditor_cannot_update(portal: Portal, page: Page) -> None:
    _smart_group(portal)
    page.goto(f"{portal.url}/smartgroup-jobs")
    sign_in(page, "otto")
    expect(page.get_by_role("row", name=re.compile("groups"))).to_contain_text("never run")
    assert_accessible(page)
    page.get_by_role("link", name="groups", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Smart group update job groups")
    expect(page.locator("main")).to_contain_text("lovelaces")
    assert_accessible(page)
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("smartgroup groups")
    run_url = page.url
    page.goto(f"{portal.url}/smartgroup-jobs/groups")
    expect(page.get_by_role("region", name="Runs").get_by_role("link", name=re.compile(r"run \d+"))).to_have_attribute(
        "href", run_url.removeprefix(portal.url)
    )
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "audrey")
    page.goto(f"{portal.url}/smartgroups/lovelaces")
    expect(page.get_by_role("heading", level=1)).to_have_text("Smart group lovelaces")
    expect(page.get_by_role("button", name="Update now")).to_have_count(0)
    page.goto(f"{portal.url}/smartgroup-jobs/groups")
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    token = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    assert token
    for action in ("/smartgroups/lovelaces/update", "/smartgroup-jobs/groups/run"):
        refused = page.request.post(f"{portal.url}{action}", form={"csrf_token": token}, max_redirects=0)
        assert refused.status == 403, (action, refused.status)
        assert "operator" in refused.text()


def test_an_approver_leaves_one_member_out_of_a_held_group(portal: Portal, page: Page) -> None:
    _smart_group(portal)
    ws = portal.world.ws.acting_as(Principal("olivia", "user"))
    smartgroups.save_group(ws, definitions.parse("smart_group", {
        "name": "lovelaces", "store": "dir", "dn": GROUP_DN, "description": "Everyone, at most one",
        "queries": [{"base": PEOPLE, "filter": "(objectClass=inetOrgPerson)"}], "max_members": 1,
    }))
    World(ws, portal.world.root).define("store", {
        "name": "dir", "kind": "local", "path": str(portal.world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {"host": "127.0.0.1", "port": 9, "tls": "none", "sender": "idsync@example.org"},
        "workflow": {"held": True, "approvers": ["alice", "bob"]},
    })
    held = smartgroup_runs.run_update_job(ws.acting_as(Principal("otto", "user")), "groups")
    assert [r.outcome for r in held.groups] == ["held"]
    raised = requests.of_run(ws, held.run.id)
    assert raised is not None

    page.goto(f"{portal.url}/requests/{raised.id}")
    sign_in(page, "alice")
    members = page.get_by_role("group", name=f"Members of {GROUP_DN} to approve one by one")
    expect(members.get_by_role("checkbox")).to_have_count(3)  # adds uid=1 and uid=2, removes the placeholder
    assert_accessible(page)
    members.get_by_label(re.compile(r"add uid=2,")).uncheck()
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    with connections.directory(ws, "dir") as directory:
        [group] = directory.search(GROUP_DN, Scope.BASE, "(objectClass=*)", ["member"])
    assert sorted(group.attrs.get("member", ())) == [f"uid=1,{PEOPLE}"]  # uid=2 was left out, alone
