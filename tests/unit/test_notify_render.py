"""Rendered notification messages: snapshots per trigger, escaping, overrides."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idsync.domain.results import Counts, ErrorItem
from idsync.errors import ConfigError
from idsync.notify.events import ERRORS_SHOWN, JobOutcome, RunEvent
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
        run("succeeded", (
            JobOutcome("people", "succeeded", Counts(read=1200, created=3, updated=6, disabled=1, moved=1, unchanged=1189)),
            JobOutcome("groups", "succeeded", Counts(read=40, updated=1, unchanged=39)),
        )),
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
        run(
            "held",
            (JobOutcome("people", "held", Counts(read=1200), error="safety limit: 240 deletions planned, the limit is 50"),),
            error="safety limit: 240 deletions planned, the limit is 50; approve the plan or raise the limit",
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
        ("always", "[idsync] HR to LDAP: succeeded, 8 records updated"),
        ("records_updated", "[idsync] HR to LDAP: 12 records updated"),
        ("errors", "[idsync] HR to LDAP: 3 errors"),
        ("failed", "[idsync] HR to LDAP: failed"),
        ("recovered", "[idsync] HR to LDAP: recovered"),
        ("missed", "[idsync] HR to LDAP: 2 scheduled runs missed"),
        ("held", "[idsync] HR to LDAP: held, awaiting a decision"),
    ],
)
def test_subject_says_the_outcome_plainly(trigger: str, subject: str) -> None:
    assert render(CASES[trigger][0], trigger).subject == subject


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
