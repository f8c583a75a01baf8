"""Plans as CSV, JSON and LDIF, for reading, review and other tools.

Each writer streams: it takes an iterator of changes and writes as it goes,
so a plan of a million changes is exported in constant memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from idsync.domain.changes import Change
from idsync.domain.ldif_writer import HEADER, change_record

FORMATS = ("csv", "json", "ldif")


def change_rows(change: Change) -> Iterable[tuple[str, str, str]]:
    """(attribute, current values, new values) of a change, values joined by ' | '."""
    if change.attrs is not None:
        for name in change.attrs:
            yield name, "", " | ".join(change.attrs[name])
    for mod in change.mods:
        yield mod.attribute, " | ".join(mod.before), " | ".join(mod.after())
    if change.new_dn:
        yield "dn", change.dn, change.new_dn


def write_csv(changes: Iterable[Change], out: TextIO) -> None:
    """One row per changed attribute: op, dn, key, attribute, current, new."""
    writer = csv.writer(out)
    writer.writerow(["op", "dn", "key", "attribute", "current", "new"])
    for change in changes:
        rows = list(change_rows(change)) or [("", "", "")]
        for attribute, before, after in rows:
            writer.writerow([change.op.value, change.dn, change.key, attribute, before, after])


def change_to_dict(change: Change) -> dict[str, object]:
    data: dict[str, object] = {"op": change.op.value, "dn": change.dn, "key": change.key}
    if change.new_dn:
        data["new_dn"] = change.new_dn
    if change.attrs is not None:
        data["attributes"] = change.attrs.to_dict()
    if change.mods:
        data["modifications"] = [
            {"op": m.op.value, "attribute": m.attribute, "values": list(m.values), "current": list(m.before)}
            for m in change.mods
        ]
    return data


def write_json(changes: Iterable[Change], out: TextIO) -> None:
    """A JSON array of changes, written element by element."""
    out.write("[")
    for i, change in enumerate(changes):
        out.write(",\n  " if i else "\n  ")
        out.write(json.dumps(change_to_dict(change), ensure_ascii=False))
    out.write("\n]\n")


def write_ldif(changes: Iterable[Change], out: TextIO) -> None:
    """RFC 2849 change records, applicable with ldapmodify (and ``idsync directory import``)."""
    out.write(HEADER + "\n")
    for change in changes:
        out.write(change_record(change))


WRITERS = {"csv": write_csv, "json": write_json, "ldif": write_ldif}
