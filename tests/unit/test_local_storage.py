"""The embedded directory's entry text and entry UUIDs: what is written reads back the same,
binary values (lone surrogates) included, and text written before orjson
(the standard library's, with or without escapes) still reads; and how the
file's write-ahead log is set up."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from idsync.connectors.local.storage import CHECKPOINT_PAGES, Storage, dumps, entry_uuid, loads

CASES = [
    {"cn": ["Zoë Ångström"], "description": ["line\nbreak", "tab\there", "nul\x00", "\u2028"]},
    {"jpegPhoto": ["\udcff\udcd8binary"], "cn": ["x"]},  # bytes that were not UTF-8, kept as surrogates
    {"objectClass": ["top", "person"], "sn": ["\U0001f600 emoji"]},
]


@pytest.mark.parametrize("attrs", CASES)
def test_what_is_written_reads_back_the_same(attrs: dict[str, list[str]]) -> None:
    assert loads(dumps(attrs)) == attrs


# Lone surrogates were always written escaped (ensure_ascii), the rest as UTF-8 text.
EARLIER = [json.dumps(attrs, ensure_ascii=ascii_only, separators=(",", ":"))
           for attrs in CASES for ascii_only in (False, True) if attrs is not CASES[1] or ascii_only]


@pytest.mark.parametrize("text", EARLIER)
def test_text_the_standard_library_wrote_still_reads(text: str) -> None:
    assert loads(text) == json.loads(text)


def test_binary_values_are_written_as_escapes_sqlite_can_store() -> None:
    text = dumps(CASES[1])
    assert "\\udcff" in text
    text.encode("utf-8")  # raises UnicodeEncodeError if a lone surrogate were left in it


def test_entry_uuids_are_version_7_unique_and_ordered_by_time() -> None:
    """Time-ordered (RFC 9562 version 7), so a load appends to the file's index on them."""
    first = [entry_uuid() for _ in range(2000)]
    time.sleep(0.002)
    later = entry_uuid()
    parsed = [uuid.UUID(u) for u in first]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(first)) == len(first)
    assert later > max(first)  # a later millisecond sorts after, as text too
    assert abs(int(first[0][:8] + first[0][9:13], 16) - time.time_ns() // 1_000_000) < 60_000


def test_a_forked_child_draws_other_random_bits_than_its_parent() -> None:
    """The random bytes are read ahead in bulk: a child must not reuse the parent's."""
    entry_uuid()  # the parent has bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next UUIDs, then out at once
        os.write(write, "".join(entry_uuid()[-12:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(entry_uuid()[-12:] for _ in range(50))
    assert len(child) == len(parent) == 600
    assert not {child[i : i + 12] for i in range(0, 600, 12)} & {parent[i : i + 12] for i in range(0, 600, 12)}


def test_the_wal_is_copied_into_the_file_in_large_rounds_and_cut_back_after(tmp_path: Path) -> None:
    """A load's scattered index pages are copied once a round, not every other batch (W9L)."""
    store = Storage(tmp_path / "dir.db")
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == CHECKPOINT_PAGES
        assert store.db.execute("PRAGMA journal_size_limit").fetchone()[0] == CHECKPOINT_PAGES * 4096
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()
