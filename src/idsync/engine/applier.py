"""Applying a plan's changes to a directory: preconditions, and counting what happened.

Changes are handed to the directory as a stream; the directory pipelines
them (several operations outstanding) and reports one outcome per change.

Every change carries what the planner saw (the ``before`` values of the
attributes it modifies, the anchor of the object). A stored plan (a preview,
a held run, an approved request) is applied with preconditions: the
destination is read once before writing, and each change is sorted by
:meth:`Preconditions.check` against the object as it is now:

- **to do**: sent to the directory;
- **already applied**: what it would write is there already (an earlier
  apply of the same plan wrote it before failing, or someone made the same
  change): skipped, counted as unchanged, never written twice;
- **conflict**: the object changed in another way since the plan was
  computed: reported, counted as a conflict, and left untouched.

=====================  ==========================================  ==============================================
change                 already applied when                        conflict when
=====================  ==========================================  ==============================================
create                 an object has the DN with the planned       an object has the DN with other values
                       values
update, disable        every attribute holds its new values        an attribute holds neither the values the plan
                                                                   saw nor the new ones; the object is gone
membership add/remove  the value is present / absent (each value   never: other members may change meanwhile
                       on its own)
delete                 the object is gone                          the object at the DN is another one (another
                                                                   anchor) or no longer holds its key
move                   the object is at the new DN, not the old    the old DN holds another object; neither DN
                                                                   holds it
=====================  ==========================================  ==============================================

Where the server can enforce a precondition, it does (:func:`guard`), so a
change made between the check and the write is refused by the server rather
than overwritten. A change the server refused is looked at again
(:meth:`Preconditions.recheck`): already applied, a conflict, or the
server's error as it stands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.dn import normalize_dn, rdn_of
from idsync.domain.entry import Attrs, Values
from idsync.domain.results import Counts, ErrorItem
from idsync.engine.mapping import normalize_key
from idsync.errors import ConfigError, ConflictError

_COUNTERS = {
    ChangeOp.CREATE: "created",
    ChangeOp.UPDATE: "updated",
    ChangeOp.DELETE: "deleted",
    ChangeOp.DISABLE: "disabled",
    ChangeOp.MOVE: "moved",
}

Lookup = Callable[[str], Attrs | None]
"""The object at a DN as it is now (its user attributes and anchor), or None when there is none."""

ChecksValues = Callable[[str], bool]
"""True when the directory can delete the values of an attribute by value
(the attribute has an equality matching rule, and the server allows it)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one change: send ``send`` (possibly reduced to what is
    left to do), report ``conflict``, or neither: it is applied already."""

    send: Change | None = None
    conflict: str | None = None

    @property
    def applied(self) -> bool:
        return self.send is None and self.conflict is None


ALREADY_APPLIED = Verdict()


class Preconditions:
    """Sorts changes against the directory as it is now (see the module docstring).

    *current* maps the normalised DN of each object in the job's scope to its
    attributes, read once before applying; an object not in it is looked up
    with *lookup* when a change needs it (an object that left the scope, the
    new DN of a move), never for a create, whose DN the server checks.
    *key_attribute* is the job's first key attribute (a delete checks that the
    object still holds its key); *anchors* the attributes holding an object's
    immutable id.
    """

    def __init__(
        self,
        current: Mapping[str, Attrs],
        lookup: Lookup,
        *,
        key_attribute: str | None = None,
        anchors: Iterable[str] = ("entryUUID",),
    ) -> None:
        self.current = current
        self.lookup = lookup
        self.key_attribute = key_attribute
        self.anchors = tuple(anchors)

    def check(self, change: Change) -> Verdict:
        """The verdict on *change* against the objects read before applying."""
        if change.op is ChangeOp.CREATE:
            if normalize_dn(change.dn) not in self.current:
                return Verdict(send=change)  # the server refuses an add over an existing object
            return self._verdict(change, self.lookup)
        return self._verdict(change, self._known)

    def recheck(self, change: Change) -> Verdict:
        """The verdict on *change* after the server refused it, from a fresh look."""
        return self._verdict(change, self.lookup)

    def _known(self, dn: str) -> Attrs | None:
        found = self.current.get(normalize_dn(dn))
        return found if found is not None else self.lookup(dn)

    def _verdict(self, change: Change, find: Lookup) -> Verdict:
        if change.op is ChangeOp.CREATE:
            return _create_verdict(change, find(change.dn))
        if change.op is ChangeOp.DELETE:
            return self._delete_verdict(change, find(change.dn))
        if change.op is ChangeOp.MOVE:
            return self._move_verdict(change, find)
        now = find(change.dn)
        if now is None:
            return Verdict(conflict="the object was deleted or renamed since the plan was computed")
        return _mods_verdict(change, now)

    def _delete_verdict(self, change: Change, now: Attrs | None) -> Verdict:
        if now is None:
            return ALREADY_APPLIED
        if self._other_object(change, now):
            return Verdict(conflict="another object has this DN since the plan was computed (different anchor)")
        if self.key_attribute and change.key:
            keys = {normalize_key(v) for v in now.get_values(self.key_attribute)}
            if normalize_key(change.key) not in keys:
                return Verdict(conflict=f"its {self.key_attribute} changed since the plan was computed")
        return Verdict(send=change)

    def _move_verdict(self, change: Change, find: Lookup) -> Verdict:
        old = find(change.dn)
        if old is not None:
            if self._other_object(change, old):
                return Verdict(conflict="another object has this DN since the plan was computed (different anchor)")
            verdict = _mods_verdict(change, old)
            if verdict.conflict is not None:
                return verdict
            # The rename is still to do, even when its modifications are in place.
            return Verdict(send=verdict.send or replace(change, mods=()))
        moved = find(change.new_dn) if change.new_dn else None
        if moved is None or self._other_object(change, moved):
            return Verdict(conflict="the object was deleted or renamed since the plan was computed")
        verdict = _mods_verdict(change, moved)
        if verdict.send is not None and change.new_dn:
            # Moved already, its modifications not written yet: they go to the new DN.
            return Verdict(send=replace(verdict.send, op=ChangeOp.UPDATE, dn=change.new_dn, new_dn=None))
        return verdict

    def _other_object(self, change: Change, now: Attrs) -> bool:
        """True when the object now at the DN is not the one the plan saw (its anchor differs)."""
        if not change.anchor:
            return False
        for name in self.anchors:
            value = now.first(name)
            if value:
                return value.lower() != change.anchor.lower()
        return False


def _create_verdict(change: Change, now: Attrs | None) -> Verdict:
    if now is None:
        return Verdict(send=change)
    for name, planned in (change.attrs or Attrs()).items():
        have = now.get_values(name)
        if name.lower() == "objectclass":
            if not {v.lower() for v in planned} <= {v.lower() for v in have}:
                break
        elif not same_values(have, planned):
            break
    else:
        return ALREADY_APPLIED
    return Verdict(conflict="an object with this DN and other values was created since the plan was computed")


def _mods_verdict(change: Change, now: Attrs) -> Verdict:
    """Which modifications of *change* are still to do on *now*; a conflict
    when an attribute it replaces holds neither the values seen nor the new ones."""
    left: list[Modification] = []
    for mod in change.mods:
        have = now.get_values(mod.attribute)
        if mod.op is ModOp.REPLACE:
            if same_values(have, mod.values):
                continue
            if not same_values(have, mod.before):
                return Verdict(conflict=f"{mod.attribute!r} changed since the plan was computed")
            left.append(mod)
        elif mod.op is ModOp.ADD:
            present = _keys(have)
            missing = tuple(v for v in mod.values if _key(v) not in present)
            if missing:
                left.append(mod if len(missing) == len(mod.values) else replace(mod, values=missing))
        elif not mod.values:  # delete the whole attribute
            if have:
                left.append(mod)
        else:
            present = _keys(have)
            still = tuple(v for v in mod.values if _key(v) in present)
            if still:
                left.append(mod if len(still) == len(mod.values) else replace(mod, values=still))
    if not left:
        return ALREADY_APPLIED
    return Verdict(send=change if len(left) == len(change.mods) and all(
        a is b for a, b in zip(left, change.mods, strict=True)) else replace(change, mods=tuple(left)))


def _key(value: str) -> str:
    """How two values are compared: DNs by their normal form (member values,
    resolved references), anything else exactly."""
    if "=" in value:
        try:
            return normalize_dn(value)
        except ConfigError:
            return value
    return value


def _keys(values: Values) -> set[str]:
    return {_key(v) for v in values}


def same_values(a: Values, b: Values) -> bool:
    """True when *a* and *b* hold the same values, in any order."""
    if len(a) != len(b):
        return False
    return set(a) == set(b) or _keys(a) == _keys(b)


def guard(change: Change, checks_values: ChecksValues | None) -> Change:
    """*change* in the form whose preconditions the server itself enforces.

    A replace of an attribute whose values the plan saw is sent as a value
    delete of those values and a value add of the new ones, in the same
    modify operation (one operation per entry, as before): if the attribute
    changed meanwhile, the server refuses the modify (no such value) and the
    object is left untouched. Membership adds and removes are value adds and
    deletes already; an add refuses an existing DN by itself.

    Where this is not possible, the replace is sent as it is and only the
    check made before sending protects the object:

    - an attribute the plan saw empty becomes a plain value add: a
      single-valued attribute given a value meanwhile makes the server
      refuse it, a multi-valued one does not (the value added meanwhile stays,
      beside the new ones);
    - removing all values deletes the values seen: a value added meanwhile to
      a multi-valued attribute stays;
    - an attribute without an equality matching rule cannot have values
      deleted by value (*checks_values* says which can);
    - the naming attribute of a move is renamed by the move itself;
    - on Active Directory, ``unicodePwd`` (never readable) and
      ``userAccountControl`` (written by the server's own account logic)
      are replaced.
    """
    if checks_values is None or change.op not in (ChangeOp.UPDATE, ChangeOp.DISABLE, ChangeOp.MOVE):
        return change
    renamed: set[str] = set()
    if change.op is ChangeOp.MOVE:
        try:
            renamed = {t.lower() for t, _ in rdn_of(change.dn)}
            if change.new_dn:
                renamed |= {t.lower() for t, _ in rdn_of(change.new_dn)}
        except ConfigError:
            return change
    mods: list[Modification] = []
    for mod in change.mods:
        if mod.op is not ModOp.REPLACE or mod.attribute.lower() in renamed or not checks_values(mod.attribute):
            mods.append(mod)
            continue
        if mod.before:
            mods.append(Modification(ModOp.DELETE, mod.attribute, mod.before, mod.before))
        if mod.values:
            mods.append(Modification(ModOp.ADD, mod.attribute, mod.values, mod.before))
    if len(mods) == len(change.mods) and all(a is b for a, b in zip(mods, change.mods, strict=True)):
        return change
    return replace(change, mods=tuple(mods))


def conflict_outcome(change: Change, why: str) -> ApplyOutcome:
    """The outcome of a change left untouched because of a conflict."""
    return ApplyOutcome(change, ConflictError(f"{change.dn}: {why}; left untouched", key=change.key))


def count_outcome(outcome: ApplyOutcome, counts: Counts) -> ErrorItem | None:
    """Add *outcome* to *counts*; return the error item to report, if any."""
    error = outcome.error
    if error is None:
        name = _COUNTERS[outcome.change.op]
        setattr(counts, name, getattr(counts, name) + 1)
        return None
    if isinstance(error, ConflictError):
        counts.conflicts += 1
    else:
        counts.errors += 1
    return ErrorItem(
        error.message, key=error.key or outcome.change.key, attribute=error.attribute, dn=outcome.change.dn
    )
