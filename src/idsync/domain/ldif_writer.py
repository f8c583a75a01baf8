"""Writing LDIF (RFC 2849): entries and change records, one at a time.

Each function returns the text of one record, so a caller streams a file of
any size record by record. What the RFC asks, and a little more:

- a value is written in base64 (``attr:: …``) unless it is a SAFE-STRING:
  it is then plain ASCII without NUL, CR or LF (here: without any control
  character), and it does not start with a space, a colon or ``<``; a value
  ending with a space is base64 too, so no tool can trim it;
- lines longer than :data:`WIDTH` columns are folded: the rest continues on
  lines that start with one space (as ``ldapsearch`` writes);
- values read from a directory as binary (kept with ``surrogateescape``) are
  written back as the same bytes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

from idsync.domain.changes import Change, ChangeOp, ModOp
from idsync.domain.dn import format_dn, parent_dn, parse_dn

WIDTH = 76
"""Columns of a line before it is folded (``ldapsearch``'s default)."""

HEADER = "version: 1\n"

_UNSAFE = re.compile(r"[^\x20-\x7e]|^[ :<]| $")


def needs_base64(value: str) -> bool:
    """True when *value* cannot be written as a plain SAFE-STRING."""
    return _UNSAFE.search(value) is not None


def _fold(line: str, width: int) -> str:
    if len(line) <= width:
        return line + "\n"
    parts = [line[:width]]
    rest = line[width:]
    step = width - 1
    parts.extend(" " + rest[i : i + step] for i in range(0, len(rest), step))
    return "\n".join(parts) + "\n"


def value_line(name: str, value: str, width: int = WIDTH) -> str:
    """``name: value`` (or ``name:: base64``), folded, with its newline."""
    if needs_base64(value):
        encoded = base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
        return _fold(f"{name}:: {encoded}", width)
    return _fold(f"{name}: {value}" if value else f"{name}:", width)


def entry_record(dn: str, attrs: Iterable[tuple[str, Iterable[str]]], width: int = WIDTH) -> str:
    """A content record: the DN, then each value of each attribute; ends with a blank line."""
    out = [value_line("dn", dn, width)]
    for name, values in attrs:
        out.extend(value_line(name, v, width) for v in values)
    out.append("\n")
    return "".join(out)


_MOD_NAMES = {ModOp.ADD: "add", ModOp.DELETE: "delete", ModOp.REPLACE: "replace"}


def change_record(change: Change, width: int = WIDTH) -> str:
    """The change records of *change* (``ldapmodify`` applies them); each ends
    with a blank line. A move with modifications is a ``modrdn`` record and a
    ``modify`` record of the new DN."""
    out = [value_line("dn", change.dn, width)]
    if change.op is ChangeOp.CREATE:
        out.append("changetype: add\n")
        for name, values in (change.attrs or {}).items():
            out.extend(value_line(name, v, width) for v in values)
        out.append("\n")
        return "".join(out)
    if change.op is ChangeOp.DELETE:
        out.append("changetype: delete\n\n")
        return "".join(out)
    if change.op is ChangeOp.MOVE and change.new_dn:
        out.append("changetype: modrdn\n")
        out.append(value_line("newrdn", format_dn(parse_dn(change.new_dn)[:1]), width))
        out.append(f"deleteoldrdn: {1 if change.delete_old_rdn else 0}\n")
        superior = parent_dn(change.new_dn)
        if superior:
            out.append(value_line("newsuperior", superior, width))
        out.append("\n")
        if not change.mods:
            return "".join(out)
        out.append(value_line("dn", change.new_dn, width))
    out.append("changetype: modify\n")
    for mod in change.mods:
        out.append(f"{_MOD_NAMES[mod.op]}: {mod.attribute}\n")
        out.extend(value_line(mod.attribute, v, width) for v in mod.values)
        out.append("-\n")
    out.append("\n")
    return "".join(out)
