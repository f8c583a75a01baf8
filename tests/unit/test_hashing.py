"""Content hashes of mapped records: stable, order-blind, tied to the job's definition."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.definitions import JobDefinition
from idsync.engine.hashing import KEY_SEPARATOR, content_hash, job_fingerprint, state_key
from tests.jobs import job_definition


def job(**overrides: Any) -> JobDefinition:
    mappings = overrides.pop("mappings", [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "sn", "from": "last"},
    ])
    return job_definition(mappings, **overrides)


VALUES = {"uid": ("e1",), "sn": ("Lovelace",), "telephonenumber": ("111", "222")}


def test_the_hash_is_pinned_so_stored_hashes_stay_valid_across_versions() -> None:
    # Stored hashes outlive the process: this value must never change by accident
    # (a new Python, a new json module, dict ordering). BLAKE2b over canonical JSON.
    assert content_hash(VALUES, "f" * 32) == content_hash(dict(reversed(VALUES.items())), "f" * 32)
    assert content_hash(VALUES, "f" * 32) == "0c1b1ba8555c42d5c5583a74889bde96"


def test_value_order_and_attribute_case_do_not_matter() -> None:
    shuffled = {"SN": ("Lovelace",), "TelephoneNumber": ("222", "111"), "UID": ("e1",)}
    assert content_hash(shuffled) == content_hash(VALUES)


def test_empty_attributes_count_as_absent() -> None:
    assert content_hash({**VALUES, "mail": ()}) == content_hash(VALUES)


def test_any_value_change_changes_the_hash() -> None:
    assert content_hash({**VALUES, "sn": ("Byron",)}) != content_hash(VALUES)
    assert content_hash({**VALUES, "telephonenumber": ("111",)}) != content_hash(VALUES)
    # A value moving to another attribute is a change too.
    assert content_hash({"a": ("x",), "b": ()}) != content_hash({"a": (), "b": ("x",)})


def test_the_fingerprint_is_part_of_the_hash() -> None:
    assert content_hash(VALUES, "a" * 32) != content_hash(VALUES, "b" * 32)


def test_fingerprint_follows_what_decides_the_written_values() -> None:
    base = job_fingerprint(job())
    assert job_fingerprint(job()) == base
    # Description, owners, limits and update settings do not change what is written.
    assert job_fingerprint(job(description="x", owners=["ann"], limits={"max_creates": 3})) == base
    assert job_fingerprint(job(update_mode="changed", changed_by={"hash": True})) == base
    # Mappings, destination and actions do.
    extra = [*job().model_dump(by_alias=True)["mappings"], {"attribute": "mail", "from": "mail"}]
    assert job_fingerprint(job(mappings=extra)) != base
    assert job_fingerprint(job(destination={"store": "dir", "container": "ou=Other,dc=example,dc=org"})) != base
    assert job_fingerprint(job(actions={"on_missing": "delete"})) != base


def test_state_key_joins_compound_keys_unambiguously() -> None:
    assert state_key(("a",)) == "a"
    assert state_key(("a|b", "c")) != state_key(("a", "b|c"))
    assert state_key(("a", "b")) == f"a{KEY_SEPARATOR}b"


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.lists(st.text(max_size=8), max_size=4), max_size=5))
def test_any_values_hash_to_32_hex_digits_deterministically(values: dict[str, list[str]]) -> None:
    first = content_hash({k: tuple(v) for k, v in values.items()})
    assert len(first) == 32 and all(c in "0123456789abcdef" for c in first)
    assert content_hash({k: tuple(reversed(v)) for k, v in values.items()}) == first
