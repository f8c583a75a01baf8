"""The suffix entry of the embedded directory: generated, given, or imported.

A new directory file starts with its suffix entry, so that entries can be
added below it at once. Its attributes are, in order of preference:

- **given** by the store's definition (``suffix_attributes``), so the
  embedded directory can mirror a server's root entry exactly. Changing them
  in the definition changes the entry, as long as nobody changed the entry
  in the directory since (the attributes last applied are kept in the
  file's ``meta`` table to tell);
- **imported**: adding the suffix entry (an LDIF import of a server's
  export, say) while it is still the generated one replaces it, as the add
  would succeed on a server whose database is empty;
- **generated** from the suffix's first RDN otherwise (``dc`` gives a
  ``dcObject`` ``organization``, ``o`` an ``organization``…).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from idsync.connectors.local.operations import entry_for_add, suffix_entry
from idsync.connectors.local.schema import Schema
from idsync.connectors.local.storage import Row, Storage, dumps, entry_uuid, loads
from idsync.connectors.local.validate import AttrMap, check_entry
from idsync.domain.dn import parse_dn

log = logging.getLogger(__name__)

GIVEN = "suffix_given"
"""Meta entry: the attributes last taken from the store's ``suffix_attributes`` (JSON)."""

Given = Mapping[str, Sequence[str]]


def suffix_attrs(schema: Schema, dn: str, given: Given | None) -> AttrMap:
    """The suffix entry's attributes: *given*, or generated from *dn*'s first
    RDN; raises LdapFailure when the directory would refuse them."""
    rdn = parse_dn(dn)[0]
    attrs = suffix_entry(schema, rdn) if given is None else entry_for_add(schema, rdn, given)
    check_entry(schema, attrs, rdn)
    return attrs


def is_generated(schema: Schema, row: Row) -> bool:
    """True when the stored suffix entry is still the one a new file gets."""
    return row.attrs == suffix_entry(schema, parse_dn(row.dn)[0])


def create(store: Storage, schema: Schema, dn: str, key: str, given: Given | None, now: str) -> None:
    """Write the suffix entry of a new file (inside the caller's transaction)."""
    attrs = suffix_attrs(schema, dn, given)
    store.insert(Row(key, dn, entry_uuid(), now, now, attrs))
    store.set_meta("suffix", dn)
    if given is not None:
        store.set_meta(GIVEN, dumps(attrs))


def refresh(store: Storage, schema: Schema, key: str, given: Given, now: str) -> bool:
    """Give the suffix entry the *given* attributes, unless someone changed it
    in the directory since it was generated or last given; True when written."""
    row = store.get(key)
    if row is None:
        return False
    attrs = suffix_attrs(schema, row.dn, given)
    if row.attrs == attrs:
        return False
    last = store.get_meta(GIVEN)
    if is_generated(schema, row) or (last is not None and row.attrs == loads(last)):
        store.update(key, attrs, now)
        store.set_meta(GIVEN, dumps(attrs))
        return True
    log.warning(
        "embedded directory %s: the suffix entry %s was changed in the directory; "
        "suffix_attributes of the store are not applied to it",
        store.path, row.dn,
    )
    return False


def replace_generated(store: Storage, schema: Schema, key: str, dn: str, attrs: AttrMap, now: str) -> bool:
    """An add of the suffix entry: replace the stored one when it is still the
    generated one (a new entry: new entryUUID and timestamps); True when done."""
    row = store.get(key)
    if row is None or not is_generated(schema, row):
        return False
    store.delete(key)
    store.insert(Row(key, dn, entry_uuid(), now, now, attrs))
    store.set_meta("suffix", dn)
    return True
