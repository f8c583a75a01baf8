"""Directory entries on standard output, as they arrive: LDIF, JSON or tables.

Nothing is collected first: LDIF and JSON are written entry by entry (JSON
as one array, opened once the first entry is there, so an error before it
leaves no half document), a table is printed every :data:`TABLE_ROWS` entries.

Binary values (bytes that are not UTF-8, kept as lone surrogates by the
connectors) are base64 in LDIF, ``{"base64": "..."}`` in JSON, and shown as
their size in a table.
"""

from __future__ import annotations

import base64
import enum
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from rich.table import Table
from rich.text import Text

from idsync.cli.output import console, escape_controls
from idsync.domain.entry import Entry
from idsync.domain.ldif_writer import HEADER, entry_record

TABLE_ROWS = 100

_BINARY = re.compile("[\udc80-\udcff]")


class Format(enum.StrEnum):
    LDIF = "ldif"
    JSON = "json"
    TABLE = "table"


def _json_value(value: str) -> Any:
    if _BINARY.search(value):
        return {"base64": base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")}
    return value


def _shown(value: str) -> str:
    if _BINARY.search(value):
        return f"(binary, {len(value.encode('utf-8', 'surrogateescape'))} bytes)"
    return escape_controls(value)


def _cell(values: Iterable[str]) -> Text:
    """A table cell: plain text (never markup), one value a line."""
    return Text("\n".join(_shown(v) for v in values))


def _started(entries: Iterable[Entry]) -> Iterator[Entry] | None:
    """*entries* with the first one read already (errors come out before any
    output), or None when there is none."""
    it = iter(entries)
    for first in it:
        return chain([first], it)
    return None


def write_entries(entries: Iterable[Entry], fmt: Format, attributes: Sequence[str] | None) -> int:
    """Write *entries* to standard output in *fmt*; how many."""
    started = _started(entries)
    if fmt is Format.JSON:
        return _write_json(started)
    if fmt is Format.TABLE:
        return _write_tables(started, attributes)
    out = sys.stdout
    out.write(HEADER + "\n")
    count = 0
    for entry in started or ():
        out.write(entry_record(entry.dn, entry.attrs.pairs()))
        count += 1
    return count


def _write_json(entries: Iterator[Entry] | None) -> int:
    out = sys.stdout
    out.write("[")
    count = 0
    for entry in entries or ():
        body = {"dn": entry.dn, "attributes": {n: [_json_value(v) for v in vals] for n, vals in entry.attrs.pairs()}}
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(body, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _write_tables(entries: Iterator[Entry] | None, attributes: Sequence[str] | None) -> int:
    """A table every TABLE_ROWS entries: with attributes named, a column each;
    otherwise a row per attribute."""
    wanted = [a for a in attributes or () if a not in ("*", "+", "1.1")]
    count = 0
    table = _new_table(wanted, header=True)
    for entry in entries or ():
        count += 1
        dn = _cell([entry.dn])
        if wanted:
            table.add_row(dn, *(_cell(entry.attrs.get_values(a)) for a in wanted))
        else:
            first = True
            for name, values in entry.attrs.pairs():
                table.add_row(dn if first else Text(""), _cell([name]), _cell(values))
                first = False
            if first:
                table.add_row(dn, Text(""), Text(""))
        if count % TABLE_ROWS == 0:
            console.print(table)
            table = _new_table(wanted, header=False)
    if table.row_count or count == 0:
        console.print(table)
    return count


def _new_table(wanted: Sequence[str], header: bool) -> Table:
    table = Table(show_edge=False, header_style="bold", show_header=header)
    for column in ["dn", *wanted] if wanted else ["dn", "attribute", "values"]:
        table.add_column(column, overflow="fold")
    return table
