"""How commands talk to people and scripts: tables, JSON, progress, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from idsync.domain.plain import to_plain
from idsync.domain.results import Counts

_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
    if chr(code) not in "\n\t"
}
"""C0 and C1 control characters (but newline and tab) and DEL, as visible escapes."""


def escape_controls(text: str) -> str:
    """*text* with control characters shown as ``\\x1b`` and the like.

    Text from source data and directories is printed in tables, diffs and
    errors; raw, an ESC sequence in a name could move the cursor, retitle the
    terminal or write the clipboard (OSC 52). Newlines and tabs stay.
    """
    return text.translate(_CONTROLS)


PIPE_WIDTH = 10_000
"""The width of output that is not a terminal: wide enough that no table is cut."""


class SafeConsole(Console):
    """A console that never passes a control character of its text through,
    and is as wide as its lines when writing to a pipe or a file (a script
    reading a table must get every cell whole, not cut at 80 columns)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(escape_controls(o) if isinstance(o, str) else o for o in objects), **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        found = super().size
        return found if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, found.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = SafeConsole(highlight=False)
err_console = SafeConsole(stderr=True, highlight=False)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")
FormatOption = typer.Option(
    "table", "--format", help="table (for people) or tsv (tab-separated, one line a row, for scripts)."
)
UtcOption = typer.Option(False, "--utc", help="Show times in UTC (default: this computer's time zone).")

STATE_STYLES = {
    "succeeded": "green",
    "completed_with_errors": "yellow",
    "failed": "red",
    "held": "magenta",
    "terminated": "yellow",
    "skipped": "dim",
    "missed": "dim",
    "running": "cyan",
    "pending": "cyan",
    "queued": "cyan",
    "awaiting_approval": "magenta",
    "denied": "red",
    "expired": "dim",
    "cancelled": "dim",
    # requests, plans and outbox messages
    "approved": "green",
    "executed": "green",
    "ready": "cyan",
    "applying": "cyan",
    "applied": "green",
    "computing": "cyan",
    "sending": "cyan",
    "sent": "green",
}
"""Colours of run, request, plan and message states; shown on a terminal
only (a pipe gets plain words)."""


def state_text(state: Any) -> Text:
    """A state (or its value) coloured for a terminal."""
    value = str(getattr(state, "value", state))
    return Text(value, style=STATE_STYLES.get(value, ""))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_plain(value), indent=2, ensure_ascii=False) + "\n")


def _cell(value: Any) -> Text:
    if isinstance(value, Text):
        return value
    return Text("" if value is None else escape_controls(str(value)))


def tsv_line(values: Sequence[Any]) -> str:
    """One row as tab-separated text; tabs and newlines in a value become spaces."""
    return "\t".join(
        " ".join(_cell(v).plain.replace("\t", " ").splitlines()) for v in values
    )


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> None:
    """Rows as a table for people, or with *fmt* ``tsv`` as a header line and
    one tab-separated line a row. Cells are text, never markup."""
    if fmt == "tsv":
        sys.stdout.write("".join(tsv_line(row) + "\n" for row in (columns, *rows)))
        return
    if fmt != "table":
        raise fail(f"unknown --format {fmt!r}; one of table, tsv", 2)
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    console.print(t)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``idsync: error: message`` on stderr; return the Exit to raise."""
    err_console.print(f"idsync: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def when(value: dt.datetime | None, utc: bool = False) -> str:
    """A moment as text with its zone: in this computer's zone and its
    abbreviation (``2027-01-04 02:00:00 CET``), or in UTC with *utc*.
    A naive moment is taken as UTC (the database stores UTC)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    shown = value.astimezone(dt.UTC) if utc else value.astimezone()
    return f"{shown:%Y-%m-%d %H:%M:%S} {shown.tzname() or shown.strftime('%z')}"


@contextmanager
def progress(label: str, enabled: bool = True) -> Iterator[Any]:
    """A progress display on stderr (only on a terminal); yields a callback taking Counts."""
    if not enabled or not err_console.is_terminal:
        yield lambda counts: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None, detail="")

        def update(counts: Counts) -> None:
            detail = f"read {counts.read}, changes {counts.changed}, errors {counts.errors}"
            bar.update(task, detail=detail)

        yield update
