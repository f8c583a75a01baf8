"""The directory as a collection's plans would leave it: the plans overlaid on what was read.

A collection's preview shows the membership changes its linked update jobs
would make *after* its jobs ran [S4.4]. Nothing is written to compute them:
the plans' changes are replayed, in order, over the entries they touch
(read from the directory once each), and a smart group's query is answered
as the directory's answer for the entries no plan touches, plus the touched
entries, as the plans leave them, that lie within its base and scope and
match its filter (evaluated with the filter code the embedded directory
uses). A created entry is added, a deleted one removed, updated attributes
applied, and a renamed entry followed to its new DN (the old RDN's values
replaced by the new one's, as the plans always ask).

A rename moves the entry's whole subtree: the entries below it, touched by
a plan or not, answer under their new DNs. The directory still holds them
under the old ones, so a query reaching where a subtree was moved also
searches where it is now (:meth:`Overlay.origins`), the directory's answers
are followed to where the plans leave them (:meth:`Overlay.moved`), and a
change of an entry under its new DN reads it under its old one.

It is pure: reading an entry the plans touch is the caller's *read*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.dn import fold_value, format_dn, is_within, normalize_dn, parse_dn, rdn_of
from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import ENTRY_DN, RulesLookup, compile_filter, parse_filter
from idsync.smartgroups.membership import Members

Read = Callable[[str], Attrs | None]
"""The entry *dn* as the directory holds it now (all its user attributes), or None."""

_Values = dict[str, tuple[str, list[str]]]
"""An entry being changed: lower-cased attribute name -> (name as spelled, values)."""

@dataclass
class Overlay:
    """The entries the plans touch, as the plans leave them (None: gone), by normalised DN."""

    entries: dict[str, tuple[str, Attrs | None]] = field(default_factory=dict)
    moves: list[tuple[str, str]] = field(default_factory=list)
    """The subtrees renamed, in the plans' order: (old DN, new DN)."""

    def __len__(self) -> int:
        return len(self.entries)

    def touches(self, key: str) -> bool:
        """Whether a plan touches the entry of normalised DN *key*."""
        return key in self.entries

    def attrs(self, dn: str) -> Attrs | None:
        """The entry *dn* as the plans leave it (None: deleted, or moved away); KeyError when untouched."""
        return self.entries[normalize_dn(dn)][1]

    def apply_all(self, changes: Iterable[Change], read: Read) -> None:
        for change in changes:
            self.apply(change, read)

    def apply(self, change: Change, read: Read) -> None:
        """Replay one change of a plan over the entries."""
        key = normalize_dn(change.dn)
        if change.op is ChangeOp.CREATE:
            self.entries[key] = (change.dn, Attrs(change.attrs or {}))
            return
        if change.op is ChangeOp.DELETE:
            self.entries[key] = (change.dn, None)
            return
        values = self._values(key, change.dn, read)
        if values is None:
            return  # a change of an entry that does not exist: applying it fails, it changes nothing
        dn = change.dn
        if change.op is ChangeOp.MOVE and change.new_dn is not None:
            self.entries[key] = (change.dn, None)
            _rename(values, change.dn, change.new_dn, change.delete_old_rdn)
            self._move_below(change.dn, change.new_dn)
            dn, key = change.new_dn, normalize_dn(change.new_dn)
        for mod in change.mods:
            _modify(values, mod)
        self.entries[key] = (dn, Attrs.adopt({k: (n, tuple(v)) for k, (n, v) in values.items() if v}))

    def _move_below(self, old: str, new: str) -> None:
        """Entry *old* is renamed *new*: the touched entries below it follow, and
        the untouched ones will (:meth:`moved`)."""
        for key, (dn, attrs) in list(self.entries.items()):
            if key != normalize_dn(old) and is_within(dn, old, Scope.SUB):
                moved = _rebase(dn, old, new)
                self.entries[key] = (dn, None)
                self.entries[normalize_dn(moved)] = (moved, attrs)
        self.moves.append((old, new))

    def moved(self, dn: str) -> str:
        """Where the plans leave the entry the directory holds as *dn* (its DN when no rename moves it)."""
        for old, new in self.moves:
            if is_within(dn, old, Scope.SUB):
                dn = _rebase(dn, old, new)
        return dn

    def origin(self, dn: str) -> str | None:
        """The DN the directory holds now for the entry the plans leave as *dn*:
        itself, or its DN before the renames that moved it there; None when a
        rename moved the entry there was away (the directory's is elsewhere)."""
        for old, new in reversed(self.moves):
            if is_within(dn, new, Scope.SUB):
                dn = _rebase(dn, new, old)
            elif is_within(dn, old, Scope.SUB):
                return None
        return dn

    def origins(self, base: str, scope: Scope) -> list[tuple[str, Scope]]:
        """What else to search, besides *base* itself, for a query of *base* and
        *scope* to reach the entries renames move within it: where they are now."""
        out: list[tuple[str, Scope]] = []
        for _old, new in self.moves:
            if is_within(base, new, Scope.SUB):
                found = self.origin(base)
                if found is not None:
                    out.append((found, scope))
            elif scope is Scope.SUB and is_within(new, base, Scope.SUB):
                found = self.origin(new)
                if found is not None:
                    out.append((found, Scope.SUB))
        seen: set[tuple[str, Scope]] = set()
        unique = []
        for where, how in out:
            if (normalize_dn(where), how) not in seen and not (normalize_dn(where) == normalize_dn(base) and how is scope):
                seen.add((normalize_dn(where), how))
                unique.append((where, how))
        return unique

    def moves_into(self, dn: str) -> bool:
        """Whether *dn* lies in a subtree a rename moves there (so the directory does not hold it yet)."""
        return any(is_within(dn, new, Scope.SUB) for _old, new in self.moves)

    def _values(self, key: str, dn: str, read: Read) -> _Values | None:
        if key in self.entries:
            attrs = self.entries[key][1]
        else:
            where = self.origin(dn)
            attrs = read(where) if where is not None else None
        if attrs is None:
            return None
        return {name.lower(): (name, list(vals)) for name, vals in attrs.pairs()}

    def matching(self, base: str, scope: Scope, filter_text: str, rules: RulesLookup | None = None) -> Members:
        """The touched entries, as the plans leave them, within *base* and *scope* that match the filter."""
        test = compile_filter(parse_filter(filter_text), rules)
        out: Members = {}
        for key, (dn, attrs) in self.entries.items():
            if attrs is not None and is_within(dn, base, scope) and test(_values_of(dn, attrs)) is True:
                out[key] = dn
        return out

    def holding(self, base: str, attribute: str) -> list[tuple[str, tuple[str, ...]]]:
        """The touched entries under *base* that have *attribute*: (DN, folded values)."""
        out = []
        for dn, attrs in self.entries.values():
            if attrs is None or not is_within(dn, base, Scope.SUB):
                continue
            values = attrs.get_values(attribute)
            if values:
                out.append((dn, tuple(fold_value(v) for v in values)))
        return out

    def over(self, found: Members, base: str, scope: Scope, filter_text: str, rules: RulesLookup | None = None) -> Members:
        """The directory's answer *found* for a query (with the searches of
        :meth:`origins`), with the plans overlaid: an untouched entry a rename
        moves answers under its new DN, if the query still reaches it there."""
        out: Members = {}
        for key, dn in found.items():
            if key in self.entries:
                continue
            now = self.moved(dn) if self.moves else dn
            if now is dn:
                out[key] = dn
            elif normalize_dn(now) not in self.entries and is_within(now, base, scope):
                out[normalize_dn(now)] = now
        out.update(self.matching(base, scope, filter_text, rules))
        return out

    def untouched(self, found: list[tuple[str, tuple[str, ...]]], base: str) -> list[tuple[str, tuple[str, ...]]]:
        """The directory's holders of a join's attribute *found* under *base*
        (with the searches of :meth:`origins`) that no plan touches, under the
        DNs the plans leave them at; :meth:`holding` adds the touched ones."""
        kept = []
        for dn, values in found:
            if normalize_dn(dn) in self.entries:
                continue
            now = self.moved(dn) if self.moves else dn
            if now is dn or (normalize_dn(now) not in self.entries and is_within(now, base, Scope.SUB)):
                kept.append((now, values))
        return kept


