"""Rendered notification messages: snapshots per trigger, escaping, overrides."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.domain.results import Counts, ErrorItem
from idsync.errors import ConfigError
from idsync.notify.changes import describe
from idsync.notify.events import ERRORS_SHOWN, HeldJob, JobOutcome, RunEvent
from idsync.notify.render import Message, render, render_passwords
from idsync.notify.rules import TRIGGERS, fired

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots" / "notify"
UPDATE = os.environ.get("IDSYNC_UPDATE_SNAPSHOTS") == "1"
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
LINK = "https://idsync.example.org/runs/{}"


def run(
    state: str,
    jobs: tuple[JobOutcome, ...],
    *,
    errors: tuple[ErrorItem, ...] = (),
    error_total: int | None = None,
    error: str | None = None,
    seconds: float = 75,
    missed: int = 0,
) -> RunEvent:
    total = Counts()
    for job in jobs:
        total.add(job.counts)
    return RunEvent(
        run_id=42,
        collection="HR to LDAP",
        state=state,
        trigger="schedule",
        started_at=START,
        finished_at=START + timedelta(seconds=seconds),
        counts=total,
        jobs=jobs,
        errors=errors,
        error_total=len(errors) if error_total is None else error_total,
        error=error,
        missed=missed,
        link=LINK.format(42),
        requested_by="scheduler",
    )


PEOPLE = "ou=people,dc=example,dc=org"
CHANGES = (
    describe("people", Change(ChangeOp.CREATE, f"uid=jdoe,{PEOPLE}", "E1007", attrs=Attrs({
        "objectClass": ("inetOrgPerson",), "cn": ("Jane Doe",), "mail": ("jdoe@example.org",),
        "userPassword": ("s3cret",),
    }))),
    describe("people", Change(ChangeOp.UPDATE, f"uid=asmith,{PEOPLE}", "E1042", mods=(
        Modification(ModOp.REPLACE, "title", ("Senior Engineer",), ("Engineer",)),
    ))),
    describe("people", Change(ChangeOp.DISABLE, f"uid=bgone,{PEOPLE}", "E0999", mods=(
        Modification(ModOp.REPLACE, "employeeType", ("disabled",), ("staff",)),
    ))),
    describe("people", Change(ChangeOp.MOVE, f"uid=cmove,{PEOPLE}", "E1100", new_dn="uid=cmove,ou=alumni,dc=example,dc=org")),
    describe("groups", Change(ChangeOp.UPDATE, "cn=staff,ou=groups,dc=example,dc=org", "staff", mods=(
        Modification(ModOp.ADD, "member", (f"uid=jdoe,{PEOPLE}",)),
        Modification(ModOp.DELETE, "member", (f"uid=bgone,{PEOPLE}",)),
    ))),
)


ERRORS = (
    ErrorItem("mail 'jdoe@' is not an e-mail address", key="E1007", attribute="mail", line=12),
    ErrorItem("manager 'E9999' not found", key="E1042", attribute="manager", line=57),
    ErrorItem("the object changed since the plan was computed; it was left untouched", key="E1100", dn="uid=asmith,ou=people,dc=example,dc=org"),
)

# One realistic run per trigger, with the previous run's state it follows.
CASES: dict[str, tuple[RunEvent, str | None]] = {
    "always": (
        run("succeeded", (
            JobOutcome("people", "succeeded", Counts(read=1200, created=2, updated=5, unchanged=1193)),
            JobOutcome("groups", "succeeded", Counts(read=40, updated=1, unchanged=39)),
        )),
        "succeeded",
    ),
    "records_updated": (
        replace(
            run("succeeded", (
                JobOutcome("people", "succeeded", Counts(read=1200, created=3, updated=6, disabled=1, moved=1, unchanged=1189)),
                JobOutcome("groups", "succeeded", Counts(read=40, updated=1, unchanged=39)),
            )),
            changes=CHANGES, changes_total=12, memberships=1,
        ),
        "succeeded",
    ),
    "errors": (
        run(
            "completed_with_errors",
            (
                JobOutcome("people", "completed_with_errors", Counts(read=1200, updated=4, unchanged=1194, errors=2)),
                JobOutcome("groups", "completed_with_errors", Counts(read=40, unchanged=39, conflicts=1)),
            ),
            errors=ERRORS,
        ),
        "succeeded",
    ),
    "failed": (
        run(
            "failed",
            (
                JobOutcome("people", "failed", Counts(read=500, updated=2), error="ldap://ldap.example.org: server unavailable after 3 attempts"),
                JobOutcome("groups", "skipped", Counts(), error="an earlier job of the collection failed"),
            ),
            error="job people failed: ldap://ldap.example.org: server unavailable after 3 attempts",
            seconds=3725,
        ),
        "succeeded",
    ),
    "recovered": (
        run("succeeded", (
            JobOutcome("people", "succeeded", Counts(read=1200, updated=2, unchanged=1198)),
            JobOutcome("groups", "succeeded", Counts(read=40, unchanged=40)),
        ), seconds=4.25),
        "failed",
    ),
    "missed": (
        replace(
            run("missed", (), missed=2),
            started_at=None,
            finished_at=None,
            error="no scheduler was running at 2026-01-05 02:00 and 2026-01-05 03:00",
        ),
        "succeeded",
    ),
    "held": (
        replace(
            run(
                "held",
                (
                    JobOutcome("people", "held", Counts(read=1200), error="held: 240 deletes exceed max_deletes 50"),
                    JobOutcome("groups", "succeeded", Counts(read=40, updated=1, unchanged=39)),
                ),
                error="job 'people' held: 240 deletes exceed max_deletes 50",
            ),
            held=(HeldJob("people", "240 deletes exceed max_deletes 50", 7),),
            changes=CHANGES[4:], changes_total=1, memberships=1,
        ),
        "succeeded",
    ),
}


def check_snapshot(name: str, content: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {name} was missing and has been written: review it and run again")
    assert content == path.read_text(encoding="utf-8"), (
        f"{name} differs from its snapshot; if the change is intended run with IDSYNC_UPDATE_SNAPSHOTS=1"
    )


def test_every_trigger_has_a_case() -> None:
    assert set(CASES) == set(TRIGGERS)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_each_case_fires_its_trigger(trigger: str) -> None:
    event, previous = CASES[trigger]
    assert trigger in fired(TRIGGERS, event, previous)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_snapshot(trigger: str) -> None:
    event, _ = CASES[trigger]
    message = render(event, trigger)
    check_snapshot(f"{trigger}.txt", f"Subject: {message.subject}\n\n{message.text}")
    check_snapshot(f"{trigger}.html", message.html)


def test_passwords_snapshot() -> None:
    message = render_passwords(
        "HR to LDAP",
        42,
        [
            ("uid=jdoe,ou=people,dc=example,dc=org", "E1007", "k7#Qm2vX9pLr"),
            ("uid=asmith,ou=people,dc=example,dc=org", "E1042", "Tz4&wN8sJc1b"),
        ],
    )
    check_snapshot("passwords.txt", f"Subject: {message.subject}\n\n{message.text}")
    check_snapshot("passwords.html", message.html)


@pytest.mark.parametrize(
    ("trigger", "subject"),
    [
        ("always", "[idsync] HR to LDAP: succeeded; 2 created, 6 updated"),
        ("records_updated", "[idsync] HR to LDAP: succeeded; 3 created, 6 updated, 1 disabled, 1 moved, 1 membership change"),
        ("errors", "[idsync] HR to LDAP: completed with errors; 4 updated, 3 errors"),
        ("failed", "[idsync] HR to LDAP: failed; 2 updated"),
        ("recovered", "[idsync] HR to LDAP: recovered, succeeded; 2 updated"),
        ("missed", "[idsync] HR to LDAP: 2 scheduled runs missed"),
        ("held", "[idsync] HR to LDAP: held, people awaiting a decision; 1 membership change"),
    ],
)
def test_subject_says_the_outcome_plainly(trigger: str, subject: str) -> None:
    assert render(CASES[trigger][0], trigger).subject == subject


def test_one_message_names_every_trigger_that_fired_and_leads_with_the_worst() -> None:
    event, previous = CASES["failed"]
    triggers = fired(TRIGGERS, event, previous)
    assert triggers == ["always", "records_updated", "failed"]
    message = render(event, triggers)
    assert message.subject == "[idsync] HR to LDAP: failed; 2 updated"
    assert "Triggers:   failed, records_updated, always" in message.text
    assert message.text.startswith("Run 42 of collection HR to LDAP failed")


def test_creations_are_counted_as_creations() -> None:
    event = replace(run("succeeded", (JobOutcome("people", "succeeded", Counts(read=25, created=25)),)))
    message = render(event, ["always", "records_updated"])
    assert message.subject == "[idsync] HR to LDAP: succeeded; 25 created"
    assert "What changed: 25 created." in message.text
    assert "updated" not in message.subject


def test_changed_objects_are_listed_with_their_attributes_and_capped() -> None:
    event = CASES["records_updated"][0]
    text = render(event, "records_updated").text
    assert f"created uid=jdoe,{PEOPLE} (job people)" in text
    assert "      mail: jdoe@example.org" in text
    assert "title: Engineer -> Senior Engineer" in text
    assert f"member: +uid=jdoe,{PEOPLE}" in text and f"member: -uid=bgone,{PEOPLE}" in text
    assert "s3cret" not in text and "userPassword: set" in text
    assert "objectClass" not in text
    capped = render(event, "records_updated", changes_shown=2).text
    assert "Changed objects (first 2 of 12):" in capped and "bgone" not in capped.split("Errors")[0].split("first 2")[1]
    assert "... and 10 more" in capped
    assert "Changed objects" not in render(event, "records_updated", changes_shown=0).text


def test_body_names_the_run_the_command_and_the_portal() -> None:
    message = render(CASES["always"][0], "always")
    assert "See the whole run: idsync run show 42" in message.text
    assert "In the portal: https://idsync.example.org/runs/42" in message.text
    assert "<code>idsync run show 42</code>" in message.html
    bare = render(replace(CASES["always"][0], link=None), "always")
    assert "idsync run show 42" in bare.text and "portal" not in bare.text


def test_held_message_says_what_why_and_how_to_release_in_one_state() -> None:
    message = render(CASES["held"][0], "held")
    text = message.text
    assert "held: held" not in text and "changed nothing" not in text
    assert "completed with errors" not in text
    assert "State:      held" in text
    assert "job people: 240 deletes exceed max_deletes 50" in text
    assert "idsync plan show 7" in text and "idsync job run people --plan 7" in text
    assert "1 job wrote nothing and waits for a decision; the other jobs ran" in text


def test_release_message() -> None:
    event = replace(CASES["held"][0], state="succeeded", held=(), released_by=43)
    message = render(event, ["always"])
    assert message.subject == "[idsync] HR to LDAP: held job released, now succeeded; 1 membership change"
    assert "job run 43 applied its plan. Collection run 42 is now succeeded." in message.text


def test_wording() -> None:
    manual = replace(CASES["errors"][0], trigger="manual", requested_by="alice",
                     errors=(ErrorItem("line 22: mail is empty", key="E7", line=22),))
    text = render(manual, "errors").text
    assert "started by manual" not in text and "started by alice, manually" in text
    assert "line 22: line 22" not in text and "E7: line 22: mail is empty" in text
    single = run("completed_with_errors", (JobOutcome("people", "completed_with_errors", Counts(read=3, errors=1)),),
                 errors=ERRORS[:1])
    one = render(single, "errors").text
    assert "1 record error." in one and "1 objects" not in one and "1 records" not in one


def test_body_has_jobs_counts_duration_errors_cause_and_link() -> None:
    message = render(CASES["failed"][0], "failed")
    for part in (message.text, message.html):
        assert "HR to LDAP" in part
        assert "people" in part and "groups" in part
        assert "1 h 2 min" in part
        assert "server unavailable after 3 attempts" in part
        assert "https://idsync.example.org/runs/42" in part
    errors = render(CASES["errors"][0], "errors")
    for item in ERRORS:
        assert str(item.key) in errors.text and str(item.key) in errors.html


def test_markup_in_names_and_errors_is_escaped_in_html() -> None:
    evil = "<script>alert(1)</script>"
    base, _ = CASES["errors"]
    event = replace(
        base,
        collection=f"HR {evil}",
        errors=(ErrorItem(f"bad value {evil}", key=f"E1{evil}"),),
        error=f"cause {evil}",
        jobs=(JobOutcome(f"people{evil}", "failed", Counts(errors=1), error=evil),),
    )
    for trigger in TRIGGERS:
        html = render(event, trigger).html
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The plain-text body is not HTML: it carries the text as it is.
    assert evil in render(event, "errors").text
    passwords = render_passwords(evil, 1, [(f"uid={evil}", evil, evil)]).html
    assert "<script>" not in passwords


def test_only_the_first_twenty_errors_are_listed() -> None:
    items = tuple(ErrorItem(f"problem {n}", key=f"K{n:03}") for n in range(25))
    event = replace(CASES["errors"][0], errors=items, error_total=31)
    message = render(event, "errors")
    assert "K019" in message.text and "K020" not in message.text
    assert "K019" in message.html and "K020" not in message.html
    assert f"first {ERRORS_SHOWN} of 31" in message.text
    assert "and 11 more" in message.text


def test_no_link_without_a_base_url() -> None:
    event = replace(CASES["failed"][0], link=None)
    message = render(event, "failed")
    assert "Details:" not in message.text and "<a href" not in message.html


def test_templates_overridden_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "subject.txt").write_text("[ops] {{ collection }} / {{ trigger }}\n")
    (tmp_path / "failed.body.txt").write_text("FAILED {{ collection }}: {{ event.error }}\n")
    (tmp_path / "body.html").write_text("<p>{{ collection }}</p>\n")
    event = replace(CASES["failed"][0], collection="HR & <Co>")
    failed = render(event, "failed", templates_dir=tmp_path)
    assert failed.subject == "[ops] HR & <Co> / failed"
    assert failed.text.startswith("FAILED HR & <Co>: job people failed")
    assert failed.html == "<p>HR &amp; &lt;Co&gt;</p>\n"
    # Parts not overridden for a trigger come from the shipped templates.
    always = render(event, "always", templates_dir=tmp_path)
    assert always.subject == "[ops] HR & <Co> / always"
    assert "Collection: HR & <Co>" in always.text


def test_broken_override_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "held.subject.txt").write_text("{% if %}\n")
    with pytest.raises(ConfigError, match=r"held\.subject\.txt.*line 1"):
        render(CASES["held"][0], "held", templates_dir=tmp_path)
    (tmp_path / "errors.subject.txt").write_text("{{ no_such_variable }}\n")
    with pytest.raises(ConfigError, match=r"errors\.subject\.txt.*no_such_variable"):
        render(CASES["errors"][0], "errors", templates_dir=tmp_path)


def test_missing_override_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        render(CASES["failed"][0], "failed", templates_dir=tmp_path / "nowhere")


def test_unknown_trigger_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown notification trigger"):
        render(CASES["failed"][0], "sometimes")


def test_message_is_a_value() -> None:
    one = render(CASES["always"][0], "always")
    assert one == render(CASES["always"][0], "always")
    assert isinstance(one, Message)


@pytest.mark.parametrize(
    ("name", "triggers"),
    [
        ("combined", ["always", "records_updated", "errors"]),
        ("failed_always", ["always", "failed"]),
    ],
)
def test_snapshot_of_one_message_for_several_triggers(name: str, triggers: list[str]) -> None:
    event = CASES["failed" if "failed" in triggers else "errors"][0]
    message = render(event, triggers)
    check_snapshot(f"{name}.txt", f"Subject: {message.subject}\n\n{message.text}")
    check_snapshot(f"{name}.html", message.html)


def test_snapshot_of_a_release() -> None:
    event = replace(CASES["held"][0], state="succeeded", held=(), released_by=43, error=None)
    message = render(event, ["always", "records_updated"])
    check_snapshot("released.txt", f"Subject: {message.subject}\n\n{message.text}")
    check_snapshot("released.html", message.html)
