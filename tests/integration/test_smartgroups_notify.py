"""A collection's run notification reports its linked update jobs' groups, and an
update job with notify_owners tells each group's owners, through the outbox and a
real SMTP server (aiosmtpd), on slapd and on the embedded directory [S8.4]."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.domain.results import RunState
from idsync.runtime.node import deliver_run
from idsync.services import collection_runs, collections, definitions, smartgroups
from tests.integration.test_smartgroups_slapd import Env, _apply, _group, _query, env
from tests.servers.smtp import Received, SmtpServer

__all__ = ["env"]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _setup(env: Env, smtp: SmtpServer, *, notify_owners: bool) -> tuple[str, str]:
    """Group 'it' (owned by boss, who has a mail) and group 'none' (its query finds nobody),
    updated by job 'groups' after collection 'nightly', which notifies ops."""
    definitions.save(env.ws, "store", definitions.parse("store", {**env.store, "notification_server": {
        "host": "127.0.0.1", "port": smtp.port, "tls": "none", "sender": "idsync@example.org", "timeout": 2,
    }}))
    boss = f"uid=boss,{env.groups}"
    _apply(env.ws, Change(ChangeOp.CREATE, boss, attrs=Attrs({
        "objectClass": ["inetOrgPerson"], "uid": ["boss"], "cn": ["Boss"], "sn": ["Boss"], "mail": ["boss@example.org"],
    })))
    it, none = env.add_group("it"), env.add_group("none")
    _apply(env.ws, Change(ChangeOp.UPDATE, it, mods=(Modification(ModOp.ADD, "owner", (boss,)),)))
    _group(env, "it", it, queries=_query(env, "(departmentNumber=IT)"))
    _group(env, "none", none, queries=_query(env, "(departmentNumber=Nobody)"))
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {
        "name": "groups", "store": "dir", "groups": ["it", "none"], "notify_owners": notify_owners,
    }))
    collections.save_collection(env.ws, definitions.parse("collection", {
        "name": "nightly", "jobs": ["people"], "smart_group_jobs": ["groups"],
        "notifications": {"enabled": True, "recipients": ["ops@example.org"], "triggers": ["always"]},
    }))
    return it, none


def _to(messages: list[Received], address: str) -> Received:
    [found] = [m for m in messages if address in m.rcpt_tos]
    return found


def test_the_run_notification_reports_each_group_and_owners_hear_of_theirs(env: Env, smtp_server: SmtpServer) -> None:
    it, none = _setup(env, smtp_server, notify_owners=True)
    env.write_people([("ann", "IT"), ("bob", "IT"), ("cid", "Sales")])
    report = collection_runs.run_collection(env.ws, "nightly")
    assert report.run.state is RunState.COMPLETED_WITH_ERRORS, report.run.error  # 'none' refused: empty
    delivery = deliver_run(env.ws, report.run.id, wait=5)
    assert delivery.failed == 0, delivery.lines
    messages = smtp_server.wait_for(2)
    assert len(messages) == 2

    ops = _to(messages, "ops@example.org").body()
    assert "Smart groups:" in ops
    assert f"it ({it}), update job groups: updated, 2 added, 1 removed" in ops  # the placeholder member left
    assert f"none ({none}), update job groups: refused: the result is empty" in ops
    html = _to(messages, "ops@example.org").body("html")
    assert "<h3>Smart groups</h3>" in html and f"<code>{it}</code>" in html

    owner = _to(messages, "boss@example.org")
    assert owner.subject == "[idsync] smart group it: 2 added, 1 removed"
    text = owner.body()
    assert f"+ {env.dn('ann')}" in text and f"+ {env.dn('bob')}" in text and f"- {env.groups}" in text
    assert "none" not in text  # boss owns only 'it'


def test_without_notify_owners_only_the_collection_recipients_hear(env: Env, smtp_server: SmtpServer) -> None:
    _setup(env, smtp_server, notify_owners=False)
    env.write_people([("ann", "IT")])
    report = collection_runs.run_collection(env.ws, "nightly")
    deliver_run(env.ws, report.run.id, wait=5)
    messages = smtp_server.wait_for(1)
    assert [m.rcpt_tos for m in messages] == [["ops@example.org"]]
