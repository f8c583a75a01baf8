"""``idsync smartgroup``: groups whose members idsync computes, and their update jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from idsync.cli.common import confirm, print_document, workspace
from idsync.cli.job import EXIT_FOR_STATE
from idsync.cli.output import JsonOption, console, print_json, table
from idsync.cli.review_view import ask_to_save, confirmed
from idsync.domain.smartgroups import SmartGroup, SmartGroupJob
from idsync.errors import ConfigError
from idsync.services import definitions, smartgroup_runs, smartgroups, yamlio
from idsync.services.smartgroup_runs import UpdateReport
from idsync.services.smartgroups import GroupPlan, plan_lines
from idsync.services.workspace import Workspace

app = typer.Typer(help="Smart groups: group members computed from queries, a join and lists.", no_args_is_help=True)
job_app = typer.Typer(help="Smart group update jobs: recompute groups of a store, manually or after collections.",
                      no_args_is_help=True)
app.add_typer(job_app, name="job")

YesOption = typer.Option(False, "--yes", "-y", help="Save without asking (for scripts).")
FromOption = typer.Option(None, "--from", "-f", help="YAML file with the definition.")


# ---------------------------------------------------------------- building from options


def _query_list(filters: list[str] | None, base: str | None, scope: str) -> list[dict[str, str]]:
    if not filters:
        return []
    if base is None:
        raise ConfigError("--filter needs --base (the DN the queries search under)")
    return [{"base": base, "scope": scope, "filter": text} for text in filters]


def _join(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"--join {text!r}: expected SOURCE:COLUMN:ATTRIBUTE, e.g. staff:id:employeeNumber")
    return {"source": parts[0], "column": parts[1], "attribute": parts[2]}


def _guard(percent: float | None, min_size: int | None, current: dict[str, Any] | None) -> dict[str, Any] | None:
    if percent is None and min_size is None:
        return current
    data = dict(current or {})
    if percent is not None:
        data["percent"] = percent
    if min_size is not None:
        data["min_size"] = min_size
    if "percent" not in data:
        raise ConfigError("--guard-min-size needs --guard-percent")
    return data


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _review_save(ws: Workspace, group: SmartGroup, *, yes: bool, json: bool) -> dict[str, Any]:
    """The review of the definition and the membership it would give; confirm; save."""
    result = smartgroups.review_changes(ws, group)
    if not json:
        for line in result.lines():
            console.print(line, markup=False, soft_wrap=True)
    outcome = smartgroups.save_group(ws, group) if ask_to_save(result.review, yes=yes, json=json) else "unchanged"
    if not json:
        console.print(f"smart group {group.name!r} {outcome}", markup=False)
    return {"smart_group": group.name, "outcome": outcome, "review": result.review, "membership": result.plan,
            "membership_error": result.plan_error}


@app.command("create")
def create(
    name: str | None = typer.Argument(None, help="Name of the smart group."),
    from_file: Path | None = FromOption,
    store: str | None = typer.Option(None, "--store", help="The identity store holding the group."),
    dn: str | None = typer.Option(None, "--dn", help="DN of the group entry."),
    object_class: str = typer.Option(
        "groupOfNames", "--object-class", help="groupOfNames, groupOfUniqueNames, or group (Active Directory)."
    ),
    base: str | None = typer.Option(None, "--base", help="Search base of the --filter queries."),
    scope: str = typer.Option("sub", "--scope", help="Scope of the --filter queries: base, one or sub."),
    filters: list[str] | None = typer.Option(None, "--filter", help="An RFC 4515 filter; members match any (repeat)."),
    include: list[str] | None = typer.Option(None, "--include", help="A DN that is always a member (repeat)."),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="A DN that is never a member (repeat)."),
    join: str | None = typer.Option(None, "--join", help="SOURCE:COLUMN:ATTRIBUTE: entries whose attribute is in the column."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Let an empty result empty the group."),
    max_members: int | None = typer.Option(None, "--max-members", help="Do not update a group over this many members."),
    guard_percent: float | None = typer.Option(None, "--guard-percent", help="Do not update when a change exceeds this % …"),
    guard_min_size: int | None = typer.Option(None, "--guard-min-size", help="… of a group larger than this."),
    description: str = typer.Option("", help="What the group is for."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Create a smart group from a file or from options; review it, with the
    members it would add and remove, confirm, then save."""
    ws = workspace()
    if from_file is not None:
        if store or dn or filters:
            raise ConfigError("give either --from FILE or options, not both")
        items: list[SmartGroup] = yamlio.read_definitions(from_file, "smart_group", name=name)
    else:
        if name is None or store is None or dn is None:
            raise ConfigError("give NAME, --store and --dn (or --from FILE)")
        items = [definitions.parse("smart_group", _without_none({
            "name": name, "store": store, "dn": dn, "object_class": object_class, "description": description,
            "queries": _query_list(filters, base, scope), "include": include or [], "exclude": exclude or [],
            "join": _join(join), "allow_empty": allow_empty, "max_members": max_members,
            "guard": _guard(guard_percent, guard_min_size, None),
        }))]
    results = [_review_save(ws, group, yes=yes, json=json) for group in items]
    if json:
        print_json(results)


