"""``idsync status``: the installation at a glance."""

from __future__ import annotations

import typer

from idsync.cli.common import workspace
from idsync.cli.output import JsonOption, console, print_json, when
from idsync.services import status as status_service


def status(
    utc: bool = typer.Option(False, "--utc", help="Show run times in UTC instead of this computer's zone."),
    json: bool = JsonOption,
) -> None:
    """Who you act as, requests awaiting your decision, runs active and failed, the next scheduled runs, the outbox."""
    found = status_service.status(workspace())
    if json:
        print_json(found)
        return
    roles = ", ".join(found.roles) or "no role"
    console.print(
        f"acting as {found.actor} ({roles})" + (" - the bootstrap administrator: no idsync user exists yet" if found.bootstrap else ""),
        markup=False, soft_wrap=True,
    )
    if found.inbox is not None:
        console.print(
            f"requests: {found.inbox} awaiting your decision" + (" (idsync request list --inbox)" if found.inbox else ""),
            markup=False, soft_wrap=True,
        )
    recent = ", ".join(f"{number} {state.replace('_', ' ')}" for state, number in sorted(found.runs_recent.items()))
    console.print(f"runs in the last 24 h: {recent or 'none'}", markup=False, soft_wrap=True)
    for run in found.active:
        console.print(
            f"  {run.state.value.replace('_', ' ')}: run {run.id} of collection {run.collection_name}, since {when(run.created_at, utc)}",
            markup=False, soft_wrap=True,
        )
    for run in found.failed:
        what = f"collection {run.collection_name}" if run.kind == "collection" else f"job {run.job_name}"
        console.print(
            f"  failed: run {run.id} of {what} at {when(run.finished_at or run.created_at, utc)}: {run.error or 'see idsync run show'}",
            markup=False, soft_wrap=True,
        )
    if found.next_runs:
        for item in found.next_runs:
            console.print(
                f"next: {item.at_text} schedule {item.schedule} ({', '.join(item.targets)})", markup=False, soft_wrap=True
            )
    else:
        console.print("next: no scheduled run", markup=False)
    waiting = found.outbox.get("pending", 0) + found.outbox.get("sending", 0)
    console.print(
        f"outbox: {waiting} waiting, {found.outbox.get('failed', 0)} failed" + (" (idsync outbox list --state failed)" if found.outbox.get("failed") else ""),
        markup=False, soft_wrap=True,
    )
