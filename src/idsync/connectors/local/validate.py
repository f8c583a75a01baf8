"""Schema checks of the embedded directory, the ones slapd makes.

Each refusal is a :class:`LdapFailure` carrying the LDAP result name slapd
would return (``objectClassViolation``, ``invalidAttributeSyntax``…) and a
detail worded like slapd's, so both stores report the same problem the same
way. Values are compared with each attribute's equality rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from idsync.connectors.local.schema import AttrInfo, ClassInfo, Schema
from idsync.domain.dn import RDN
from idsync.domain.filters import value_key
from idsync.errors import RecordError

AttrMap = dict[str, list[str]]
"""An entry's user attributes: canonical (schema) spelling -> values, in write order."""


class LdapFailure(RecordError):
    """A change the directory refuses; ``code`` is the LDAP result name."""

    def __init__(self, code: str, detail: str, attribute: str | None = None) -> None:
        super().__init__(detail, attribute=attribute)
        self.code = code
        self.detail = detail


_PRINTABLE = re.compile(r"[A-Za-z0-9'()+,\-./:=? ]+")
_NUMERIC = re.compile(r"[0-9 ]+")
_OID = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_S = "1.3.6.1.4.1.1466.115.121.1."


def _name_and_uid(value: str) -> bool:
    dn, sep, uid = value.rpartition("#'")
    if sep and uid.endswith("'B") and set(uid[:-2]) <= {"0", "1"}:
        value = dn
    return value_key("distinguishedNameMatch", value) is not None


_SYNTAX: dict[str, Callable[[str], bool]] = {
    _S + "15": bool,  # Directory String: not empty
    _S + "26": str.isascii,  # IA5 String
    _S + "27": lambda v: value_key("integerMatch", v) is not None,
    _S + "12": lambda v: value_key("distinguishedNameMatch", v) is not None,
    _S + "34": _name_and_uid,
    _S + "7": lambda v: v in ("TRUE", "FALSE"),
    _S + "24": lambda v: value_key("generalizedTimeMatch", v) is not None,
    _S + "50": lambda v: bool(_PRINTABLE.fullmatch(v)),  # Telephone Number
    _S + "44": lambda v: bool(_PRINTABLE.fullmatch(v)),  # Printable String
    _S + "11": lambda v: len(v) == 2 and bool(_PRINTABLE.fullmatch(v)),  # Country String
    _S + "36": lambda v: bool(_NUMERIC.fullmatch(v)),
    _S + "38": lambda v: bool(_OID.fullmatch(v)),
    _S + "41": bool,  # Postal Address
    _S + "22": bool,  # Facsimile Telephone Number
    _S + "52": bool,  # Telex Number
    "1.3.6.1.1.16.1": lambda v: bool(_UUID.fullmatch(v)),
}


def _always(_value: str) -> bool:
    return True


def syntax_of(info: AttrInfo) -> Callable[[str], bool]:
    """The check of one value of *info*'s syntax."""
    return _SYNTAX.get(info.syntax or "", _always)


@lru_cache(maxsize=4096)
def resolve(schema: Schema, name: str) -> AttrInfo:
    """The attribute type a client writes as *name*; refuses unknown and operational types.

    Cached: every attribute written asks, with a handful of names (a refusal is not cached)."""
    base, semi, _ = name.partition(";")
    info = schema.attribute(base)
    if info is None or semi:
        why = "attribute type undefined" if info is None else "attribute options are not supported"
        raise LdapFailure("undefinedAttributeType", f"{name}: {why}", name)
    if info.no_user_modification or info.operational:
        raise LdapFailure("constraintViolation", f"{info.name}: no user modification allowed", info.name)
    return info


def check_values(info: AttrInfo, values: Sequence[str]) -> list[str]:
    """*values* checked against the attribute's syntax and for repeats (by its equality rule)."""
    if len(values) == 1:  # most attributes: nothing to compare the value with
        value = values[0]
        if not isinstance(value, str) or not _SYNTAX.get(info.syntax or "", _always)(value):
            raise LdapFailure("invalidAttributeSyntax", f"{info.name}: value #0 invalid per syntax", info.name)
        return [value]
    if info.name == "objectClass":  # the same few lists on every entry
        return list(_checked_classes(info, tuple(values)))
    return _check_values(info, values)


@lru_cache(maxsize=1024)
def _checked_classes(info: AttrInfo, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_check_values(info, values))


def _check_values(info: AttrInfo, values: Sequence[str]) -> list[str]:
    valid = _SYNTAX.get(info.syntax or "", _always)
    if len(values) == 1:  # most attributes: nothing to compare the value with
        value = values[0]
        if not isinstance(value, str) or not valid(value):
            raise LdapFailure("invalidAttributeSyntax", f"{info.name}: value #0 invalid per syntax", info.name)
        return [value]
    seen: set[object] = set()
    for i, value in enumerate(values):
        if not isinstance(value, str) or not valid(value):
            raise LdapFailure("invalidAttributeSyntax", f"{info.name}: value #{i} invalid per syntax", info.name)
        key = value_key(info.equality, value)
        if key in seen:
            raise LdapFailure("typeOrValueExists", f"{info.name}: value #{i} provided more than once", info.name)
        seen.add(key)
    return list(values)


