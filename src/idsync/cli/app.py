"""The root ``idsync`` command and the one place errors become exit codes.

An idsync error is one line on stderr (``idsync: error: ...``), followed by
a ``hint: ...`` line when the error says what to do next.

Exit codes: 0 success; 1 an error; 2 bad usage; 3 a run completed but some
records failed; 4 a run failed; 5 a run was held by a safety limit;
6 not found (no such store, source, job, schedule, collection, run, plan or
outbox message); 7 state conflict (the object is not in a state that allows
it: a finished run, a plan already applied, a definition still in use);
8 permission denied; 9 a run was terminated (by someone, by its time
limit or by a scheduler shutting down); 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from typing import Any

import click
import typer
from typer.core import TyperCommand, TyperGroup

from idsync import __version__, logcontext, settings
from idsync.cli.hints import render
from idsync.cli.output import err_console, print_json, table
from idsync.errors import IdsyncError, NotFoundError, PermissionDeniedError, StateConflictError

COMMANDS: dict[str, tuple[str, str, str]] = {
    "store": ("store", "app", "Identity stores: the directories idsync writes (and reads)."),
    "source": ("source", "app", "Data sources: where identity data comes from."),
    "job": ("job", "app", "Sync jobs: map a source onto directory objects."),
    "collection": ("collection", "app", "Job collections: ordered jobs run as one unit, on a schedule or now."),
    "schedule": ("schedule", "app", "Schedules: when collections run (several triggers each)."),
    "plan": ("plan", "app", "Plans: what a run would change, computed by a preview."),
    "directory": ("directory", "app", "Directory tools for any identity store: search, LDIF export and import, containers."),
    "run": ("run", "app", "Runs: what each execution did."),
    "smartgroup": ("smartgroup", "app", "Smart groups: group members computed from queries, a join and lists."),
    "request": ("request", "app", "Workflow requests: runs waiting for approval, and the decisions on them."),
    "db": ("db", "app", "The idsync database (SQLite by default, or IDSYNC_DATABASE_URL)."),
    "audit": ("audit", "app", "The audit log of configuration changes and runs started, and the check that nobody tampered with it."),
    "outbox": ("outbox", "app", "Notifications waiting for delivery, and their sender."),
    "apply": ("definitions", "apply", "Create or update the stores, sources, jobs, schedules and collections of a YAML file."),
    "export": ("definitions", "export", "Write every store, source, job, schedule and collection as YAML (secrets left out)."),
    "demo": ("demo", "demo", "Create a sample HR export, an embedded directory and a job; preview; run; run again to show that nothing changes. The workspace stays for you to explore."),
    "user": ("user", "app", "Users of idsync, their roles, and directory groups that grant roles."),
    "token": ("token", "app", "API tokens: credentials for scripts and the REST API, shown once."),
    "whoami": ("user", "whoami", "Show who the CLI acts as (an API token's user, the user mapped to your account, or the account) and its roles."),
    "status": ("status", "status", "Who you act as, requests awaiting your decision, runs active and failed, the next scheduled runs, the outbox."),
    "serve": ("serve", "serve", "Serve the REST API with the scheduler and the outbox sender, in one process, until SIGTERM or Ctrl-C."),
    "scheduler": ("scheduler", "scheduler", "Run the scheduler: start the collections of every schedule when due, exactly once, until stopped with SIGTERM or Ctrl-C."),
}
"""The commands kept in modules of their own: name -> (module under idsync.cli,
its Typer app or command function, the one-line help that lists it).

A command's module, and what it imports, is loaded only when that command
runs or shows its own help: ``idsync --help`` lists these lines without
importing the database layer, so it answers at once. A unit test checks each
line against the command's own help."""


def load_command(name: str) -> Any:
    """The click command of *name*, importing its module."""
    module_name, attribute, _help = COMMANDS[name]
    target = getattr(importlib.import_module(f"idsync.cli.{module_name}"), attribute)
    command: Any
    if isinstance(target, typer.Typer):
        target._add_completion = False  # completion is the root's business, as with add_typer
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    _tidy_help(command)
    return command


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _tidy_help(command: Any) -> None:
    """Help that reads well, for *command* and every command under it.

    A command list shows each command's ``short_help``: here the first
    sentence of its docstring, whole (the first line of a wrapped docstring
    would stop mid-sentence). A flag shows no value type: ``--yes``, not
    ``--yes <bool>``."""
    help_option = command.get_help_option(click.Context(command, help_option_names=HELP_NAMES))
    for param in (*command.params, help_option):
        if getattr(param, "is_flag", False):
            param.metavar = ""
    if command.help and not command.short_help:
        paragraph = " ".join(command.help.split("\n\n")[0].split())
        command.short_help = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    for child in getattr(command, "commands", {}).values():
        _tidy_help(child)


class LazyGroup(TyperGroup):
    """The root group: lists the commands of :data:`COMMANDS` from their help
    lines, and imports a command's module only to run it or show its help."""

    _resolving = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            command = super().get_command(ctx, cmd_name)
            if command is not None:
                _tidy_help(command)
            return command
        if self._resolving:
            return load_command(cmd_name)
        summary = COMMANDS[cmd_name][2]
        return TyperCommand(cmd_name, help=summary, short_help=summary)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_help(self)
        super().format_help(ctx, formatter)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        self._resolving = True
        try:
            return super().resolve_command(ctx, args)
        finally:
            self._resolving = False


HELP_NAMES = ["-h", "--help"]

app = typer.Typer(
    name="idsync",
    cls=LazyGroup,
    help="Keep LDAP directories in step with the systems that own identity data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_NAMES},
)


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
    if logcontext.json_logs():
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logcontext.JsonFormatter())


@app.command("settings")
def show_settings(
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of text."),
) -> None:
    """List every setting, its environment variable, current value and meaning."""
    rows = [(s.name, s.env_var, s.shown(), s.help) for s in settings.SETTINGS]
    if json:
        print_json([dict(zip(("setting", "variable", "value", "meaning"), row, strict=True)) for row in rows])
        return
    table(None, ["setting", "variable", "value", "meaning"], rows)


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
