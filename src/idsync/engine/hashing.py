"""Content hashes of mapped records, for changed-only runs.

A changed-only run by hash (``changed_by: {hash: true}``) keeps, per job and
key, a hash of the values the mappings produced the last time the record was
written (or found equal). A record whose hash has not changed needs no
comparison with the directory.

The hash must mean the same thing on every run, on every machine and under
every Python version, since it is stored: it is computed over a canonical
JSON text (attribute names lower-cased and sorted, each attribute's values
sorted, UTF-8) with BLAKE2b, never with :func:`hash` (randomised per process).
The job's *fingerprint* is part of it, so a change to the mappings,
destination or actions makes every stored hash stale and the next run
compares every record again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from idsync.domain.definitions import JobDefinition

DIGEST_SIZE = 16
"""Bytes of the digest: 128 bits, 32 hex characters per key."""

KEY_SEPARATOR = "\x1f"
"""Joins the parts of a compound match key into one stored key (a control
character no source value is expected to hold)."""


def _canonical(data: object) -> bytes:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


def job_fingerprint(job: JobDefinition) -> str:
    """A digest of what decides the values a job writes: its mappings,
    destination and actions. Changing any of them changes every content hash."""
    data = job.model_dump(mode="json", by_alias=True, include={"mappings", "destination", "actions"})
    return hashlib.blake2b(_canonical(data), digest_size=DIGEST_SIZE).hexdigest()


def content_hash(values: Mapping[str, Sequence[str]], fingerprint: str = "") -> str:
    """The hash of one record's mapped values (attribute → values).

    Attribute names compare without regard to case and values without regard
    to order, as the planner compares them; empty attributes count as absent.
    """
    canonical = sorted((name.lower(), sorted(vals)) for name, vals in values.items() if vals)
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE, person=b"idsync-record")
    digest.update(fingerprint.encode("ascii", "replace"))
    digest.update(b"\x00")
    digest.update(_canonical(canonical))
    return digest.hexdigest()


def state_key(key: Sequence[str]) -> str:
    """The stored form of a normalised match key."""
    return KEY_SEPARATOR.join(key)
