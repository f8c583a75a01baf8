"""Importing LDIF records into a directory: streamed, pipelined, each record reported.

The records of :func:`idsync.domain.ldif_reader.read_ldif` go to the
directory's ``apply`` as one stream of changes, so an LDAP server gets them
pipelined (several operations in flight) and the embedded directory in
committed batches; nothing holds more than the records in flight.

A record that cannot be read or applied is reported with its line (an
:class:`ImportEvent` with an error) and the import goes on, or stops there
when asked to (the operations already sent complete first).

Two things make an import of a server's export work as it is:

- an add refused because the parent entry does not exist (yet) is tried
  again after the rest of the file, parents first: a server's export is
  not always written parents first (an entry moved below a newer one comes
  before it), and the parent may also come later in the same batch or
  window of operations. At most :data:`MAX_DEFERRED` adds wait this way;
  beyond that they fail at once;
- attributes the directory maintains itself (``entryUUID``,
  ``createTimestamp``…: NO-USER-MODIFICATION in its schema, as an export
  with operational attributes holds them) are left out of adds, and named
  once in the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from idsync.connectors.base import Directory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import parse_dn
from idsync.domain.entry import Attrs
from idsync.domain.ldif_reader import LdifRecord
from idsync.errors import ConnectorError, RecordError

MAX_DEFERRED = 100_000
"""Adds that may wait for a parent later in the file (they are kept in memory)."""

NO_SUCH_OBJECT = "No such object"

ACTIONS = {
    ChangeOp.CREATE: "add",
    ChangeOp.UPDATE: "modify",
    ChangeOp.DELETE: "delete",
    ChangeOp.MOVE: "rename",
}


@dataclass(frozen=True, slots=True)
class ImportEvent:
    """One record's fate: ``error`` None when it was applied (or, in a dry
    run, would be). ``action`` is add, modify, delete, rename, or read (a
    record that could not be read); ``detail`` says what a dry run would do."""

    line: int | None
    action: str
    dn: str
    error: str | None = None
    detail: str = ""

    def text(self) -> str:
        """One line for a person: ``line 12: …``."""
        where = f"line {self.line}: " if self.line is not None else ""
        if self.error is not None:
            return f"{where}{self.error}"
        return f"{where}{self.action} {self.dn}{': ' + self.detail if self.detail else ''}"


@dataclass
class ImportResult:
    """Counts of an import, and the attributes it left out of adds."""

    added: int = 0
    modified: int = 0
    deleted: int = 0
    renamed: int = 0
    failed: int = 0
    dry_run: bool = False
    stopped: bool = False
    left_out: set[str] = field(default_factory=set)

    def count(self, op: ChangeOp) -> None:
        name = {ChangeOp.CREATE: "added", ChangeOp.UPDATE: "modified", ChangeOp.DELETE: "deleted"}.get(op, "renamed")
        setattr(self, name, getattr(self, name) + 1)

    def summary(self) -> str:
        counts = (
            f"added {self.added}, modified {self.modified}, deleted {self.deleted}, "
            f"renamed {self.renamed}, failed {self.failed}"
        )
        if self.dry_run:
            return f"dry run, nothing written: would have {counts}"
        return counts + (" (stopped at the first failure)" if self.stopped else "")


EventSink = Callable[[ImportEvent], None]


def describe(change: Change) -> str:
    """What a change does, in a few words, for a dry run."""
    if change.op is ChangeOp.CREATE:
        return f"{len(change.attrs or ())} attribute(s)"
    if change.op is ChangeOp.MOVE:
        kept = "" if change.delete_old_rdn else ", keeping the old RDN values"
        return f"to {change.new_dn}{kept}"
    if change.op is ChangeOp.UPDATE:
        return ", ".join(f"{m.op.value} {m.attribute}" for m in change.mods)
    return ""


def dry_run(items: Iterable[LdifRecord | RecordError], on_event: EventSink, stop_on_error: bool = False) -> ImportResult:
    """Read every record and say what importing it would do; write nothing."""
    result = ImportResult(dry_run=True)
    for item in items:
        if isinstance(item, RecordError):
            result.failed += 1
            on_event(ImportEvent(item.line, "read", item.key or "", item.message))
            if stop_on_error:
                result.stopped = True
                break
            continue
        change = item.change
        result.count(change.op)
        on_event(ImportEvent(item.line, ACTIONS[change.op], change.dn, detail=describe(change)))
    return result


class Importer:
    """Applies LDIF records to one directory (see the module docstring)."""

    def __init__(self, directory: Directory, on_event: EventSink, *, stop_on_error: bool = False) -> None:
        self.directory = directory
        self.on_event = on_event
        self.stop_on_error = stop_on_error
        self.result = ImportResult()
        schema = directory.schema()
        self._maintained = (
            {n.lower() for at in schema.attribute_types if at.no_user_modification for n in at.names}
            if schema is not None
            else set()
        )
        self._deferred: list[tuple[LdifRecord, Change, RecordError]] = []
        self._last_line: int | None = None

    def run(self, items: Iterable[LdifRecord | RecordError]) -> ImportResult:
        """Apply every record; the counts.

        A lost connection (ConnectorError) ends the import: it is raised
        again saying what was done before and the line of the last record
        sent (records sent shortly before it may or may not be applied).
        """
        try:
            return self._run(items)
        except ConnectorError as exc:
            where = f"the last record sent starts on line {self._last_line}; " if self._last_line else ""
            raise type(exc)(
                f"{exc.message} ({where}so far {self.result.summary()})",
                field=exc.field,
                hint="check the entries of the records before that line, then import the rest of the file",
            ) from exc

    def _run(self, items: Iterable[LdifRecord | RecordError]) -> ImportResult:
        self._apply(self._changes(items), retrying=False)
        while self._deferred and not self.result.stopped:
            waiting = sorted(self._deferred, key=lambda d: len(parse_dn(d[1].dn)))
            self._deferred = []
            before = self.result.added
            self._apply(((record, change) for record, change, _ in waiting), retrying=True)
            if self.result.added == before:  # no parent came: they fail as they are
                break
        waiting, self._deferred = self._deferred, []
        for record, change, error in waiting:
            self._failed(record, change, error)
        return self.result

    def _changes(self, items: Iterable[LdifRecord | RecordError]) -> Iterator[tuple[LdifRecord, Change]]:
        for item in items:
            if self.result.stopped:
                return
            if isinstance(item, RecordError):
                self.result.failed += 1
                self.on_event(ImportEvent(item.line, "read", item.key or "", item.message))
                if self.stop_on_error:
                    self.result.stopped = True
                    return
                continue
            yield item, self._prepared(item.change)

    def _prepared(self, change: Change) -> Change:
        """*change* without the attributes the directory maintains itself."""
        if change.op is not ChangeOp.CREATE or change.attrs is None or not self._maintained:
            return change
        names = [name for name in change.attrs if name.split(";", 1)[0].lower() in self._maintained]
        if not names:
            return change
        self.result.left_out.update(names)
        kept = Attrs([(n, v) for n, v in change.attrs.pairs() if n not in names])
        return replace(change, attrs=kept)

    def _apply(self, pairs: Iterable[tuple[LdifRecord, Change]], *, retrying: bool) -> None:
        sent: dict[int, LdifRecord] = {}

        def changes() -> Iterator[Change]:
            for record, change in pairs:
                if self.result.stopped:
                    return
                sent[id(change)] = record
                self._last_line = record.line
                yield change

        for outcome in self.directory.apply(changes()):
            change = outcome.change
            record = sent.pop(id(change))
            if outcome.error is None:
                self.result.count(change.op)
                continue
            room = retrying or len(self._deferred) < MAX_DEFERRED
            if change.op is ChangeOp.CREATE and room and _no_parent(outcome.error):
                self._deferred.append((record, change, outcome.error))
                continue
            self._failed(record, change, outcome.error)

    def _failed(self, record: LdifRecord, change: Change, error: RecordError) -> None:
        self.result.failed += 1
        self.on_event(ImportEvent(record.line, ACTIONS[change.op], change.dn, error.message))
        if self.stop_on_error:
            self.result.stopped = True


def _no_parent(error: RecordError) -> bool:
    """True when an add failed for want of its parent: LDAP's noSuchObject,
    which an add can only get for its parent, worded alike by the LDAP
    connector (libldap's description) and the embedded directory."""
    return NO_SUCH_OBJECT in error.message
