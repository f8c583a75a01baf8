"""Changed-only runs (``update_mode: changed``): which records need no work.

Two ways to tell, chosen by ``changed_by``:

- **timestamp**: a source field says when each record last changed. A record
  whose timestamp is not after the *watermark* (when the last successful run
  read the source) is skipped before it is even mapped. It still claims its
  object, so it is never treated as missing. An empty timestamp means
  "unknown": the record is processed. One that cannot be parsed fails the
  record.
- **hash**: idsync keeps a content hash of each key's mapped values
  (:mod:`idsync.engine.hashing`). A record whose hash equals the stored one
  is skipped after mapping, without looking at the directory. The stored
  hash is replaced only once the record's change was written, or when the
  comparison found nothing to change; never for a record that failed.

Both count skipped records as *unchanged*. The planner asks this module; the
service layer loads the stored hashes once per run and saves the new ones
(the *sink*) in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import ChangedBy
from idsync.domain.entry import Record
from idsync.engine.hashing import content_hash, state_key
from idsync.engine.mapping import MappedRecord
from idsync.errors import RecordError

HashSink = Callable[[Sequence[tuple[str, str]]], None]
"""Receives (stored key, hash) pairs to save."""

_RECORD_OPS = frozenset({ChangeOp.CREATE, ChangeOp.UPDATE, ChangeOp.MOVE})


def parse_timestamp(text: str, fmt: str | None, zone: ZoneInfo) -> datetime:
    """*text* as an aware datetime: ISO 8601 (a date alone is its midnight) or
    *fmt* (strptime); without an offset it is read in *zone*. ValueError otherwise."""
    text = text.strip()
    value = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


class TimestampRule:
    """Skips records whose timestamp is not after *since* (None: skip nothing)."""

    def __init__(self, spec: ChangedBy, since: datetime | None) -> None:
        assert spec.timestamp_field is not None
        self.field = spec.timestamp_field
        self.format = spec.timestamp_format
        self.zone = ZoneInfo(spec.timestamp_zone)
        self.since = since

    def unchanged(self, record: Record) -> bool:
        """True when *record* did not change since the watermark; RecordError
        when its timestamp field is missing or cannot be read."""
        if self.field not in record.fields:
            raise RecordError(
                f"source has no field {self.field!r} (changed_by.timestamp_field; fields: {', '.join(record.fields)})",
                attribute=self.field,
                line=record.line,
            )
        raw = record.fields[self.field]
        if raw is None or not raw.strip():
            return False
        try:
            stamp = parse_timestamp(raw, self.format, self.zone)
        except ValueError as exc:
            expected = f"format {self.format!r}" if self.format else "ISO 8601, e.g. 2024-05-01T12:30:00Z"
            raise RecordError(
                f"timestamp {raw!r} in field {self.field!r} cannot be read ({expected})",
                attribute=self.field,
                line=record.line,
            ) from exc
        return self.since is not None and stamp <= self.since


@dataclass(frozen=True, slots=True)
class Digest:
    """A record's stored key and the hash of its mapped values."""

    key: str
    hash: str


class HashState:
    """The stored content hashes of one job (loaded once per run), and the
    new ones waiting to be saved.

    It is also an apply step of the runner: a change that was written
    confirms the hash of its record, a failed one leaves the old hash.
    """

    def __init__(
        self,
        known: Mapping[str, str],
        fingerprint: str,
        sink: HashSink | None = None,
        batch_size: int = 1000,
    ) -> None:
        self._known = known
        self._fingerprint = fingerprint
        self._sink = sink
        self._batch_size = batch_size
        self._pending: dict[str, Digest] = {}
        self._ready: list[tuple[str, str]] = []
        self.saved = 0

    def digest(self, rec: MappedRecord) -> Digest:
        return Digest(state_key(rec.key), content_hash(rec.values, self._fingerprint))

    def unchanged(self, digest: Digest) -> bool:
        return self._known.get(digest.key) == digest.hash

    def planned(self, digest: Digest, change: Change | None) -> None:
        """The planner's verdict on a record it compared: nothing to write
        (the hash is saved now) or *change* (saved once it is written)."""
        if change is None:
            self._settle(digest)
        else:
            self._pending[change.key] = digest

    def _settle(self, digest: Digest) -> None:
        if self._known.get(digest.key) == digest.hash:
            return
        self._ready.append((digest.key, digest.hash))
        if len(self._ready) >= self._batch_size:
            self.flush()

    # ------------------------------------------------------------ apply step

    def before(self, change: Change) -> Change:
        return change

    def after(self, outcome: ApplyOutcome) -> ApplyOutcome:
        if outcome.change.op in _RECORD_OPS:
            digest = self._pending.pop(outcome.change.key, None)
            if digest is not None and outcome.error is None:
                self._settle(digest)
        return outcome

    def flush(self) -> None:
        """Hand the confirmed hashes to the sink (dropped when there is none: a preview)."""
        if not self._ready:
            return
        ready, self._ready = self._ready, []
        if self._sink is not None:
            self._sink(ready)
            self.saved += len(ready)


class UpdateFilter:
    """What the planner asks in a changed-only run."""

    def __init__(self, *, timestamps: TimestampRule | None = None, hashes: HashState | None = None) -> None:
        self.timestamps = timestamps
        self.hashes = hashes

    def unchanged_source(self, record: Record) -> bool:
        """True when the record's timestamp says it did not change (skip it unmapped)."""
        return self.timestamps is not None and self.timestamps.unchanged(record)

    def digest(self, rec: MappedRecord) -> Digest | None:
        return self.hashes.digest(rec) if self.hashes is not None else None

    def unchanged_content(self, digest: Digest | None) -> bool:
        """True when the mapped values hash as they did when last written."""
        return digest is not None and self.hashes is not None and self.hashes.unchanged(digest)

    def planned(self, digest: Digest | None, change: Change | None) -> None:
        if digest is not None and self.hashes is not None:
            self.hashes.planned(digest, change)