@app.command("edit")
def edit(
    name: str = typer.Argument(..., help="The smart group to change."),
    from_file: Path | None = typer.Option(None, "--from", "-f", help="Replace the whole definition with this YAML file."),
    dn: str | None = typer.Option(None, "--dn", help="New DN of the group entry."),
    base: str | None = typer.Option(None, "--base", help="Search base of the --filter queries (default: the first query's)."),
    scope: str | None = typer.Option(None, "--scope", help="Scope of the --filter queries."),
    filters: list[str] | None = typer.Option(None, "--filter", help="Replace the queries with these filters (repeat)."),
    add_include: list[str] | None = typer.Option(None, "--add-include", help="Add a DN to the include list (repeat)."),
    remove_include: list[str] | None = typer.Option(None, "--remove-include", help="Take a DN off the include list."),
    add_exclude: list[str] | None = typer.Option(None, "--add-exclude", help="Add a DN to the exclude list (repeat)."),
    remove_exclude: list[str] | None = typer.Option(None, "--remove-exclude", help="Take a DN off the exclude list."),
    join: str | None = typer.Option(None, "--join", help="SOURCE:COLUMN:ATTRIBUTE."),
    no_join: bool = typer.Option(False, "--no-join", help="Remove the join."),
    allow_empty: bool | None = typer.Option(None, "--allow-empty/--no-allow-empty", help="Let an empty result empty the group."),
    max_members: int | None = typer.Option(None, "--max-members", help="Maximum members (0: no maximum)."),
    guard_percent: float | None = typer.Option(None, "--guard-percent", help="Guard: change percentage."),
    guard_min_size: int | None = typer.Option(None, "--guard-min-size", help="Guard: for groups larger than this."),
    no_guard: bool = typer.Option(False, "--no-guard", help="Remove the guard."),
    description: str | None = typer.Option(None, help="New description."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Change a smart group; review the differences and the members it would
    add and remove, confirm, then save."""
    ws = workspace()
    current = smartgroups.load_group(ws, name)
    if from_file is not None:
        updated = yamlio.read_definitions(from_file, "smart_group", name=name, alone=True)[0]
    else:
        data = current.model_dump(mode="json", by_alias=True)
        if filters:
            first = current.queries[0] if current.queries else None
            data["queries"] = _query_list(
                filters, base or (first.base if first else None), scope or (first.scope.value if first else "sub")
            )
        data["include"] = _edited(data["include"], add_include, remove_include, "--remove-include")
        data["exclude"] = _edited(data["exclude"], add_exclude, remove_exclude, "--remove-exclude")
        if join is not None and no_join:
            raise ConfigError("give --join or --no-join, not both")
        if join is not None or no_join:
            data["join"] = _join(join)
        if guard_percent is not None or guard_min_size is not None:
            if no_guard:
                raise ConfigError("give the guard's options or --no-guard, not both")
            data["guard"] = _guard(guard_percent, guard_min_size, data.get("guard"))
        elif no_guard:
            data["guard"] = None
        if max_members is not None:
            data["max_members"] = max_members or None
        for key, value in (("dn", dn), ("allow_empty", allow_empty), ("description", description)):
            if value is not None:
                data[key] = value
        updated = definitions.parse("smart_group", data)
    result = _review_save(ws, updated, yes=yes, json=json)
    if json:
        print_json(result)


def _edited(values: list[str], add: list[str] | None, remove: list[str] | None, flag: str) -> list[str]:
    out = list(values) + [v for v in add or [] if v not in values]
    for dn in remove or []:
        if dn not in out:
            raise ConfigError(f"{flag} {dn!r}: not on the list (it has {', '.join(out) or 'nothing'})")
        out.remove(dn)
    return out


@app.command("list")
def list_(json: bool = JsonOption) -> None:
    """List smart groups: store, group DN, queries."""
    items = smartgroups.list_groups(workspace())
    if json:
        print_json(items)
        return
    table(None, ["name", "store", "dn", "queries", "include", "exclude", "join", "description"], [
        (g.name, g.store, g.dn, len(g.queries), len(g.include), len(g.exclude),
         f"{g.join.source}.{g.join.column}" if g.join else "", g.description)
        for g in items
    ])


@app.command("show")
def show(name: str, json: bool = JsonOption) -> None:
    """Show a smart group's definition."""
    print_document(definitions.exportable(workspace(), "smart_group", name), json=json)


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(20, help="How many members to add and remove to list (0 for counts only)."),
    json: bool = JsonOption,
) -> None:
    """Compute the members an update would add and remove now. Changes nothing."""
    plan = smartgroups.preview_group(workspace(), name)
    if json:
        print_json(plan)
    else:
        _print_plan(plan, limit)
    if plan.error is not None:
        raise typer.Exit(4)


def _print_plan(plan: GroupPlan, limit: int) -> None:
    console.print(f"smart group {plan.group!r} ({plan.dn})", markup=False)
    for line in plan_lines(plan, limit):
        console.print(line, markup=False, soft_wrap=True)


@app.command("update")
def update(name: str, json: bool = JsonOption) -> None:
    """Recompute a smart group and write only the difference (one modify), recorded as a run."""
    report = smartgroup_runs.update_group(workspace(), name)
    _print_report(report, json)


def _print_report(report: UpdateReport, json: bool) -> None:
    run = report.run
    if json:
        print_json(report)
    else:
        console.print(f"run {run.id} ({run.job_name!r}): [bold]{run.state.value}[/bold]")
        if report.groups:
            table(None, ["group", "outcome", "members", "added", "removed", "cause"], [
                (r.group, r.outcome, r.members, r.added, r.removed, r.error or "") for r in report.groups
            ])
        if run.error:
            console.print(f"cause: {run.error}", markup=False)
    raise typer.Exit(EXIT_FOR_STATE.get(run.state, 1))


@app.command("explain")
def explain(
    name: str = typer.Argument(..., help="The smart group."),
    dn: str = typer.Argument(..., help="The entry to explain."),
    json: bool = JsonOption,
) -> None:
    """Say why an entry is or is not a member: the query that matched, the filter
    term that failed with the entry's value, the include or exclude list, the join."""
    result = smartgroups.explain_member(workspace(), name, dn)
    if json:
        print_json({**_plain(result.explanation), "in_group_now": result.in_group_now,
                    "pending_change": result.pending_change})
        return
    console.print(result.explanation.summary, markup=False, soft_wrap=True)
    for reason in result.explanation.reasons:
        console.print(f"  {'✓' if reason.matched else '✗'} {reason.kind}: {reason.text}", markup=False, soft_wrap=True)
    if result.in_group_now is not None:
        now = "lists it" if result.in_group_now else "does not list it"
        console.print(f"the group entry {now} now" + (f"; {result.pending_change}" if result.pending_change else ""),
                      markup=False)


def _plain(explanation: Any) -> dict[str, Any]:
    from idsync.domain.plain import to_plain

    data: dict[str, Any] = to_plain(explanation)
    data["summary"] = explanation.summary
    return data


@app.command("remove")
def remove(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json: bool = JsonOption,
) -> None:
    """Remove a smart group. Its group entry stays as it is in the store."""
    ws = workspace()
    smartgroups.load_group(ws, name)
    confirm(f"Remove smart group {name!r}?", yes)
    smartgroups.remove_group(ws, name)
    if json:
        print_json({"smart_group": name, "outcome": "removed"})
    else:
        console.print(f"smart group {name!r} removed", markup=False)


# ---------------------------------------------------------------- update jobs


@job_app.command("create")
def job_create(
    name: str | None = typer.Argument(None, help="Name of the update job."),
    from_file: Path | None = FromOption,
    store: str | None = typer.Option(None, "--store", help="The identity store whose groups it updates."),
    group: list[str] | None = typer.Option(None, "--group", help="A smart group to update (repeat)."),
    container: list[str] | None = typer.Option(
        None, "--container", help="Update every smart group under this DN, at any depth (repeat)."
    ),
    description: str = typer.Option("", help="What the job is for."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Create (or replace) a smart group update job; review, confirm, save."""
    ws = workspace()
    if from_file is not None:
        items: list[SmartGroupJob] = yamlio.read_definitions(from_file, "smart_group_job", name=name)
    else:
        if name is None or store is None:
            raise ConfigError("give NAME and --store, with --group or --container (or --from FILE)")
        items = [definitions.parse("smart_group_job", {
            "name": name, "store": store, "groups": group or [], "containers": container or [],
            "description": description,
        })]
    results = []
    for job in items:
        review = smartgroups.review_job(ws, job)
        outcome = smartgroups.save_job(ws, job) if confirmed(review, yes=yes, json=json) else "unchanged"
        if not json:
            console.print(f"smart group update job {job.name!r} {outcome}", markup=False)
        results.append({"smart_group_job": job.name, "outcome": outcome, "review": review})
    if json:
        print_json(results)


@job_app.command("list")
def job_list(json: bool = JsonOption) -> None:
    """List smart group update jobs."""
    items = smartgroups.list_jobs(workspace())
    if json:
        print_json(items)
        return
    table(None, ["name", "store", "groups", "containers", "description"], [
        (j.name, j.store, ", ".join(j.groups), ", ".join(j.containers), j.description) for j in items
    ])


@job_app.command("show")
def job_show(name: str, json: bool = JsonOption) -> None:
    """Show an update job's definition and the groups it targets now."""
    ws = workspace()
    body = definitions.exportable(ws, "smart_group_job", name)
    targets = [g.name for g in smartgroups.job_targets(ws, smartgroups.load_job(ws, name))]
    if json:
        print_json({"definition": body, "targets": targets})
        return
    print_document(body, json=False)
    console.print(f"targets now: {', '.join(targets) or 'none'}", markup=False)


@job_app.command("run")
def job_run(name: str, json: bool = JsonOption) -> None:
    """Run an update job now: recompute its groups, write the differences, record the run."""
    _print_report(smartgroup_runs.run_update_job(workspace(), name), json)


@job_app.command("remove")
def job_remove(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json: bool = JsonOption,
) -> None:
    """Remove an update job (refused while a collection links it). Its run history is kept."""
    ws = workspace()
    smartgroups.load_job(ws, name)
    confirm(f"Remove smart group update job {name!r}?", yes)
    smartgroups.remove_job(ws, name)
    if json:
        print_json({"smart_group_job": name, "outcome": "removed"})
    else:
        console.print(f"smart group update job {name!r} removed", markup=False)
