"""The directory browser in a real browser (headless Debian chromium), on
the embedded directory: the tree one level at a time, an entry's
attributes (a binary photo shown by its size, the password never), a
search by filter with base and scope paged through, a bad filter refused
with its reason; and an approver, who only decides requests, refused."""

from __future__ import annotations

import base64

from playwright.sync_api import Page, expect

from idsync.domain.principals import Principal
from idsync.portal.web import CSP
from idsync.services import directory
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.portal.test_portal_security import signed_in
from tests.scheduler_world import PEOPLE, SUFFIX

PASSWORD_HASH = "{SSHA}dGhlIHBhc3N3b3JkIGhhc2g="
PHOTO = bytes(range(256)) * 4
MANY = 60


def fill_directory(portal: Portal) -> None:
    """Grace (with a password and a photo) and MANY numbered people, imported as LDIF."""
    records = [
        f"dn: uid=grace,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: grace\ncn: Grace Hopper\nsn: Hopper\n"
        f"userPassword: {PASSWORD_HASH}\njpegPhoto:: {base64.b64encode(PHOTO).decode()}\n"
    ] + [
        f"dn: uid=p{n:03},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: p{n:03}\ncn: Person {n}\nsn: Numbered\n"
        for n in range(MANY)
    ]
    path = portal.world.root / "people.ldif"
    path.write_text("version: 1\n\n" + "\n".join(records), encoding="utf-8")
    otto = portal.world.ws.acting_as(Principal("otto", "user"))
    result = directory.import_ldif(otto, "dir", path, lambda *_: None)
    assert result.failed == 0, result


def test_an_auditor_browses_the_tree_reads_an_entry_and_searches(portal: Portal, page: Page) -> None:
    fill_directory(portal)
    page.goto(f"{portal.url}/")
    sign_in(page, "audrey")
    page.get_by_role("link", name="Directory").click()
    page.get_by_role("link", name="dir", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Under {SUFFIX}")
    page.get_by_role("link", name=f"Expand {PEOPLE}").click()
    level = page.get_by_role("list", name=f"Entries under {PEOPLE}")
    expect(level.get_by_role("listitem")).to_have_count(MANY + 1)
    screenshot(page, "directory-tree")
    assert_accessible(page)

    level.get_by_role("link", name=f"uid=grace,{PEOPLE}", exact=True).click()
    attributes = page.get_by_role("table", name=f"Attributes of uid=grace,{PEOPLE}")
    expect(attributes.get_by_role("row").filter(has_text="cn")).to_contain_text("Grace Hopper")
    expect(attributes.get_by_role("row").filter(has_text="jpegPhoto")).to_contain_text(
        f"(binary, {len(PHOTO)} bytes; {len(base64.b64encode(PHOTO))} characters in base64)")
    expect(attributes.get_by_role("row").filter(has_text="userPassword")).to_contain_text("(secret, not shown)")
    html = page.content()
    assert PASSWORD_HASH not in html and "dGhlIHBhc3N3b3JkIGhhc2g" not in html
    assert base64.b64encode(PHOTO).decode()[:40] not in html
    screenshot(page, "directory-entry")
    assert_accessible(page)
    page.get_by_role("navigation", name="Path in the tree").get_by_role("link", name=PEOPLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Under {PEOPLE}")

    page.goto(f"{portal.url}/directory/dir/search")
    page.get_by_label("Filter").fill("(sn=Numbered)")
    page.get_by_label("Base DN").fill(PEOPLE)
    page.get_by_label("Scope").select_option("one")
    page.get_by_role("button", name="Search").click()
    found = page.get_by_role("list", name="Entries found")
    expect(found.get_by_role("listitem")).to_have_count(50)
    screenshot(page, "directory-search")
    assert_accessible(page)
    page.get_by_role("link", name="Next").click()
    expect(found.get_by_role("listitem")).to_have_count(MANY - 50)
    expect(page.get_by_label("Filter")).to_have_value("(sn=Numbered)")  # the search stays filled in
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    page.get_by_role("link", name="Previous").click()
    expect(found.get_by_role("listitem")).to_have_count(50)

    page.get_by_label("Filter").fill("(sn=Numbered")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Filter").fill("(uid=grace)")
    page.get_by_label("Scope").select_option("base")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No entry matches.")).to_be_visible()  # the base itself is not Grace


def test_the_browser_is_read_only_and_refuses_an_approver(portal: Portal) -> None:
    fill_directory(portal)
    with signed_in(portal, "alice") as alice:
        for path in ("/directory", "/directory/dir", f"/directory/dir/entry?dn=uid=grace,{PEOPLE}",
                     "/directory/dir/search?filter=(uid=*)"):
            refused = alice.get(path)
            assert refused.status_code == 403, path
            assert PASSWORD_HASH not in refused.text and "Grace" not in refused.text
        assert 'href="/directory"' not in alice.get("/").text
    with signed_in(portal, "otto") as otto:
        shown = otto.get(f"/directory/dir/entry?dn=uid=grace,{PEOPLE}")
        assert shown.status_code == 200 and shown.headers["content-security-policy"] == CSP
        assert PASSWORD_HASH not in shown.text and "(secret, not shown)" in shown.text
        assert otto.post("/directory/dir", data={}).status_code == 405  # nothing to post: read-only
        for missing_dn in (f"/entry?dn=uid=nobody,{PEOPLE}", f"?dn=ou=Nowhere,{SUFFIX}"):
            missing = otto.get(f"/directory/dir{missing_dn}")
            assert missing.status_code == 404 and "has no entry" in missing.text
            assert "dir.db" not in missing.text  # the embedded directory's file is not named
        elsewhere = otto.get(f"/directory/dir/search?filter=(uid=*)&base=ou=Nowhere,{SUFFIX}")
        assert elsewhere.status_code == 422 and "has no entry" in elsewhere.text
        for bad in ("offset=-1", "offset=999999", "scope=everything"):
            answer = otto.get(f"/directory/dir/search?filter=(uid=*)&{bad}")
            assert answer.status_code == 422, bad
