"""``idsync audit``: who changed which definition, started which run, and
when; and the check that nobody tampered with that record."""

from __future__ import annotations

import typer

from idsync.cli.common import workspace
from idsync.cli.output import FormatOption, JsonOption, console, print_json, table, when
from idsync.services import audit as audit_service
from idsync.services import history

app = typer.Typer(
    help="The audit log of configuration changes and runs started, and the check that nobody tampered with it.",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, help="Only this kind of object: store, source or job."),
    name: str | None = typer.Option(None, help="Only the object of this name."),
    limit: int = typer.Option(100, help="How many entries to list."),
    fmt: str = FormatOption,
    json: bool = JsonOption,
) -> None:
    """List configuration changes, newest first. Secret values are never recorded."""
    entries = history.list_audit(workspace(), kind=kind, name=name, limit=limit)
    if json:
        print_json(entries)
        return
    table(None, ["when", "who", "action", "kind", "name", "what changed"], [
        (when(e.at), e.actor, e.action, e.object_kind, e.object_name,
         ", ".join(e.detail.get("changed", [])) + (" (secrets changed)" if e.detail.get("secrets") else ""))
        for e in entries
    ], fmt=fmt)


@app.command("verify")
def verify(
    head: list[str] = typer.Option(
        [], "--head", metavar="HASH",
        help="A head hash an earlier check printed: fail unless an entry still has it. Repeatable.",
    ),
    json: bool = JsonOption,
) -> None:
    """Check that no entry of the audit log or the decision trail was edited, deleted or inserted.

    Exit code 0 when both are intact, 1 with one line per fault otherwise.
    Keep the head hashes printed somewhere outside idsync, and give them
    back with --head later: that also catches a rewrite of a trail's end.
    """
    check = audit_service.verify(workspace(), heads=head)
    if json:
        print_json(check)
    else:
        for trail in check.trails:
            state = "intact" if not trail.faults else f"has {len(trail.faults)} fault(s)"
            console.print(
                f"{trail.name} {state}: {trail.entries} entries, head {trail.head}", markup=False, soft_wrap=True
            )
        for problem in check.problems:
            console.print(problem, markup=False, soft_wrap=True)
    if not check.intact:
        raise typer.Exit(1)
