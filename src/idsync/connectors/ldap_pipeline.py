"""Pipelined LDAP writes: many asynchronous operations in flight, in plan order where it matters.

One blocking round trip per entry caps a client at a few thousand writes a
second; :func:`pipelined` sends asynchronous operations (``add_ext``,
``modify_ext``, ``delete_ext``, ``rename``) and keeps up to ``window`` of
them outstanding, matching each result to its change by message id.

A server may run the outstanding operations of one connection in any order,
so a change that touches an entry, one of its ancestors or one of its
descendants that an outstanding operation touches waits for that operation
first: a container is created before its members, children are deleted
before their parent, a moved entry is modified after the move. Unrelated
changes, the bulk of any plan, never wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    conn: Any, changes: Iterable[Change], window: int, timeout: float, codec: ValueCodec = TEXT
) -> Iterator[ApplyOutcome]:
    """Apply *changes* on *conn*, yielding one outcome per change as each completes.

    A move with modifications is a rename, then (once it succeeded) a modify
    of the new DN; when that modify fails the entry stays moved and the
    outcome's error names the new DN.

    python-ldap errors that are not about one entry propagate; the caller
    must then drop the connection (results may still be outstanding), as it
    must when it stops consuming before the end. When *changes* itself
    raises, the operations already sent are collected and reported first.
    """
    pipe = Pipeline(conn, timeout, codec)
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
        keys = keys_of(change)
        while pipe.pending and (len(pipe.pending) >= window or pipe.conflicts(keys)):
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


class Pipeline:
    """Outstanding asynchronous operations of one :meth:`LdapDirectory.apply` call."""

    def __init__(self, conn: Any, timeout: float, codec: ValueCodec = TEXT) -> None:
        self.conn = conn
        self.timeout = timeout
        self.codec = codec
        # msgid -> (change, DN keys it holds, True while a move's rename is in flight)
        self.pending: dict[int, tuple[Change, tuple[DnKey, ...], bool]] = {}
        # DN key -> outstanding operations on that entry / below that entry
        self.busy: dict[DnKey, int] = {}
        self.busy_below: dict[DnKey, int] = {}

    def conflicts(self, keys: tuple[DnKey, ...]) -> bool:
        """True when a change on *keys* must wait: it touches an entry, ancestor or descendant in flight."""
        busy, below = self.busy, self.busy_below
        for key in keys:
            if key in busy or key in below:
                return True
            for i in range(1, len(key)):
                if key[i:] in busy:
                    return True
        return False

    def _hold(self, msgid: int, change: Change, keys: tuple[DnKey, ...], renaming: bool) -> None:
        self.pending[msgid] = (change, keys, renaming)
        busy, below = self.busy, self.busy_below
        for key in keys:
            busy[key] = busy.get(key, 0) + 1
            for i in range(1, len(key)):
                up = key[i:]
                below[up] = below.get(up, 0) + 1

    def _release(self, msgid: int) -> tuple[Change, tuple[DnKey, ...], bool]:
        held = self.pending.pop(msgid)
        for key in held[1]:
            _decrement(self.busy, key)
            for i in range(1, len(key)):
                _decrement(self.busy_below, key[i:])
        return held

    def send(self, change: Change, keys: tuple[DnKey, ...]) -> ApplyOutcome | None:
        """Send the operation of *change*; an outcome when it finished without a round trip."""
        conn = self.conn
        op = change.op
        try:
            if op is ChangeOp.CREATE:
                pairs = change.attrs.pairs() if change.attrs else ()
                if self.codec is TEXT:  # the common case, without a call per value
                    modlist = [(n, [v.encode("utf-8", "surrogateescape") for v in vals]) for n, vals in pairs if vals]
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
                msgid = conn.rename(change.dn, rdn, superior, 1)
                self._hold(msgid, change, keys, True)
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
        self._hold(msgid, change, keys, False)
        return None

    def collect(self) -> ApplyOutcome | None:
        """Wait for the next result; its outcome, or None when a move goes on to its mods."""
        try:
            _t, _d, msgid, _c = self.conn.result3(ldap.RES_ANY, 1, self.timeout)
        except ldap.LDAPError as exc:
            msgid = details(exc).get("msgid")
            if msgid not in self.pending or not is_record_level(exc):
                raise
            change, _keys, renaming = self._release(msgid)
            if renaming:
                verb, dn = "move", f"{change.dn} to {change.new_dn}"
            elif change.op is ChangeOp.MOVE:  # the mods that follow a move
                verb, dn = "modify", change.new_dn or change.dn
            else:
                verb, dn = VERBS[change.op], change.dn
            return ApplyOutcome(change, record_error(exc, verb, dn, change.key))
        if msgid not in self.pending:
            raise ConnectorError(f"the LDAP server answered an operation that was not sent (message {msgid})")
        change, keys, renaming = self._release(msgid)
        if renaming and change.mods and change.new_dn:
            try:
                next_id = self.conn.modify_ext(change.new_dn, _modlist(change, self.codec))
            except RecordError as exc:
                return ApplyOutcome(change, _refused(exc, "modify", change.new_dn, change.key))
            except ldap.LDAPError as exc:
                if isinstance(exc, TRANSIENT):
                    raise
                return ApplyOutcome(change, record_error(exc, "modify", change.new_dn, change.key))
            self._hold(next_id, change, keys, False)
            return None
        return ApplyOutcome(change)


def _modlist(change: Change, codec: ValueCodec) -> list[tuple[int, str, list[bytes] | None]]:
    encode = codec.encode
    return [
        (_MOD_OPS[m.op], m.attribute, [encode(m.attribute, v) for v in m.values] if m.values else None)
        for m in change.mods
    ]


def _refused(exc: RecordError, verb: str, dn: str, key: str) -> RecordError:
    """A value the codec would not send: the change fails with the codec's reason."""
    return RecordError(f"{verb} {dn} failed: {exc.message}", key=key, attribute=exc.attribute)


def keys_of(change: Change) -> tuple[DnKey, ...]:
    if change.op is ChangeOp.MOVE and change.new_dn:
        return (dn_key(change.dn), dn_key(change.new_dn))
    return (dn_key(change.dn),)


def _decrement(counts: dict[DnKey, int], key: DnKey) -> None:
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