def keys_of(info: AttrInfo, values: Sequence[str]) -> list[object]:
    return [value_key(info.equality, v) for v in values]


def structural_class(schema: Schema, classes: Sequence[str]) -> ClassInfo:
    """The most specific structural class of *classes*; refuses none or two unrelated ones."""
    for i, name in enumerate(classes):
        if schema.object_class(name) is None:
            raise LdapFailure(
                "invalidAttributeSyntax",
                f"objectClass: value #{i} invalid per syntax (object class {name!r} is not in the schema)",
                "objectClass",
            )
    chain = schema.chain(classes)
    structural = [c for c in chain if c.kind == "structural"]
    if not structural:
        raise LdapFailure("objectClassViolation", "no structural object class provided", "objectClass")
    inherited = {s.lower() for c in structural for s in c.superiors}
    leaves = [c for c in structural if c.name.lower() not in inherited]
    if len(leaves) > 1:
        names = "/".join(sorted(c.name for c in leaves))
        raise LdapFailure("objectClassViolation", f"invalid structural object class chain ({names})", "objectClass")
    return leaves[0]


@dataclass(frozen=True, slots=True)
class _ClassFacts:
    """What the checks of an entry need from its object classes, worked out once per set of classes."""

    structural: ClassInfo
    must: tuple[tuple[str, str], ...]  # (attribute, the class requiring it)
    allowed: frozenset[str] | None  # lower-cased names; None: extensibleObject allows any


@lru_cache(maxsize=4096)
def _class_facts(schema: Schema, classes: tuple[str, ...]) -> _ClassFacts:
    structural = structural_class(schema, classes)
    chain = schema.chain(classes)
    must = tuple((name, oc.name) for oc in chain for name in oc.must)
    extensible = any(oc.name.lower() == "extensibleobject" for oc in chain)
    return _ClassFacts(structural, must, None if extensible else _allowed(schema, chain))


def check_entry(schema: Schema, attrs: AttrMap, rdn: RDN, structural_before: str | None = None) -> ClassInfo:
    """Refuse an entry slapd would refuse; returns its structural class.

    Checks: object classes known with one structural chain (unchanged from
    *structural_before* when modifying), every MUST present, every attribute
    allowed (unless extensibleObject), SINGLE-VALUE respected, RDN values present.
    """
    classes = attrs.get("objectClass")
    if not classes:
        raise LdapFailure("objectClassViolation", "no objectClass attribute", "objectClass")
    facts = _class_facts(schema, tuple(classes))
    structural = facts.structural
    if structural_before and structural.name.lower() != structural_before.lower():
        raise LdapFailure(
            "objectClassModsProhibited",
            f"structural object class modification from '{structural_before}' to '{structural.name}' not allowed",
            "objectClass",
        )
    for name, owner in facts.must:
        if not attrs.get(name):
            raise LdapFailure("objectClassViolation", f"object class '{owner}' requires attribute '{name}'", name)
    allowed = facts.allowed
    if allowed is not None and not _all_allowed(allowed, tuple(attrs)):
        for name in attrs:
            if name.lower() not in allowed:
                raise LdapFailure("objectClassViolation", f"attribute '{name}' not allowed", name)
    for name, values in attrs.items():
        if len(values) > 1 and _single_valued(schema, name):
            raise LdapFailure("constraintViolation", f"{name}: multiple values provided", name)
    for type_, value in rdn:
        info = schema.attribute(type_)
        present = attrs.get(info.name if info else type_, [])
        if len(present) == 1 and present[0] == value:  # the usual case: the value as written
            continue
        key = value_key(info.equality if info else None, value)
        if not any(value_key(info.equality if info else None, v) == key for v in present):
            raise LdapFailure(
                "namingViolation", f"naming attribute '{info.name if info else type_}' is not present in entry", type_
            )
    return structural


@lru_cache(maxsize=4096)
def _all_allowed(allowed: frozenset[str], names: tuple[str, ...]) -> bool:
    """True when the classes allow every one of *names* (the same few lists on every entry)."""
    return all(name.lower() in allowed for name in names)


def _single_valued(schema: Schema, name: str) -> bool:
    info = schema.attribute(name)
    return info is not None and info.single_value


@lru_cache(maxsize=4096)
def _allowed_names(schema: Schema, classes: tuple[str, ...]) -> frozenset[str]:
    chain = schema.chain(classes)
    return frozenset(n.lower() for oc in chain for n in (*oc.must, *oc.may))


def _allowed(schema: Schema, chain: tuple[ClassInfo, ...]) -> frozenset[str]:
    return _allowed_names(schema, tuple(c.name for c in chain))
