"""Try a job's mappings: the entries the first rows of its source would
produce, and the errors of the rows that fail, writing nothing.

Someone editing a job wants to see what a mapping does before saving it and
before a preview reads the whole source and the destination. :func:`try_job`
takes the job as edited (saved or not), reads at most :data:`MOST_ROWS`
records of its source, maps each the way a run does (:class:`Mapper`, with
the same run context) and names the new object each would make (its DN from
the naming attribute and the container, or the container expression). The
destination is not read: a trial shows what the mappings produce, not what
a run would change (that is the preview's job); ``resolve`` mappings show
their values as they are, before they are looked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from idsync.connectors.base import Source
from idsync.domain.definitions import JobDefinition
from idsync.domain.dn import rdn_dn
from idsync.domain.entry import Record, Values
from idsync.domain.roles import Role
from idsync.engine.context import RunContext
from idsync.engine.expressions import CancelRow, compile_expression
from idsync.engine.mapping import MappedRecord, Mapper
from idsync.errors import ConfigError, RecordError
from idsync.services import authz, connections, jobs, validation
from idsync.services.workspace import Workspace

DEFAULT_ROWS = 5
MOST_ROWS = 50


@dataclass(frozen=True)
class TrialEntry:
    """The object one record maps to, as a new entry would be written."""

    line: int | None
    key: str
    dn: str
    attributes: dict[str, list[str]]
    """Attribute name (as the mapping spells it) to values, objectClass first."""


@dataclass(frozen=True)
class TrialError:
    """A record that could not be mapped: where, and why."""

    line: int | None
    key: str | None
    attribute: str | None
    message: str


@dataclass(frozen=True)
class Trial:
    """What the first *rows* records of the job's source map to."""

    job: str
    source: str
    rows: int
    read: int = 0
    entries: list[TrialEntry] = field(default_factory=list)
    errors: list[TrialError] = field(default_factory=list)
    skipped: list[int | None] = field(default_factory=list)
    """Lines of the records an expression cancelled (``cancel_row()``)."""
    columns: list[str] | None = None
    """The source's field names, when it knows them before reading."""
    unresolved: list[str] = field(default_factory=list)
    """Attributes whose ``resolve`` a trial does not apply: shown as mapped."""


def row_count(rows: int | None) -> int:
    """*rows* checked against the bounds (None: the default)."""
    if rows is None:
        return DEFAULT_ROWS
    if not 1 <= rows <= MOST_ROWS:
        raise ConfigError(f"a trial reads 1 to {MOST_ROWS} rows, not {rows}", field="rows",
                          hint=f"give --rows between 1 and {MOST_ROWS}")
    return rows


def try_job(ws: Workspace, job: JobDefinition, rows: int | None = None) -> Trial:
    """Map the first *rows* records of *job*'s source (the job as given, saved
    or not); ConfigError when the job cannot run at all. Writes nothing."""
    authz.require(ws, Role.OPERATOR, "try jobs")
    count = row_count(rows)
    validation.check_offline(ws, job)
    context = RunContext.create(job.name, readable=job.environment)
    mapper = Mapper(job, context)
    namer = _Namer(job, context)
    entries: list[TrialEntry] = []
    errors: list[TrialError] = []
    skipped: list[int | None] = []
    read = 0
    with connections.job_source(ws, job) as source:
        columns = validation.source_columns(source)
        for item in _first(source, count):
            read += 1
            if isinstance(item, RecordError):
                errors.append(_error(item))
                continue
            try:
                entries.append(namer.entry(mapper.map(item)))
            except CancelRow:
                skipped.append(item.line)
            except RecordError as exc:
                errors.append(_error(exc))
    unresolved = [m.attribute for m in job.mappings if m.resolve is not None]
    return Trial(job.name, job.source.label, count, read, entries, errors, skipped, columns, unresolved)


def try_stored(ws: Workspace, name: str, rows: int | None = None) -> Trial:
    """:func:`try_job` for the saved job *name*."""
    authz.require(ws, Role.OPERATOR, "try jobs")
    _id, job = jobs.load_job(ws, name)
    return try_job(ws, job, rows)


def _first(source: Source, count: int) -> Iterator[Record | RecordError]:
    """The first *count* items the source yields (records or their errors), then stop reading."""
    if count <= 0:
        return
    for index, item in enumerate(source.read(), start=1):
        yield item
        if index >= count:
            return


def _error(exc: RecordError) -> TrialError:
    return TrialError(exc.line, exc.key, exc.attribute, exc.message)


class _Namer:
    """The DN and attributes of the new object a mapped record makes, as the planner names it."""

    def __init__(self, job: JobDefinition, context: RunContext) -> None:
        self.job = job
        self.context = context
        self.rdn = job.destination.rdn
        self.classes = list(job.destination.classes)
        self.spelled = {m.attribute.lower(): m.attribute for m in job.mappings}
        expression = job.destination.container_expression
        self.container_expr = compile_expression(expression, "container_expression") if expression else None

    def entry(self, rec: MappedRecord) -> TrialEntry:
        values: dict[str, Values] = dict(rec.values)
        rdn_values = values.get(self.rdn.lower(), ())
        if not rdn_values:
            raise RecordError(f"no value for the naming attribute {self.rdn!r}; a new object needs one",
                              key=rec.key_text, attribute=self.rdn, line=rec.line)
        dn = rdn_dn(self.rdn, rdn_values[0], self._container(rec))
        attributes: dict[str, list[str]] = {}
        if "objectclass" not in values:
            attributes["objectClass"] = self.classes
        for low, vals in values.items():
            if vals:
                extra = self.classes if low == "objectclass" else []  # classes a mapping gives add to the job's
                attributes[self.spelled.get(low, low)] = [*extra, *(v for v in vals if v not in extra)]
        return TrialEntry(rec.line, rec.key_text, dn, attributes)

    def _container(self, rec: MappedRecord) -> str:
        if self.container_expr is None:
            return self.job.destination.container
        fields = {k: (v[0] if v else None) for k, v in rec.values.items()}
        result = self.container_expr.evaluate(fields, self.context)
        if not isinstance(result, str) or not result:
            raise RecordError("container_expression gave no DN", key=rec.key_text, line=rec.line)
        return result
