"""The mapper's inline path for copied fields gives what the general path gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.definitions import JobDefinition
from idsync.domain.entry import Record
from idsync.engine.context import RunContext
from idsync.engine.mapping import MappedRecord, Mapper
from idsync.errors import RecordError
from tests.jobs import job_definition

FIELDS = ("id", "first", "last", "mail")


def job(*, required: bool = False) -> JobDefinition:
    return job_definition([
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "givenName", "from": "first"},
        {"attribute": "sn", "from": "last", "required": required},
        {"attribute": "mail", "from": "mail"},
        {"attribute": "cn", "join": {"fields": ["first", "last"], "separator": " "}},
    ])


def general_only(mapper: Mapper) -> Mapper:
    """The same mapper with the inline path switched off."""
    mapper._keys = [(m, low, None) for m, low, _ in mapper._keys]
    mapper._others = [(m, low, None, required) for m, low, _, required in mapper._others]
    return mapper


def outcome(mapper: Mapper, record: Record) -> MappedRecord | tuple[Any, ...]:
    try:
        return mapper.map(record)
    except RecordError as exc:
        return (exc.message, exc.key, exc.attribute, exc.line)


cells = st.none() | st.text(max_size=6)
records = st.builds(
    Record,
    fields=st.dictionaries(st.sampled_from(FIELDS), cells, max_size=len(FIELDS)),
    line=st.integers(1, 10),
)


@pytest.mark.parametrize("required", [False, True])
@given(record=records)
def test_inline_and_general_paths_agree(required: bool, record: Record) -> None:
    context = RunContext("people", datetime(2026, 1, 1, tzinfo=UTC), {})
    fast = Mapper(job(required=required), context)
    slow = general_only(Mapper(job(required=required), context))
    assert outcome(fast, record) == outcome(slow, record)


def test_values_keep_mapping_order_and_lower_case_names() -> None:
    mapper = Mapper(job(), RunContext("people", datetime(2026, 1, 1, tzinfo=UTC), {}))
    mapped = mapper.map(Record({"id": " Ann ", "first": "Ann", "last": "", "mail": None}, line=2))
    assert mapped.key == ("ann",) and mapped.key_text == " Ann "
    assert list(mapped.values.items()) == [
        ("uid", (" Ann ",)), ("givenname", ("Ann",)), ("sn", ()), ("mail", ()), ("cn", ("Ann",)),
    ]
