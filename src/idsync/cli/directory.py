"""``idsync directory``: search, LDIF export and import, and containers, on any identity store."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from idsync.cli.common import workspace
from idsync.cli.entries_view import Format, write_entries
from idsync.cli.output import JsonOption, console, err_console, print_json
from idsync.domain.entry import Scope
from idsync.errors import ConfigError
from idsync.services import directory
from idsync.services.ldif_import import ImportEvent

app = typer.Typer(
    help="Directory tools for any identity store: search, LDIF export and import, containers.",
    no_args_is_help=True,
)


StoreArgument = typer.Argument(..., help="Name of the identity store (ldap or local).")
BaseOption = typer.Option(None, "--base", help="Base DN (default: the store's suffix or base_dn).")
ScopeOption = typer.Option(Scope.SUB, "--scope", case_sensitive=False, help="base, one or sub.")
FilterOption = typer.Option("(objectClass=*)", "--filter", help="RFC 4515 filter.")


@contextmanager
def _stdout_may_close() -> Iterator[None]:
    """A reader that stops early (``| head``) ends the command quietly, not with a traceback."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command("search")
def search(
    store: str = StoreArgument,
    base: str | None = BaseOption,
    scope: Scope = ScopeOption,
    filterstr: str = FilterOption,
    attrs: str | None = typer.Option(
        None, "--attrs", help="Attributes to show, comma-separated (default: every user attribute; + adds operational ones)."
    ),
    format_: Format = typer.Option(Format.LDIF, "--format", case_sensitive=False, help="ldif, json or table."),
    json: bool = JsonOption,
) -> None:
    """Search a store: entries as they arrive, page by page, as LDIF, JSON or a table."""
    names = [a.strip() for a in attrs.split(",") if a.strip()] if attrs else None
    entries = directory.search(workspace(), store, base=base, scope=scope, filterstr=filterstr, attributes=names)
    with _stdout_may_close():
        count = write_entries(entries, Format.JSON if json else format_, names)
    if format_ is Format.TABLE and not json:
        err_console.print(f"{count} entr{'y' if count == 1 else 'ies'}", markup=False)


@app.command("export")
def export(
    store: str = StoreArgument,
    base: str | None = BaseOption,
    scope: Scope = ScopeOption,
    filterstr: str = FilterOption,
    operational: bool = typer.Option(
        False, "--operational", help="Also write operational attributes (entryUUID, createTimestamp, ...)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
) -> None:
    """Export a store's entries as RFC 2849 LDIF (base64 where needed, lines folded at 76 columns)."""
    ws = workspace()
    if output is None:
        with _stdout_may_close():
            directory.export_ldif(ws, store, sys.stdout, base=base, scope=scope, filterstr=filterstr,
                                  operational=operational)
        return
    # Written aside, then renamed: a failed export never leaves a file that looks complete.
    target = output.expanduser()
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent.resolve())
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}", field="output") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            count = directory.export_ldif(ws, store, out, base=base, scope=scope, filterstr=filterstr,
                                          operational=operational)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    err_console.print(f"{count} entr{'y' if count == 1 else 'ies'} written to {target}", markup=False)


@app.command("import")
def import_(
    store: str = StoreArgument,
    file: Path = typer.Argument(..., help="LDIF file: content records (added) and change records."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read every record and print what it would do; write nothing."),
    stop_on_error: bool = typer.Option(False, "--stop-on-error", help="Stop at the first record that fails."),
    json: bool = JsonOption,
) -> None:
    """Import an LDIF file (RFC 2849) into a store: adds, modifies, deletes, renames.

    Records are read one at a time and written pipelined. A bad record is
    reported with its line and the import goes on (or stops, with
    --stop-on-error); exit code 3 when some records failed."""

    def report(event: ImportEvent) -> None:
        if event.error is not None:
            err_console.print(f"error: {event.text()}", markup=False, soft_wrap=True)
        elif not json:
            console.print(event.text(), markup=False, soft_wrap=True)

    result = directory.import_ldif(workspace(), store, file, report, dry_run_only=dry_run, stop_on_error=stop_on_error)
    if result.left_out:
        err_console.print(
            f"note: left out of the adds, as the directory sets them itself: {', '.join(sorted(result.left_out))}",
            markup=False, soft_wrap=True,
        )
    if json:
        print_json({
            "added": result.added, "modified": result.modified, "deleted": result.deleted,
            "renamed": result.renamed, "failed": result.failed, "dry_run": result.dry_run,
            "stopped": result.stopped, "left_out": sorted(result.left_out),
        })
    else:
        console.print(result.summary(), markup=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(3)


@app.command("add-container")
def add_container(
    store: str = StoreArgument,
    dn: str = typer.Argument(..., help="DN of the container, e.g. ou=People,dc=example,dc=org."),
    json: bool = JsonOption,
) -> None:
    """Create a container and its missing parents.

    The object class follows the RDN: ou= an organizationalUnit, o= an
    organization, dc= a domain, c= a country, l= or st= a locality (cn= a
    container on Active Directory)."""
    created = directory.add_container(workspace(), store, dn)
    if json:
        print_json({"dn": dn, "created": created})
    elif created:
        for made in created:
            console.print(f"created {made}", markup=False)
    else:
        console.print(f"{dn} exists already", markup=False)
