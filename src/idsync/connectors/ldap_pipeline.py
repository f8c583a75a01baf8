"""Pipelined LDAP writes: many asynchronous operations in flight, in plan order where it matters.

One blocking round trip per entry caps a client at a few thousand writes a
second; :func:`pipelined` sends asynchronous operations (``add_ext``,
``modify_ext``, ``delete_ext``, ``rename``) and keeps up to ``window`` of
them outstanding per connection, matching each result to its change by
message id.

It may spread the operations over several connections: a server works on
the operations of one connection with less concurrency than on those of a
few, so two connections get more writes through the same server (a bare
loop of adds into slapd on two cores: 20,300–23,700 a second over two
connections, 17,400–18,200 over one). Each change goes to the connection
with the fewest operations outstanding; waiting for a result blocks on the
busiest one, so there is no polling. Ties between equally busy connections
go round them, so that every connection keeps its share of the work.

A server may run the outstanding operations in any order, so a change that
touches an entry, one of its ancestors or one of its descendants that an
outstanding operation (on any connection) touches waits for that operation
first: a container is created before its members, children are deleted
before their parent, a moved entry is modified after the move. Unrelated
changes, the bulk of any plan, never wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import ldap

from idsync.connectors.base import ApplyOutcome
from idsync.connectors.ldap_errors import TRANSIENT, details, is_record_level, record_error
from idsync.domain.changes import Change, ChangeOp, ModOp
from idsync.errors import ConnectorError, RecordError

_MOD_OPS = {ModOp.ADD: ldap.MOD_ADD, ModOp.DELETE: ldap.MOD_DELETE, ModOp.REPLACE: ldap.MOD_REPLACE}
VERBS = {
    ChangeOp.CREATE: "add",
    ChangeOp.UPDATE: "modify",
    ChangeOp.DISABLE: "modify",
    ChangeOp.DELETE: "delete",
    ChangeOp.MOVE: "move",
}


class ValueCodec(Protocol):
    """Turns attribute values into the bytes a server expects and back.

    ``encode`` may raise RecordError for a value that must not be sent
    (the change then fails alone, nothing is sent for it).
    """

    def encode(self, attribute: str, value: str) -> bytes: ...

    def decode(self, attribute: str, value: bytes) -> str: ...


class TextCodec:
    """UTF-8 both ways; ``surrogateescape`` lets binary values read by a search
    be written back unchanged."""

    def encode(self, attribute: str, value: str) -> bytes:
        return value.encode("utf-8", "surrogateescape")

    def decode(self, attribute: str, value: bytes) -> str:
        return value.decode("utf-8", "surrogateescape")


TEXT = TextCodec()


def pipelined(
    conns: Sequence[Any],
    changes: Iterable[Change],
    window: int,
    timeout: float,
    codec: ValueCodec = TEXT,
) -> Iterator[ApplyOutcome]:
    """Apply *changes* on *conns* (bound connections to one server), yielding
    one outcome per change as each completes.

    A move with modifications is a rename, then (once it succeeded) a modify
    of the new DN; when that modify fails the entry stays moved and the
    outcome's error names the new DN.

    python-ldap errors that are not about one entry propagate; the caller
    must then drop the connection (results may still be outstanding), as it
    must when it stops consuming before the end. When *changes* itself
    raises, the operations already sent are collected and reported first.
    """
    pipe = Pipeline(conns, timeout, codec)
    limit = window * len(pipe.conns)
    producer = iter(changes)
    failure: Exception | None = None
    while True:
        try:
            change = next(producer)
        except StopIteration:
            break
        except Exception as exc:
            # The producer failed (e.g. its source was lost): what was sent is
            # done on the server, so collect and report it, then re-raise.
            failure = exc
            break
        keys = pipe.lineages.of_change(change)
        while pipe.pending and (len(pipe.pending) >= limit or pipe.conflicts(keys)):
            outcome = pipe.collect()
            if outcome is not None:
                yield outcome
        outcome = pipe.send(change, keys)
        if outcome is not None:
            yield outcome
    while pipe.pending:
        outcome = pipe.collect()
        if outcome is not None:
            yield outcome
    if failure is not None:
        raise failure


def split_rdn(dn: str) -> tuple[str, str]:
    """Split *dn* into its first RDN and its parent DN, honouring backslash escapes."""
    if "\\" not in dn:  # nothing escaped (most DNs): the first comma ends the RDN
        rdn, _, parent = dn.partition(",")
        return rdn.strip(), parent.strip()
    i, n = 0, len(dn)
    while i < n:
        ch = dn[i]
        if ch == "\\":
            i += 2
            continue
        if ch == ",":
            return dn[:i].strip(), dn[i + 1 :].strip()
        i += 1
    return dn.strip(), ""


DnKey = tuple[str, ...]


def dn_key(dn: str) -> DnKey:
    """A comparable form of *dn* (RDNs lower-cased, outer spaces removed), leaf first.

    Only used to order pipelined operations, so it needs to be consistent,
    not a full RFC 4514 normalisation.
    """
    if "\\" not in dn:
        return tuple(part.strip().lower() for part in dn.split(","))
    parts = []
    rest = dn
    while rest:
        rdn, rest = split_rdn(rest)
        parts.append(rdn.lower())
    return tuple(parts)


Lineage = tuple[str, tuple[str, ...]]
"""An entry as the pipeline tracks it: its comparable DN, and those of its
ancestors (parent first), each the RDNs of :func:`dn_key` joined by commas."""


class Lineages:
    """:class:`Lineage` of DNs, with each parent's worked out once: a plan's
    entries mostly share a few containers, so the per-change cost is one split
    of the leaf RDN and one lookup."""

    MAX_PARENTS = 10_000
    """Parents remembered; beyond that (a plan spread over very many containers) the memory starts again."""

    def __init__(self) -> None:
        self._parents: dict[str, tuple[str, ...]] = {}

    def of(self, dn: str) -> Lineage:
        rdn, parent = split_rdn(dn)
        ancestors = self._parents.get(parent)
        if ancestors is None:
            key = dn_key(parent) if parent else ()
            ancestors = tuple(",".join(key[i:]) for i in range(len(key)))
            if len(self._parents) >= self.MAX_PARENTS:
                self._parents.clear()
            self._parents[parent] = ancestors
        leaf = f"{rdn.lower()},{ancestors[0]}" if ancestors else rdn.lower()
        return leaf, ancestors

    def of_change(self, change: Change) -> tuple[Lineage, ...]:
        """The entries *change* touches: its DN, and the new one of a move."""
        if change.op is ChangeOp.MOVE and change.new_dn:
            return (self.of(change.dn), self.of(change.new_dn))
        return (self.of(change.dn),)


class Pipeline:
    """Outstanding asynchronous operations of one :meth:`LdapDirectory.apply` call."""

    def __init__(self, conns: Sequence[Any], timeout: float, codec: ValueCodec = TEXT) -> None:
        self.conns = list(conns)
        if not self.conns:
            raise ValueError("a pipeline needs at least one connection")
        self.timeout = timeout
        self.codec = codec
        self.lineages = Lineages()
        # (connection number, msgid) -> (change, entries it holds, True while a move's rename is in flight)
        self.pending: dict[tuple[int, int], tuple[Change, tuple[Lineage, ...], bool]] = {}
        self.outstanding = [0] * len(self.conns)
        # Ties go round the connections: breaking them always the same way
        # would send to and read from one connection and leave the others idle.
        self.last_sent = self.last_read = len(self.conns) - 1
        # comparable DN -> outstanding operations on that entry / below that entry
        self.busy: dict[str, int] = {}
        self.busy_below: dict[str, int] = {}

    def conflicts(self, keys: tuple[Lineage, ...]) -> bool:
        """True when a change on *keys* must wait: it touches an entry, ancestor or descendant in flight."""
        busy, below = self.busy, self.busy_below
        for leaf, ancestors in keys:
            if leaf in busy or leaf in below or not busy.keys().isdisjoint(ancestors):
                return True
        return False

    def _slot(self) -> int:
        """The connection with the fewest operations outstanding; among equals,
        the next after the one sent to last."""
        counts = self.outstanding
        if len(counts) == 1:
            return 0
        if len(counts) == 2:  # the default of several: decided without the general search
            first, second = counts
            slot = (0 if first < second else 1) if first != second else 1 - self.last_sent
        else:
            slot = _next_of(counts, self.last_sent, min)
        self.last_sent = slot
        return slot

    def _hold(self, slot: int, msgid: int, change: Change, keys: tuple[Lineage, ...], renaming: bool) -> None:
        self.pending[slot, msgid] = (change, keys, renaming)
        self.outstanding[slot] += 1
        busy, below = self.busy, self.busy_below
        for leaf, ancestors in keys:
            busy[leaf] = busy.get(leaf, 0) + 1
            for up in ancestors:
                below[up] = below.get(up, 0) + 1

    def _release(self, slot: int, msgid: int) -> tuple[Change, tuple[Lineage, ...], bool]:
        held = self.pending.pop((slot, msgid))
        self.outstanding[slot] -= 1
        busy, below = self.busy, self.busy_below
        for leaf, ancestors in held[1]:
            _decrement(busy, leaf)
            for up in ancestors:
                _decrement(below, up)
        return held

    def send(self, change: Change, keys: tuple[Lineage, ...]) -> ApplyOutcome | None:
        """Send the operation of *change*; an outcome when it finished without a round trip."""
        slot = self._slot()
        conn = self.conns[slot]
        op = change.op
        try:
            if op is ChangeOp.CREATE:
                pairs = change.attrs.pairs() if change.attrs else ()
                if self.codec is TEXT:  # the common case, without a call per value
                    modlist = _text_modlist(pairs)
                else:
                    encode = self.codec.encode
                    modlist = [(n, [encode(n, v) for v in vals]) for n, vals in pairs if vals]
                msgid = conn.add_ext(change.dn, modlist)
            elif op is ChangeOp.DELETE:
                msgid = conn.delete_ext(change.dn)
            elif op is ChangeOp.MOVE:
                if not change.new_dn:
                    return ApplyOutcome(change, RecordError(f"move {change.dn} failed: no new DN given", key=change.key))
                rdn, parent = split_rdn(change.new_dn)
                old_parent = split_rdn(change.dn)[1]
                superior = None if dn_key(parent) == dn_key(old_parent) else parent
                msgid = conn.rename(change.dn, rdn, superior, 1 if change.delete_old_rdn else 0)
                self._hold(slot, msgid, change, keys, True)
                return None
            else:
                if not change.mods:
                    return ApplyOutcome(change)
                msgid = conn.modify_ext(change.dn, _modlist(change, self.codec))
        except RecordError as exc:
            return ApplyOutcome(change, _refused(exc, VERBS[op], change.dn, change.key))
        except ldap.LDAPError as exc:
            if isinstance(exc, TRANSIENT):
                raise
            return ApplyOutcome(change, record_error(exc, VERBS[op], change.dn, change.key))
        self._hold(slot, msgid, change, keys, False)
        return None

    def collect(self) -> ApplyOutcome | None:
        """Wait for the next result of the busiest connection; its outcome, or
        None when a move goes on to its mods."""
        slot = 0
        counts = self.outstanding
        if len(counts) == 2:
            first, second = counts
            slot = self.last_read = (0 if first > second else 1) if first != second else 1 - self.last_read
        elif len(counts) > 1:
            slot = self.last_read = _next_of(counts, self.last_read, max)
        conn = self.conns[slot]
        try:
            _t, _d, msgid, _c = conn.result3(ldap.RES_ANY, 1, self.timeout)
        except ldap.LDAPError as exc:
            failed = details(exc).get("msgid")
            if not isinstance(failed, int) or (slot, failed) not in self.pending or not is_record_level(exc):
                raise
            msgid = failed
            change, _keys, renaming = self._release(slot, msgid)
            if renaming:
                verb, dn = "move", f"{change.dn} to {change.new_dn}"
            elif change.op is ChangeOp.MOVE:  # the mods that follow a move
                verb, dn = "modify", change.new_dn or change.dn
            else:
                verb, dn = VERBS[change.op], change.dn
            return ApplyOutcome(change, record_error(exc, verb, dn, change.key))
        if (slot, msgid) not in self.pending:
            raise ConnectorError(f"the LDAP server answered an operation that was not sent (message {msgid})")
        change, keys, renaming = self._release(slot, msgid)
        if renaming and change.mods and change.new_dn:
            try:
                next_id = conn.modify_ext(change.new_dn, _modlist(change, self.codec))
            except RecordError as exc:
                return ApplyOutcome(change, _refused(exc, "modify", change.new_dn, change.key))
            except ldap.LDAPError as exc:
                if isinstance(exc, TRANSIENT):
                    raise
                return ApplyOutcome(change, record_error(exc, "modify", change.new_dn, change.key))
            self._hold(slot, next_id, change, keys, False)
            return None
        return ApplyOutcome(change)


def _text_modlist(pairs: Iterable[tuple[str, tuple[str, ...]]]) -> list[tuple[str, list[bytes]]]:
    """The add list of a new entry, UTF-8: the hot path of a full load, so the
    common case (one value per attribute, no escaped binary) goes first."""
    try:
        return [(n, [vals[0].encode()] if len(vals) == 1 else [v.encode() for v in vals]) for n, vals in pairs if vals]
    except UnicodeEncodeError:  # a value read as binary (lone surrogates) goes back to its bytes
        return [(n, [v.encode("utf-8", "surrogateescape") for v in vals]) for n, vals in pairs if vals]


def _modlist(change: Change, codec: ValueCodec) -> list[tuple[int, str, list[bytes] | None]]:
    encode = codec.encode
    return [
        (_MOD_OPS[m.op], m.attribute, [encode(m.attribute, v) for v in m.values] if m.values else None)
        for m in change.mods
    ]


def _refused(exc: RecordError, verb: str, dn: str, key: str) -> RecordError:
    """A value the codec would not send: the change fails with the codec's reason."""
    return RecordError(f"{verb} {dn} failed: {exc.message}", key=key, attribute=exc.attribute)


def _next_of(counts: list[int], last: int, best: Callable[[list[int]], int]) -> int:
    """The index of the *best* count, the first such after *last* going round."""
    target = best(counts)
    n = len(counts)
    for step in range(1, n + 1):
        i = (last + step) % n
        if counts[i] == target:
            return i
    raise AssertionError("unreachable: the best count is one of the counts")


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
