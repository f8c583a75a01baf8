"""The message a smart group's owners get after an update run [S8.4].

A group's owners are the entries its ``owner`` and ``managedBy`` values name,
reached at their ``mail``. Each owner gets one message per run covering all
of their groups the run changed or held back: the members added and
removed (the first :data:`DNS_SHOWN` of each), or why the group was not
updated. Pure: the service reads the owners and queues the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from idsync.notify.render import Message

DNS_SHOWN = 50
"""How many members added (and removed) a message lists per group."""

OWNER_OUTCOMES = frozenset({"updated", "refused", "held"})
"""The outcomes an owner is told about: a change, or a change held back."""


@dataclass(frozen=True)
class OwnedGroup:
    group: str
    dn: str
    outcome: str
    added: Sequence[str] = field(default_factory=tuple)
    removed: Sequence[str] = field(default_factory=tuple)
    added_total: int = 0
    removed_total: int = 0
    reason: str | None = None


def _lines(item: OwnedGroup) -> list[str]:
    if item.outcome != "updated":
        return [f"Smart group {item.group} ({item.dn}) was not updated: {item.reason or item.outcome}."]
    out = [f"Smart group {item.group} ({item.dn}): {item.added_total} member(s) added, "
           f"{item.removed_total} removed."]
    for sign, dns, total in (("+", item.added, item.added_total), ("-", item.removed, item.removed_total)):
        out.extend(f"  {sign} {dn}" for dn in list(dns)[:DNS_SHOWN])
        if total > min(len(dns), DNS_SHOWN):
            out.append(f"  ... and {total - min(len(dns), DNS_SHOWN)} more")
    return out


def render_owner_notice(update: str, run_id: int, groups: Sequence[OwnedGroup]) -> Message:
    """One owner's message about the groups of theirs that run *run_id* of *update* changed or held back."""
    changed = [g for g in groups if g.outcome == "updated"]
    held = [g for g in groups if g.outcome != "updated"]
    if len(groups) == 1:
        only = groups[0]
        subject = (f"[idsync] smart group {only.group}: {only.added_total} added, {only.removed_total} removed"
                   if changed else f"[idsync] smart group {only.group} was not updated")
    else:
        subject = f"[idsync] {len(changed)} of your smart groups changed, {len(held)} not updated"
    lines = [f"You are an owner of these groups; update run {run_id} ({update}) recomputed them.", ""]
    for item in groups:
        lines.extend(_lines(item))
        lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    html = [f"<p>{escape(lines[0])}</p>"]
    for item in groups:
        head, *rest = _lines(item)
        html.append(f"<p>{escape(head)}</p>")
        if rest:
            html.append("<ul>" + "".join(f"<li><code>{escape(line.strip())}</code></li>" for line in rest) + "</ul>")
    return Message(subject, text, "\n".join(html) + "\n")
