"""Turning one source record into the attributes of one directory object.

A job's field mappings are compiled once per run into :class:`Mapper`; the
mapper is then called per record, so everything that can be decided up front
(which origin, the transform chain, the static template) is decided here and
the per-record path is a few function calls.

A job with expressions maps each record within a time limit
(``IDSYNC_RECORD_TIME_LIMIT_SECONDS``, see :mod:`idsync.engine.budget`): a
record past it fails, naming the mapping it was computing, and the run goes
on. A job without expressions pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from idsync.domain.definitions import FieldMapping, JobDefinition
from idsync.domain.entry import Record, Values
from idsync.engine.budget import TimeLimitExceeded, time_limit, within
from idsync.engine.context import RunContext
from idsync.engine.expressions import compile_expression, time_limit_message
from idsync.engine.transforms import (
    IDENTITY,
    check_template,
    compile_steps,
    expand_variables,
    join_values,
)
from idsync.errors import ConfigError, RecordError

T = TypeVar("T")
RawValue = str | None | Sequence[object]
Produce = Callable[[Record], RawValue]


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """A record after mapping: its match key and the values of each mapped attribute.

    ``key`` is normalised for matching (case-folded, trimmed); ``key_text``
    is the key as written in the source, for reports. ``values`` is keyed by
    the lower-cased attribute name.
    """

    key: tuple[str, ...]
    key_text: str
    values: Mapping[str, Values]
    line: int | None


def normalize_key(value: str) -> str:
    """Key values compare as LDAP caseIgnoreMatch does: case-folded, spaces collapsed."""
    return " ".join(value.split()).casefold()


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    definition: FieldMapping
    produce: Produce
    transform: Callable[[str | None], str | None]

    @property
    def attribute(self) -> str:
        return self.definition.attribute

    def values(self, record: Record) -> Values:
        """The attribute values for *record*: origin, then transforms, then splitting."""
        raw = self.produce(record)
        delimiter = self.definition.multi_value_delimiter
        if isinstance(raw, str) and self.transform is IDENTITY and not delimiter:
            return (raw,) if raw else ()  # the common case: a field copied as it is
        if raw is None or isinstance(raw, str):
            items: list[str | None] = [raw]
        else:
            items = [None if v is None else str(v) for v in raw]
        out: list[str] = []
        for item in items:
            value = self.transform(item)
            if not value:
                continue
            parts = value.split(delimiter) if delimiter else [value]
            for part in parts:
                part = part.strip() if delimiter else part
                if part and part not in out:
                    out.append(part)
        return tuple(out)


def _field_reader(name: str) -> Produce:
    def read(record: Record) -> RawValue:
        fields = record.fields
        if name not in fields:
            raise RecordError(
                f"source has no field {name!r} (fields: {', '.join(fields)})", attribute=name, line=record.line
            )
        return fields[name]

    return read


def _origin(mapping: FieldMapping, context: RunContext, label: str) -> Produce:
    if mapping.source is not None:
        return _field_reader(mapping.source)
    if mapping.value is not None:
        check_template(mapping.value, label)
        static = expand_variables(mapping.value, context, label)
        return lambda record: static
    if mapping.join is not None:
        readers = [_field_reader(f) for f in mapping.join.fields]
        separator = mapping.join.separator

        def joined(record: Record) -> RawValue:
            parts: list[str | None] = []
            for reader in readers:
                value = reader(record)
                parts.append(value if value is None or isinstance(value, str) else str(value))
            return join_values(parts, separator)

        return joined
    assert mapping.expression is not None
    expression = compile_expression(mapping.expression, label)
    for name in sorted(expression.env_names):
        refusal = context.refusal(name)
        if refusal is not None:
            raise ConfigError(f"{label}: {refusal}")

    def evaluate(record: Record) -> RawValue:
        result = expression.evaluate(record.fields, context)
        if result is None or isinstance(result, str):
            return result
        if isinstance(result, list | tuple | set | frozenset):
            return list(result)
        return str(result)

    return evaluate


def compile_mapping(mapping: FieldMapping, context: RunContext) -> CompiledMapping:
    """Compile one mapping; raises ConfigError naming the attribute on a bad definition."""
    label = f"mapping {mapping.attribute!r}"
    return CompiledMapping(
        definition=mapping,
        produce=_origin(mapping, context, label),
        transform=compile_steps(mapping.transforms, label),
    )


def _copied_field(m: CompiledMapping) -> str | None:
    """The source field *m* copies as it is (no transform, no splitting), else None."""
    d = m.definition
    if d.source is not None and m.transform is IDENTITY and not d.multi_value_delimiter:
        return d.source
    return None


class Mapper:
    """All mappings of a job, compiled for one run.

    The per-record path is the hot loop of every run, so a mapping that
    copies a field as it is (most of them) is read inline, without the calls
    of the general path; it gives the same values and errors.
    """

    def __init__(self, job: JobDefinition, context: RunContext) -> None:
        self.job = job
        self.mappings = [compile_mapping(m, context) for m in job.mappings]
        self._seconds = time_limit() if any(m.expression is not None for m in job.mappings) else None
        self.key_mappings = [m for m in self.mappings if m.definition.key]
        self._keys = [(m, m.attribute.lower(), _copied_field(m)) for m in self.key_mappings]
        self._others = [
            (m, m.attribute.lower(), _copied_field(m), m.definition.required)
            for m in self.mappings
            if not m.definition.key
        ]

    @property
    def attributes(self) -> list[str]:
        return [m.attribute for m in self.mappings]

    def key_of(self, record: Record) -> tuple[tuple[str, ...], str, dict[str, Values]]:
        """The record's match key (normalised), its text, and the key attributes' values."""
        if self._seconds is None:
            return self._key_of(record)
        return self._timed(self._key_of, record)

    def map(self, record: Record) -> MappedRecord:
        """Map *record*; raises RecordError (with key and line) or CancelRow."""
        if self._seconds is None:
            return self._map(record)
        return self._timed(self._map, record)

    def _timed(self, step: Callable[[Record], T], record: Record) -> T:
        """*step* of *record* within the record's time limit."""
        assert self._seconds is not None
        try:
            return within(self._seconds, step, record)
        except TimeLimitExceeded:
            # Past the limit between two mappings (within one, the mapping says so itself).
            raise RecordError(time_limit_message(), line=record.line) from None

    def _key_of(self, record: Record) -> tuple[tuple[str, ...], str, dict[str, Values]]:
        key_parts: list[str] = []
        key_text: list[str] = []
        values: dict[str, Values] = {}
        fields = record.fields
        for m, low, copied in self._keys:
            if copied is not None and copied in fields:
                raw = fields[copied]
                vals: Values = (raw,) if raw else ()
            else:
                vals = self._values(m, record, "")
            if not vals:
                raise RecordError(
                    f"key {m.attribute!r} is empty", attribute=m.attribute, line=record.line
                )
            key_text.append(vals[0])
            key_parts.append(normalize_key(vals[0]))
            values[low] = vals
        return tuple(key_parts), "|".join(key_text), values

    def _map(self, record: Record) -> MappedRecord:
        key, key_text, values = self._key_of(record)
        fields = record.fields
        for m, low, copied, required in self._others:
            if copied is not None and copied in fields:
                raw = fields[copied]
                vals: Values = (raw,) if raw else ()
            else:
                vals = self._values(m, record, key_text)
            if not vals and required:
                raise RecordError(
                    f"required attribute {m.attribute!r} has no value",
                    key=key_text,
                    attribute=m.attribute,
                    line=record.line,
                )
            values[low] = vals
        return MappedRecord(key, key_text, values, record.line)

    @staticmethod
    def _values(m: CompiledMapping, record: Record, key: str) -> Values:
        try:
            return m.values(record)
        except RecordError as exc:
            raise RecordError(
                exc.message, key=exc.key or key or None, attribute=exc.attribute or m.attribute, line=record.line
            ) from exc
        except TimeLimitExceeded:
            # In a transform or between two expressions of the mapping.
            label = f"mapping {m.attribute!r}"
            raise RecordError(
                f"{label}: {time_limit_message()}", key=key or None, attribute=m.attribute, line=record.line
            ) from None
