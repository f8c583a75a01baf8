"""Plans as CSV, JSON and LDIF, for reading, review and other tools.

Each writer streams: it takes an iterator of changes and writes as it goes,
so a plan of a million changes is exported in constant memory.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable
from typing import TextIO

from idsync.domain.changes import Change, ChangeOp, ModOp
from idsync.domain.dn import format_dn, parent_dn, parse_dn
from idsync.domain.entry import Attrs

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


def _ldif_line(name: str, value: str) -> str:
    safe = (
        value.isascii()
        and value == value.strip()
        and not value.startswith((":", "<"))
        and not any(c in value for c in "\n\r\0")
    )
    if safe:
        return f"{name}: {value}\n"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}\n"


def write_ldif(changes: Iterable[Change], out: TextIO) -> None:
    """RFC 2849 change records, applicable with ldapmodify."""
    out.write("version: 1\n")
    for change in changes:
        out.write("\n" + _ldif_line("dn", change.dn))
        if change.op is ChangeOp.CREATE:
            out.write("changetype: add\n")
            attrs = change.attrs or Attrs()
            for name in attrs:
                for value in attrs[name]:
                    out.write(_ldif_line(name, value))
            continue
        if change.op is ChangeOp.DELETE:
            out.write("changetype: delete\n")
            continue
        target = change.dn
        if change.new_dn:
            out.write("changetype: modrdn\n")
            out.write(_ldif_line("newrdn", format_dn(parse_dn(change.new_dn)[:1])))
            out.write("deleteoldrdn: 1\n")
            out.write(_ldif_line("newsuperior", parent_dn(change.new_dn)))
            target = change.new_dn
            if not change.mods:
                continue
            out.write("\n" + _ldif_line("dn", target))
        out.write("changetype: modify\n")
        for mod in change.mods:
            op = {ModOp.ADD: "add", ModOp.DELETE: "delete", ModOp.REPLACE: "replace"}[mod.op]
            out.write(f"{op}: {mod.attribute}\n")
            for value in mod.values:
                out.write(_ldif_line(mod.attribute, value))
            out.write("-\n")


WRITERS = {"csv": write_csv, "json": write_json, "ldif": write_ldif}
