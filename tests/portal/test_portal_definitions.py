"""Creating and editing stores, sources and jobs in the portal, in a real
browser (headless Debian chromium): an operator creates an embedded
directory store, tests it, sends a test message through its notification
server to aiosmtpd (with a password typed once and never shown again),
reviews and saves it, then edits its workflow; a CSV source with its test
button; a job built in the mapping editor (add, reorder, remove mappings and
transforms) and tried on the first rows of its source, an error row
included. The passwords typed are searched for in every page. Auditors and
forms without the CSRF token are refused; axe finds no serious violation."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.portal.conftest import Portal, screenshot, sign_in
from tests.portal.test_portal_browser import assert_accessible
from tests.portal.test_portal_security import csrf_of, signed_in
from tests.scheduler_world import PEOPLE
from tests.servers.slapd import SlapdServer
from tests.servers.smtp import SmtpServer
from tests.xlsx import write_xlsx

SMTP_PASSWORD = "Pw-typed-0nce-!x7"
NEW_PASSWORD = "N3w-bind-pass-typed"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(login=("mailer", SMTP_PASSWORD)) as server:
        yield server


def admin(portal: Portal) -> Workspace:
    return portal.world.ws.acting_as(Principal("olivia", "user"))


def stored(portal: Portal, kind: str, name: str) -> Any:
    return definitions.load(admin(portal), kind, name)  # type: ignore[arg-type]


def names(portal: Portal, kind: str) -> list[str]:
    return [d.name for d in definitions.list_definitions(admin(portal), kind)]  # type: ignore[arg-type]


def signed_in_as(portal: Portal, page: Page, name: str, path: str) -> list[str]:
    """*name* signs in and opens *path*; the HTML of every page the browser gets from now on."""
    seen: list[str] = []

    def keep(response: Response) -> None:
        if "text/html" in response.headers.get("content-type", "") and response.status not in (302, 303, 307):
            seen.append(response.text())

    page.on("response", keep)
    page.goto(f"{portal.url}/signin")
    sign_in(page, name)
    page.goto(f"{portal.url}{path}")
    return seen


def test_an_operator_creates_a_store_tests_it_sends_a_test_message_and_edits_its_workflow(
    portal: Portal, page: Page, smtp: SmtpServer
) -> None:
    pages = signed_in_as(portal, page, "otto", "/stores")
    page.get_by_role("link", name="New identity store").click()
    assert_accessible(page)
    page.get_by_role("link", name="Embedded directory").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New identity store: Embedded directory")
    page.get_by_label("Name (required)").fill("branch")
    page.get_by_label("Directory file").fill(str(portal.world.root / "branch.db"))
    page.get_by_label("Suffix").fill("dc=branch,dc=org")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection succeeded")
    assert_accessible(page)

    page.get_by_label("SMTP host").fill("127.0.0.1")
    page.get_by_label("SMTP port").fill(str(smtp.port))
    page.get_by_label("TLS", exact=True).select_option("none")
    page.get_by_label("From address").fill("idsync@example.org")
    page.get_by_label("SMTP user name").fill("mailer")
    page.get_by_label("SMTP password").fill(SMTP_PASSWORD)
    page.get_by_label("Allow a login without TLS").check()
    page.get_by_label("Send a test message to").fill("ops@example.org")
    page.get_by_role("button", name="Send test message").click()
    expect(page.locator("#test-result")).to_contain_text("Test message sent")
    [message] = smtp.wait_for(1)
    assert message.rcpt_tos == ["ops@example.org"] and "branch" in message.subject
    expect(page.get_by_label("SMTP password")).to_have_value("")  # write-only: never rendered back

    page.get_by_role("button", name="Review changes").click()
    summary = page.get_by_role("table", name="The new identity store")
    expect(summary.get_by_role("row", name=re.compile("^notification server.password"))).to_contain_text("********")
    screenshot(page, "store-review")
    assert_accessible(page)
    page.get_by_role("button", name="Save").click()  # the password typed before the review is kept, sealed
    expect(page).to_have_url(f"{portal.url}/stores/branch?saved=created")
    expect(page.get_by_role("status")).to_contain_text("The identity store branch is created")
    loaded = stored(portal, "store", "branch")
    assert loaded.secrets == {"notification_server.password": SMTP_PASSWORD}

    page.get_by_role("link", name="Edit branch").click()
    expect(page.get_by_label("SMTP host")).to_have_value("127.0.0.1")
    expect(page.get_by_label("SMTP password")).to_have_value("")
    expect(page.locator("#f-notification-server-password-help")).to_contain_text("A secret is stored")
    assert_accessible(page)
    page.get_by_label("Manual runs need approval").check()
    page.get_by_label("Approvers (idsync users)").fill("alice, bob")
    page.get_by_role("button", name="Review changes").click()
    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes.get_by_role("row", name=re.compile("^workflow.manual"))).to_contain_text("yes")
    expect(changes.get_by_role("row", name=re.compile("^workflow.approvers"))).to_contain_text("alice, bob")
    expect(changes).not_to_contain_text("password")  # a secret kept is no difference
    screenshot(page, "store-edit-review")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The identity store branch is updated")
    edited = stored(portal, "store", "branch").definition
    assert edited.workflow.manual and edited.workflow.approvers == ["alice", "bob"]
    assert edited.notification_server.password == SMTP_PASSWORD  # left empty: kept

    page.goto(f"{portal.url}/stores/branch/edit")
    page.get_by_label("Description").fill("the branch office")
    page.get_by_role("button", name="Review changes").click()
    olivia = admin(portal)
    changed = definitions.parse("store", {**definitions.public_body(edited), "description": "changed meanwhile"})
    definitions.save(olivia, "store", changed)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("was changed by someone else since this edit began")
    assert stored(portal, "store", "branch").definition.description == "changed meanwhile"
    page.get_by_role("button", name="Save").click()  # seen the new version: now it saves
    expect(page.get_by_role("status")).to_contain_text("is updated")

    for path in ("/stores", "/stores/branch", "/stores/branch/edit"):
        page.goto(f"{portal.url}{path}")
    assert len(pages) >= 10 and not [p for p in pages if SMTP_PASSWORD in p]


def test_an_operator_creates_a_csv_source_and_tests_it(portal: Portal, page: Page) -> None:
    (portal.world.root / "staff.csv").write_text("id;first;last\n7;Grace;Hopper\n", encoding="utf-8")
    signed_in_as(portal, page, "otto", "/sources/new")
    page.get_by_role("link", name="CSV file").click()
    page.get_by_label("Name (required)").fill("staff")
    page.get_by_label("File", exact=True).fill(str(portal.world.root / "absent.csv"))
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("alert")).to_contain_text("Connection failed")
    page.get_by_label("File", exact=True).fill(str(portal.world.root / "staff.csv"))
    page.get_by_label("Delimiter").fill(";")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection succeeded")
    screenshot(page, "source-form")
    assert_accessible(page)
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The data source staff is created")
    assert stored(portal, "source", "staff").definition.delimiter == ";"


def test_an_operator_builds_a_job_in_the_mapping_editor_and_tries_it(portal: Portal, page: Page) -> None:
    (portal.world.root / "people.csv").write_text(
        "id,first,last\n1,Ada,Lovelace\n2,Alan,\n3,Grace,Hopper\n", encoding="utf-8"
    )
    signed_in_as(portal, page, "otto", "/jobs")
    page.get_by_role("link", name="New sync job").click()
    page.get_by_label("Name (required)").fill("staff")
    page.get_by_label("Data source").select_option("people")
    page.get_by_label("Identity store", exact=True).select_option("dir")
    page.get_by_label("Container DN of new objects").fill(PEOPLE)
    page.locator("#m0-attribute").fill("uid")
    page.locator("#m0-text").fill("id")
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m1-attribute").fill("mail")
    page.locator("#m1-text").fill("first")
    page.get_by_label("New transform of mapping 2").fill("lower")  # named by its attribute once posted
    page.get_by_role("button", name="Add transform to mapping 2").click()
    page.get_by_label("New transform of mail").fill("{suffix: '@example.org'}")
    page.get_by_role("button", name="Add transform to mail").click()
    page.get_by_label("New transform of mail").fill("upper")
    page.get_by_role("button", name="Add transform to mail").click()
    page.get_by_role("button", name="Move transform upper of mail up").click()
    transforms = page.get_by_role("list", name="Transforms of mail")
    expect(transforms.get_by_role("textbox")).to_have_count(3)
    expect(transforms.get_by_role("textbox").nth(1)).to_have_value("upper")
    page.get_by_role("button", name="Remove transform upper of mail").click()
    expect(transforms.get_by_role("textbox")).to_have_count(2)
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m2-attribute").fill("sn")
    page.locator("#m2-text").fill("last")
    page.get_by_label("Required", exact=True).nth(2).check()
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m3-attribute").fill("cn")
    expect(page.locator("#m3-text")).to_have_attribute("placeholder", re.compile("^a field of the source"))
    page.locator("#m3-origin").select_option("join")
    expect(page.locator("#m3-text")).to_have_attribute("placeholder", re.compile("^fields joined"))  # the script
    page.locator("#m3-text").fill("first, last")
    page.get_by_role("button", name="Move mapping 4 up").click()
    page.get_by_role("button", name="Move cn up").click()
    expect(page.locator("#m1-attribute")).to_have_value("cn")
    page.get_by_role("button", name="Add mapping").click()
    page.locator("#m4-attribute").fill("title")
    page.get_by_role("button", name="Remove mapping 5").click()
    expect(page.locator("#m4-attribute")).to_have_count(0)
    assert_accessible(page)

    page.get_by_label(re.compile("^Rows of the source to map")).fill("3")
    page.get_by_role("button", name="Try it").click()
    expect(page).to_have_url(f"{portal.url}/jobs/new#trial")  # the page opens at the trial, without script
    expect(page.locator("#trial-summary")).to_contain_text("2 entries, 1 error; nothing written.")
    entries = page.locator(".trial-entries")
    expect(entries).to_contain_text(f"uid=1,{PEOPLE}")
    expect(entries).to_contain_text("ada@example.org")
    expect(entries).to_contain_text("Ada Lovelace")
    errors = page.get_by_role("table", name="Rows that fail")
    expect(errors.get_by_role("row").nth(1)).to_contain_text("3")
    expect(errors.get_by_role("row").nth(1)).to_contain_text("required attribute 'sn' has no value")
    screenshot(page, "job-try-it")
    assert_accessible(page)
    assert "staff" not in names(portal, "job")

    page.get_by_label("Required", exact=True).nth(3).uncheck()
    page.get_by_role("button", name="Review changes").click()
    summary = page.get_by_role("table", name="The new sync job")
    expect(summary.get_by_role("row", name=re.compile("^mappings"))).to_contain_text("mail")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The sync job staff is created")
    job = stored(portal, "job", "staff").definition
    assert [m.attribute for m in job.mappings] == ["uid", "cn", "mail", "sn"]
    assert job.mappings[2].transforms == ["lower", {"suffix": "@example.org"}]
    assert job.mappings[1].join.fields == ["first", "last"] and job.mappings[0].key

    page.get_by_role("link", name="Edit staff").click()
    expect(page.locator("#m2-attribute")).to_have_value("mail")
    expect(page.get_by_label("Transform 2 of mail")).to_have_value("{suffix: '@example.org'}")
    screenshot(page, "job-edit")
    page.get_by_label("Description").fill("staff from people.csv")
    page.get_by_label("Description").press("Enter")  # Enter reviews: it moves no mapping, removes no step
    changes = page.get_by_role("table", name="Differences from the stored version")
    expect(changes.get_by_role("row")).to_have_count(2)
    expect(changes.get_by_role("row", name=re.compile("^description"))).to_contain_text("staff from people.csv")


def test_auditors_cannot_edit_and_forms_need_the_csrf_token(portal: Portal) -> None:
    store = {"kind": "local", "name": "sneaky", "path": "sneaky.db", "go": "save"}
    with signed_in(portal, "audrey") as audrey:
        token = csrf_of(audrey.get("/stores").text)
        assert "/stores/new" not in audrey.get("/stores").text and "/edit" not in audrey.get("/jobs/people").text
        for path in ("/stores/new?kind=local", "/stores/dir/edit", "/sources/new", "/sources/people/edit",
                     "/jobs/new", "/jobs/people/edit"):
            refused = audrey.get(path)
            assert refused.status_code == 403, path
        for path, sent in (("/stores/new", store), ("/stores/dir/edit", {**store, "name": "dir"}),
                           ("/sources/people/edit", {"go": "save"}), ("/jobs/people/edit", {"go": "save"}),
                           ("/jobs/people/edit", {"go": "try"})):
            answer = audrey.post(path, data={**sent, "csrf_token": token})
            assert answer.status_code == 403 and "needs the role operator" in answer.text, path
    with signed_in(portal, "otto") as otto:
        for path in ("/stores/new", "/jobs/people/edit", "/sources/people/edit"):
            refused = otto.post(path, data=store)
            assert refused.status_code == 403 and "security token" in refused.text, path
        assert otto.get("/stores/nowhere/edit").status_code == 404
    assert "sneaky" not in names(portal, "store")


def test_a_bind_password_typed_for_an_ldap_store_never_comes_back(portal: Portal, slapd: SlapdServer) -> None:
    secret = slapd.root_pw
    form = {
        "kind": "ldap", "name": "corp", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": secret,
        "base_dn": slapd.base_dn, "tls_verify": "yes", "timeout": "5",
    }
    answers: list[httpx.Response] = []
    with signed_in(portal, "otto") as otto:
        token = csrf_of(otto.get("/stores/new?kind=ldap").text)
        for go in ("test", "review"):
            answers.append(otto.post("/stores/new", data={**form, "go": go, "csrf_token": token}))
        assert "Connection succeeded" in answers[0].text, answers[0].text
        wrong = otto.post("/stores/new", data={**form, "bind_password": "wrong", "go": "test", "csrf_token": token})
        assert "Connection failed" in wrong.text
        sealed = re.search(r'name="sealed" value="([^"]+)"', answers[1].text)
        assert sealed is not None
        saved = otto.post("/stores/new", data={**form, "bind_password": "", "sealed": sealed.group(1), "go": "save",
                                               "csrf_token": token})
        assert saved.status_code == 303, saved.text
        for path in ("/stores", "/stores/corp", "/stores/corp/edit", "/api/v1/stores/corp", "/api/v1/stores"):
            answers.append(otto.get(path))
        edited = {**form, "bind_password": "", "description": "corporate", "csrf_token": token}
        answers.append(otto.post("/stores/corp/edit", data={**edited, "go": "test"}))
        assert "Connection succeeded" in answers[-1].text  # the stored password, kept, binds
        answers.append(otto.post("/stores/corp/edit", data={**edited, "go": "review"}))
        assert stored(portal, "store", "corp").secrets == {"bind_password": secret}  # kept
        # A new password typed before the review is the one saved, though the form comes back without it.
        answers.append(otto.post("/stores/corp/edit", data={**edited, "bind_password": NEW_PASSWORD, "go": "review"}))
        assert "******** (changed)" in answers[-1].text
        sealed = re.search(r'name="sealed" value="([^"]+)"', answers[-1].text)
        version = re.search(r'name="version" value="([^"]+)"', otto.get("/stores/corp/edit").text)
        assert sealed is not None and version is not None
        stale = otto.post("/stores/corp/edit", data={**edited, "sealed": sealed.group(1), "go": "save"})
        assert stale.status_code == 409 and "changed by someone else" in stale.text  # no version: not saved blindly
        saved = otto.post("/stores/corp/edit", data={**edited, "sealed": sealed.group(1), "version": version.group(1),
                                                      "go": "save"})
        assert saved.status_code == 303, saved.text
        answers.append(otto.get("/stores/corp/edit"))
    assert all(a.status_code in (200, 303) for a in answers), [a.status_code for a in answers]
    assert not [a.url for a in answers if secret in a.text or NEW_PASSWORD in a.text]
    assert stored(portal, "store", "corp").secrets == {"bind_password": NEW_PASSWORD}


def test_an_active_directory_store_is_an_ldap_store_of_that_flavour(portal: Portal) -> None:
    form = {"kind": "activedirectory", "name": "ad", "url": "ldaps://dc.example.org", "tls_verify": "yes"}
    with signed_in(portal, "otto") as otto:
        page = otto.get("/stores/new?kind=activedirectory")
        assert "New identity store: Active Directory" in page.text
        saved = otto.post("/stores/new", data={**form, "go": "save", "csrf_token": csrf_of(page.text)})
        assert saved.status_code == 303, saved.text
        assert "Edit identity store ad" in otto.get("/stores/ad/edit").text
    store = stored(portal, "store", "ad").definition
    assert (store.kind, store.flavor) == ("ldap", "active_directory")


def test_a_stored_source_is_edited_and_tested_as_edited(portal: Portal) -> None:
    other = portal.world.root / "other.csv"
    other.write_text("id\tfirst\tlast\n9,Ida\n", encoding="utf-8")
    with signed_in(portal, "otto") as otto:
        page = otto.get("/sources/people/edit")
        assert page.status_code == 200 and "people.csv" in page.text and "Kind: CSV file" in page.text
        version = re.search(r'name="version" value="([^"]+)"', page.text)
        assert version is not None
        form = {"path": str(other), "delimiter": "tab", "header": "yes", "csrf_token": csrf_of(page.text),
                "version": version.group(1)}
        tested = otto.post("/sources/people/edit", data={**form, "go": "test"})
        assert "Connection succeeded" in tested.text and str(other) in tested.text
        assert stored(portal, "source", "people").definition.path != str(other)  # a test saves nothing
        review = otto.post("/sources/people/edit", data={**form, "go": "review"})
        assert "Differences from the stored version" in review.text
        saved = otto.post("/sources/people/edit", data={**form, "go": "save"})
        assert saved.status_code == 303 and saved.headers["location"] == "/sources/people?saved=updated"
    source = stored(portal, "source", "people").definition
    assert (source.path, source.delimiter) == (str(other), "\t")


def test_excel_and_sql_sources_are_created_and_tested_in_their_forms(portal: Portal) -> None:
    root = portal.world.root
    write_xlsx(root / "staff.xlsx", [["id", "first", "last"], ["7", "Grace", "Hopper"]])
    with sqlite3.connect(root / "hr.db") as db:
        db.execute("create table people (id text, first text, last text)")
        db.execute("insert into people values ('8', 'Ida', 'Rhodes')")
    forms = {
        "excel": {"name": "staff-x", "path": str(root / "staff.xlsx"), "sheet": "People", "header_row": "1"},
        "sql": {"name": "hr", "url": f"sqlite:///{root / 'hr.db'}", "table": "people", "batch_size": "500"},
    }
    with signed_in(portal, "otto") as otto:
        for kind, form in forms.items():
            page = otto.get(f"/sources/new?kind={kind}")
            assert page.status_code == 200, kind
            sent = {**form, "kind": kind, "csrf_token": csrf_of(page.text)}
            tested = otto.post("/sources/new", data={**sent, "go": "test"})
            assert "Connection succeeded" in tested.text, (kind, re.findall(r"role=\"(?:alert|status)\"[^>]*>([^<]*)", tested.text))
            saved = otto.post("/sources/new", data={**sent, "go": "save"})
            assert saved.status_code == 303, (kind, saved.text)
    assert stored(portal, "source", "staff-x").definition.sheet == "People"
    hr = stored(portal, "source", "hr")
    assert (hr.definition.table, hr.definition.batch_size) == ("people", 500)
