"""Messages to smart groups' owners after an update run [S8.4].

An update job with ``notify_owners`` tells the owners of each group it
changed or held back (the entries named by the group's ``owner`` and
``managedBy`` values, at their ``mail``) what happened, one message per
owner and run, through the outbox and the group store's notification
server. The owners are read while the run still has its store open; the
messages are queued in the transaction after the run's result is written,
and a problem queueing them is logged on the run, never failing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from idsync.connectors.base import Directory
from idsync.domain.entry import Entry, Scope
from idsync.errors import IdsyncError
from idsync.notify.group_notice import OWNER_OUTCOMES, OwnedGroup, render_owner_notice
from idsync.services import notifications
from idsync.services.workspace import Workspace
from idsync.store.outbox_repo import NewMessage, OutboxRepository
from idsync.store.smartgroups_repo import GroupResult

OWNER_ATTRIBUTES = ("owner", "managedBy")
OWNERS_TRIGGER = "owners"
"""The outbox trigger of owner messages (one per owner and run)."""

Owners = dict[str, list[str]]
"""Group DN -> its owners' mail addresses."""


def owners_of(directory: Directory, dns: Sequence[str]) -> Owners:
    """The mail addresses of the owners of each group of *dns* (an owner with no
    mail, or that does not exist, is left out), each owner entry read once."""
    mails: dict[str, list[str]] = {}
    out: Owners = {}
    for dn in dns:
        owners = [v for entry in _read(directory, dn, OWNER_ATTRIBUTES) for a in OWNER_ATTRIBUTES
                  for v in entry.attrs.get_values(a)]
        found: list[str] = []
        for owner in owners:
            if owner not in mails:
                mails[owner] = [m for entry in _read(directory, owner, ("mail",)) for m in entry.attrs.get_values("mail")]
            found.extend(mails[owner])
        out[dn] = list(dict.fromkeys(found))
    return out


def _read(directory: Directory, dn: str, attributes: Sequence[str]) -> list[Entry]:
    try:
        return list(directory.search(dn, Scope.BASE, "(objectClass=*)", list(attributes)))
    except IdsyncError:
        return []  # an owner value that is not an entry (or not a DN) has no address


def told(results: Sequence[GroupResult]) -> list[GroupResult]:
    """The results an owner hears about."""
    return [r for r in results if r.outcome in OWNER_OUTCOMES]


def enqueue(
    ws: Workspace, session: Session, *, run_id: int, update: str, about: str, store: str,
    results: Sequence[GroupResult], owners: Mapping[str, Sequence[str]],
) -> int:
    """Queue one message per owner for run *run_id* (filed under *about*, a
    collection or the update's name), sent through *store*; how many."""
    by_owner: dict[str, list[OwnedGroup]] = {}
    for r in told(results):
        item = OwnedGroup(r.group, r.dn, r.outcome, tuple(r.added_dns), tuple(r.removed_dns), r.added, r.removed, r.error)
        for address in owners.get(r.dn, ()):
            by_owner.setdefault(address, []).append(item)
    if not by_owner:
        return 0
    notifications.server_of(ws, store)  # ConfigError, logged on the run, when the store has none
    repo = OutboxRepository(session)
    policy = notifications.OutboxPolicy.from_settings()
    queued = 0
    for address, groups in by_owner.items():
        message = render_owner_notice(update, run_id, groups)
        payload = notifications.seal(ws, {"subject": message.subject, "text": message.text, "html": message.html})
        new = NewMessage(run_id, about, OWNERS_TRIGGER, notifications.EMAIL, address, payload, store)
        queued += repo.enqueue(new, give_up_after=policy.give_up)
    return queued
