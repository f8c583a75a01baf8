"""Definitions as code: ``idsync apply -f FILE`` and ``idsync export``.

A file holds lists under ``stores``, ``sources``, ``jobs``, ``schedules``,
``smart_groups``, ``smart_group_jobs`` and ``collections``. Everything in
it is validated before anything is saved; an error names the file, the line
and the field. Exports leave secrets out (``env:NAME`` references stay), and
applying an export on another installation recreates what it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.services import (
    authz,
    collections,
    definitions,
    jobs,
    schedules,
    smartgroups,
    validation,
    yaml_limits,
)
from idsync.services.definitions import Kind
from idsync.services.workspace import Workspace
from idsync.store.tables import utcnow

SECTIONS: dict[str, Kind] = {
    "stores": "store",
    "sources": "source",
    "jobs": "job",
    "schedules": "schedule",
    "smart_groups": "smart_group",
    "smart_group_jobs": "smart_group_job",
    "collections": "collection",
}
"""The sections of a file, in the order they are saved: an update job names
smart groups; a collection names jobs, a schedule and update jobs."""

_TRIGGER_KINDS = frozenset({"once", "daily", "weekly", "monthly", "startup", "cron"})
"""Tags of the trigger union, which pydantic puts in error locations but the file does not have."""


@dataclass(frozen=True)
class AppliedItem:
    kind: str
    name: str
    outcome: str
    warning: str | None = None


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Record the line of every node by its path of keys and indices."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def read_yaml(path: Path, text: str | None = None) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The one YAML reader of idsync: the data of the file at *path* and the line
    of each path of keys and indices in it, for errors that say file:line.

    Only plain data is read (the safe loader: no Python objects), bounded as
    :mod:`idsync.services.yaml_limits` says: a file whose aliases expand past
    the limit, or that gives a key twice in one mapping, is refused before
    anything is built from it. An empty file, an unreadable one and invalid
    YAML are each one ConfigError.

    *text*: the document itself (received, not read from a file); *path*
    then only names it in messages.
    """
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file", field="file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}", field="file") from exc
    try:
        data, node = yaml_limits.load(text)
    except yaml_limits.YamlLimitError as exc:
        where = f":{exc.line}" if exc.line else ""
        raise ConfigError(f"{path}{where}: {exc}", field="file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}", field="file") from exc
    if data is None:
        raise ConfigError(f"{path}: the file is empty", field="file")
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    return data, lines


def load_file(path: Path, text: str | None = None) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """A definitions file: a mapping of sections, and the line of each path in it (*text*: see read_yaml)."""
    data, lines = read_yaml(path, text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with some of the sections {', '.join(SECTIONS)}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(SECTIONS)}")
    return data, lines


def _line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _field_path(loc: tuple[Any, ...], item: Any) -> tuple[Any, ...]:
    """The path of a pydantic error inside the YAML item: without the union tags
    pydantic inserts (the item's ``kind``, a trigger's ``kind``) and validator names."""
    tags = set(_TRIGGER_KINDS)
    if isinstance(item, dict) and isinstance(item.get("kind"), str):
        tags.add(item["kind"])
    return tuple(p for p in loc if p not in tags and not str(p).startswith("function-"))


