"""The root ``idsync`` command and the one place errors become exit codes.

An idsync error is one line on stderr (``idsync: error: ...``), followed by
a ``hint: ...`` line when the error says what to do next.

Exit codes: 0 success; 1 an error; 2 bad usage; 3 a run completed but some
records failed; 4 a run failed; 5 a run was held by a safety limit;
6 not found (no such store, source, job, schedule, collection, run, plan or
outbox message); 7 state conflict (the object is not in a state that allows
it: a finished run, a plan already applied, a definition still in use);
8 permission denied; 130 interrupted.
"""

from __future__ import annotations

import logging
import sys

import typer

from idsync import __version__, settings
from idsync.cli import (
    audit,
    collection,
    db,
    definitions,
    demo,
    job,
    outbox,
    plan,
    run,
    schedule,
    scheduler,
    source,
    store,
)
from idsync.cli.hints import render
from idsync.cli.output import err_console, table
from idsync.errors import IdsyncError, NotFoundError, PermissionDeniedError, StateConflictError

app = typer.Typer(
    name="idsync",
    help="Keep LDAP directories in step with the systems that own identity data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(store.app, name="store")
app.add_typer(source.app, name="source")
app.add_typer(job.app, name="job")
app.add_typer(collection.app, name="collection")
app.add_typer(schedule.app, name="schedule")
app.add_typer(plan.app, name="plan")
app.add_typer(run.app, name="run")
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(outbox.app, name="outbox")
app.command("apply")(definitions.apply)
app.command("export")(definitions.export)
app.command("demo")(demo.demo)
app.command("scheduler")(scheduler.scheduler)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"idsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """idsync: identity synchronization for LDAP directories.

    Settings come from IDSYNC_* environment variables (see `idsync settings`).
    """
    logging.basicConfig(
        level=settings.get("log_level").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command("settings")
def show_settings() -> None:
    """List every setting, its environment variable, current value and meaning."""
    table(
        None,
        ["setting", "variable", "value", "meaning"],
        [
            (s.name, s.env_var, "(set)" if s.name == "secret_key" and s.value() else s.value(), s.help)
            for s in settings.SETTINGS
        ],
    )


EXIT_CODES: tuple[tuple[type[IdsyncError], int], ...] = (
    (NotFoundError, 6),
    (StateConflictError, 7),
    (PermissionDeniedError, 8),
)
"""The errors a script may want to tell apart; any other idsync error exits 1."""


def exit_code(exc: IdsyncError) -> int:
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


def main() -> None:
    """Console entry point: run the app; turn idsync errors into one line
    (and a hint line) and an exit code."""
    try:
        app()
    except IdsyncError as exc:
        err_console.print(f"idsync: error: {exc.message}", markup=False, soft_wrap=True)
        hint = render(exc.hint)
        if hint:
            err_console.print(f"hint: {hint}", markup=False, soft_wrap=True)
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        err_console.print("idsync: interrupted", markup=False)
        sys.exit(130)