def _rebase(dn: str, old: str, new: str) -> str:
    """*dn*, an entry at or below *old*, with *old* replaced by *new*."""
    rdns = parse_dn(dn)
    depth = len(rdns) - len(parse_dn(old))
    return f"{format_dn(rdns[:depth])},{new}" if depth > 0 else new


def _values_of(dn: str, attrs: Attrs) -> Callable[[str], list[str]]:
    lowered = {name.lower(): list(values) for name, values in attrs.pairs()}
    lowered.setdefault(ENTRY_DN, [dn])
    return lambda name: lowered.get(name.lower(), [])


def _modify(values: _Values, mod: Modification) -> None:
    low = mod.attribute.lower()
    name, now = values.get(low, (mod.attribute, []))
    if mod.op is ModOp.REPLACE:
        now = list(mod.values)
    elif mod.op is ModOp.ADD:
        seen = {fold_value(v) for v in now}
        now = now + [v for v in mod.values if fold_value(v) not in seen]
    elif not mod.values:
        now = []
    else:
        gone = {fold_value(v) for v in mod.values}
        now = [v for v in now if fold_value(v) not in gone]
    values[low] = (name, now)


def _rename(values: _Values, old_dn: str, new_dn: str, delete_old_rdn: bool) -> None:
    """The RDN values of a move: the old RDN's removed (when asked), the new RDN's added."""
    if delete_old_rdn:
        for attribute, value in rdn_of(old_dn):
            _modify(values, Modification(ModOp.DELETE, attribute, (value,)))
    for attribute, value in rdn_of(new_dn):
        _modify(values, Modification(ModOp.ADD, attribute, (value,)))