class FileErrors(ConfigError):
    """Every error of a definitions file, found in one pass, with file:line
    each. One error is its own line; several are counted, then listed."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        self.errors = list(errors)
        if len(errors) == 1:
            super().__init__(errors[0], field="file")
            return
        super().__init__(
            f"{path}: {len(errors)} errors, nothing saved:\n" + "\n".join(f"  {line}" for line in errors),
            field="file", hint="correct each line named, then give the file again",
        )


def _parse_item(path: Path, lines: dict[tuple[Any, ...], int], base: tuple[Any, ...], kind: Kind, item: Any) -> Any:
    """One definition of the file, validated; ConfigError with file:line of the field otherwise."""
    try:
        return definitions.parse(kind, item)
    except ConfigError as exc:
        cause = exc.__cause__
        loc: tuple[Any, ...] = ()
        if isinstance(cause, ValidationError) and cause.errors():
            loc = _field_path(cause.errors()[0]["loc"], item)
        line = _line_of(lines, base + loc)
        raise ConfigError(f"{path}:{line}: {exc.message}", field=exc.field, hint=exc.hint) from exc


@dataclass(frozen=True)
class _Parsed:
    kind: Kind
    definition: Any
    line: int | None

    def where(self, path: Path) -> str:
        """``FILE:LINE`` of the definition, for its errors."""
        return f"{path}:{self.line}" if self.line is not None else str(path)


def _parse_items(
    path: Path, lines: dict[tuple[Any, ...], int], kind: Kind, items: list[tuple[tuple[Any, ...], Any]]
) -> tuple[list[_Parsed], list[str]]:
    """The valid definitions among *items* (each at its path in the file) and
    the error line of every invalid one: the file is read through."""
    parsed: list[_Parsed] = []
    errors: list[str] = []
    for where, item in items:
        try:
            parsed.append(_Parsed(kind, _parse_item(path, lines, where, kind, item), _line_of(lines, where)))
        except ConfigError as exc:
            errors.append(exc.message)
    return parsed, errors


def _parse_all(path: Path, text: str | None = None) -> tuple[list[_Parsed], list[str], dict[str, set[str]]]:
    """Every valid definition of the file with its line, the error line of
    every invalid one (a file is read through, not stopped at its first
    error), and the names the file defines by kind, invalid ones included (so
    that what names them reports no second error)."""
    data, lines = load_file(path, text)
    parsed: list[_Parsed] = []
    errors: list[str] = []
    named: dict[str, set[str]] = {kind: set() for kind in SECTIONS.values()}
    for section, kind in SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            errors.append(f"{path}:{_line_of(lines, (section,))}: {section} must be a list")
            continue
        named[kind].update(
            item["name"] for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)
        )
        valid, invalid = _parse_items(path, lines, kind, [((section, i), item) for i, item in enumerate(items)])
        parsed.extend(valid)
        errors.extend(invalid)
    return parsed, errors, named


def parse_file(path: Path) -> list[tuple[Kind, Any]]:
    """Every definition in the file, validated; :class:`FileErrors` with every
    error (file:line each) otherwise."""
    parsed, errors, _named = _parse_all(path)
    if errors:
        raise FileErrors(path, errors)
    return [(p.kind, p.definition) for p in parsed]


def read_definitions(path: Path, kind: Kind, *, name: str | None = None, alone: bool = False) -> list[Any]:
    """The definitions of *kind* in the file at *path* (see :func:`_read_items`)."""
    return [p.definition for p in _read_items(path, kind, name=name, alone=alone)]


def _read_items(path: Path, kind: Kind, *, name: str | None = None, alone: bool = False) -> list[_Parsed]:
    """The definitions of *kind* in the file at *path*, validated, with file:line errors.

    The file holds one definition (a mapping), a list of them, or the kind's
    section of a definitions file (``jobs:`` and its list). A file that also
    holds other sections is refused: it is meant to be applied as a whole.
    With *name*, the file must define exactly that one; with *alone*, exactly
    one definition (of that name). Every invalid definition is reported, in
    one :class:`FileErrors`.
    """
    data, lines = read_yaml(path)
    section = next(s for s, k in SECTIONS.items() if k == kind)
    base: tuple[Any, ...] = ()
    if isinstance(data, dict) and data and set(data) <= set(SECTIONS):
        others = sorted(set(data) - {section})
        if others:
            raise ConfigError(
                f"{path}: holds {', '.join(others)} as well as {section}; a file of several kinds is applied as a whole",
                field="file", hint="apply the whole file",
            )
        data, base = data[section], (section,)
    if isinstance(data, list):
        items = [((*base, i), item) for i, item in enumerate(data)]
    else:
        items = [(base, data)]
    if not items or not all(isinstance(item, dict) for _where, item in items):
        raise ConfigError(f"{path}: expected a {definitions.NOUNS[kind]} (a mapping), or a {section}: list of them")
    parsed, errors = _parse_items(path, lines, kind, items)
    if errors:
        raise FileErrors(path, errors)
    names = [p.definition.name for p in parsed]
    if (name is not None or alone) and (len(names) != 1 or (name is not None and names[0] != name)):
        wanted = f"{definitions.NOUNS[kind]} {name!r}" if name is not None else f"one {definitions.NOUNS[kind]}"
        raise ConfigError(f"{path} defines {', '.join(map(repr, names))}; expected {wanted} alone", field="file")
    return parsed


def save_jobs(ws: Workspace, path: Path, *, offline: bool = False) -> list[tuple[str, jobs.SavedJob]]:
    """The jobs of the file at *path*, each checked as :func:`jobs.save_checked`
    checks it, then saved; nothing is saved when one is wrong, and
    :class:`FileErrors` lists every error, file:line each."""
    authz.require(ws, Role.OPERATOR, "save jobs")
    parsed = _read_items(path, "job")
    errors: list[str] = []
    warnings: dict[str, str | None] = {}
    for p in parsed:
        try:
            warnings[p.definition.name] = jobs.check_job(ws, p.definition, offline=offline)
        except ConfigError as exc:
            errors.append(f"{p.where(path)}: {exc.message}")
    if errors:
        raise FileErrors(path, errors)
    return [
        (p.definition.name, jobs.SavedJob(definitions.save(ws, "job", p.definition), warnings[p.definition.name]))
        for p in parsed
    ]


def apply_file(ws: Workspace, path: Path, *, offline: bool = False, text: str | None = None) -> list[AppliedItem]:
    """Validate every definition in *path*, then save them all (stores, sources,
    jobs, schedules, smart groups, update jobs, collections, in that order); nothing is saved when
    anything is wrong, and :class:`FileErrors` lists every error, file:line each.

    A job is also checked against its source's fields and its store's schema
    when both can be read (unless *offline*); when they cannot (or are
    defined in the same file, so not saved yet), it is saved with a warning.
    A one-time schedule trigger whose time has passed is refused.

    *text*: the file's content, received rather than read (*path* then only
    names it in messages, e.g. "the request body").
    """
    authz.require(ws, Role.OPERATOR, "apply definitions")
    parsed, errors, pending = _parse_all(path, text)
    seen: set[tuple[str, str]] = set()
    warnings: dict[tuple[str, str], str] = {}
    now = utcnow()
    incoming_stores = {p.definition.name: p.definition for p in parsed if p.kind == "store"}
    for p in parsed:
        kind, definition = p.kind, p.definition
        where = p.where(path)
        if (kind, definition.name) in seen:
            errors.append(f"{where}: {definitions.NOUNS[kind]} {definition.name!r} is defined twice")
            continue
        seen.add((kind, definition.name))
        try:
            if kind == "source":
                validation.check_source(definition)
            elif kind == "job":
                validation.check_offline(ws, definition, pending)
                if not offline:
                    warning = _check_job_online(ws, definition, pending)
                    if warning:
                        warnings[(kind, definition.name)] = warning
            elif kind == "schedule":
                schedules.check_one_time_ahead(definition, schedules.find_schedule(ws, definition.name), now)
            elif kind == "smart_group":
                smartgroups.check_smart_group(ws, definition, pending, incoming_stores)
            elif kind == "smart_group_job":
                smartgroups.check_job(ws, definition, pending)
            elif kind == "collection":
                collections.check_collection(ws, definition, pending, incoming_stores)
        except ConfigError as exc:
            errors.append(f"{where}: {exc.message}")
    if errors:
        raise FileErrors(path, errors)
    return [
        AppliedItem(p.kind, p.definition.name, definitions.save(ws, p.kind, p.definition),
                    warnings.get((p.kind, p.definition.name)))
        for p in parsed
    ]


def _check_job_online(ws: Workspace, job: Any, pending: dict[str, set[str]]) -> str | None:
    """The connected check of a job whose store and source are stored; a warning
    when one of them is defined in the file (it cannot be read before it is saved)."""
    origin = ("store", job.source.store) if job.source.store is not None else ("source", job.source.data_source)
    for kind, name in (("store", job.destination.store), origin):
        if name in pending.get(kind, set()):
            return (
                f"job {job.name!r}: saved without checking its fields against its source and store: "
                f"{definitions.NOUNS[kind]} {name!r} is defined in the same file; they are checked before each run"
            )
    return validation.check_connected(ws, job)


def export_all(ws: Workspace) -> str:
    """Every store, source and job as YAML, secrets left out."""
    authz.require_reader(ws, "definitions")
    data: dict[str, list[dict[str, Any]]] = {}
    for section, kind in SECTIONS.items():
        items = [definitions.exportable(ws, kind, d.name) for d in definitions.list_definitions(ws, kind)]
        if items:
            data[section] = items
    header = "# idsync definitions; secrets are not exported (env:NAME references are)\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
