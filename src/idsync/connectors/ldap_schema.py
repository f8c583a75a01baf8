"""Reading an LDAP server's schema into a :class:`DirectorySchema`.

The server publishes its schema in the subschema subentry named by the root
DSE's ``subschemaSubentry`` (RFC 4512). python-ldap's ``ldap.schema`` parses
the ``attributeTypes`` and ``objectClasses`` definitions; we keep only what
validation of a job needs: names with aliases, single-value and
no-user-modification flags, and each class's kind, superiors, must and may.
"""

from __future__ import annotations

import logging
from typing import Any

import ldap
import ldap.schema

from idsync.connectors.base import AttributeType, DirectorySchema, ObjectClass

log = logging.getLogger(__name__)

# python-ldap encodes an object class's kind as 0, 1, 2.
_KINDS = {0: "structural", 1: "abstract", 2: "auxiliary"}


def read_schema(conn: Any) -> DirectorySchema | None:
    """The schema published by the server behind *conn*, or None when it publishes none.

    Errors of the connection itself propagate (the caller translates them);
    a missing or unreadable subschema entry is "no schema".
    """
    sub = read_subschema(conn)
    return to_directory_schema(sub) if sub is not None else None


def read_subschema(conn: Any) -> Any:
    """The server's subschema parsed by python-ldap (``ldap.schema.SubSchema``),
    or None when it publishes none; errors as for :func:`read_schema`."""
    try:
        subentry_dn = conn.search_subschemasubentry_s("")
        if not subentry_dn:
            return None
        entry = conn.read_subschemasubentry_s(subentry_dn, attrs=["attributeTypes", "objectClasses"])
    except (ldap.NO_SUCH_OBJECT, ldap.INSUFFICIENT_ACCESS) as exc:
        log.info("the LDAP server's schema is not readable: %s", exc)
        return None
    if not entry:
        return None
    return ldap.schema.SubSchema(entry, check_uniqueness=0)


def equality_rules(sub: Any) -> dict[str, bool]:
    """Attribute name (every alias, lower-cased) → whether it has an equality
    matching rule, its own or inherited: only those can have values deleted by value."""
    rules: dict[str, bool] = {}
    for oid in sub.listall(ldap.schema.AttributeType):
        names = sub.get_obj(ldap.schema.AttributeType, oid).names or (oid,)
        has_rule = bool(sub.get_inheritedattr(ldap.schema.AttributeType, oid, "equality"))
        for name in names:
            rules[name.lower()] = has_rule
    return rules


def to_directory_schema(sub: Any) -> DirectorySchema:
    """Convert a parsed ``ldap.schema.SubSchema`` into our schema model."""
    attribute_types = []
    for oid in sub.listall(ldap.schema.AttributeType):
        at = sub.get_obj(ldap.schema.AttributeType, oid)
        attribute_types.append(
            AttributeType(
                names=tuple(at.names) or (at.oid,),
                single_value=bool(at.single_value),
                no_user_modification=bool(at.no_user_mod),
            )
        )
    object_classes = []
    for oid in sub.listall(ldap.schema.ObjectClass):
        oc = sub.get_obj(ldap.schema.ObjectClass, oid)
        names = tuple(oc.names) or (oc.oid,)
        superiors = tuple(s for s in oc.sup if s.lower() != names[0].lower())
        object_classes.append(
            ObjectClass(
                names=names,
                superiors=superiors,
                kind=_KINDS.get(oc.kind, "structural"),
                must=tuple(oc.must),
                may=tuple(oc.may),
            )
        )
    return DirectorySchema(attribute_types=attribute_types, object_classes=object_classes)
