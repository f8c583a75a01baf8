"""The LDAP schema of the embedded directory.

``schema.json`` next to this module is the schema OpenLDAP's slapd 2.5
publishes in its ``cn=Subschema`` entry when it loads
``/etc/ldap/schema/{core,cosine,inetorgperson,nis}.schema``: slapd's built-in
system schema (``objectClass``, ``cn``, ``uid``, ``entryUUID``, ``top``,
``extensibleObject``…) plus those four files. It was produced once with::

    ldapsearch -LLL -o ldif-wrap=no -b cn=Subschema -s base \\
        attributeTypes objectClasses > subschema.ldif      # against such a slapd
    python -m idsync.connectors.local.schema schema.json subschema.ldif \\
        /etc/ldap/schema/{core,cosine,inetorgperson,nis}.schema

:func:`parse_definitions` reads both ``.schema`` files and LDIF (so a store
can load extra schema files later); slapd's own configuration schema
(``olc*``) is left out. Attribute types inherit matching rules and syntax
from their SUP chain when loaded, as slapd does.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from idsync.connectors.base import AttributeType, DirectorySchema, ObjectClass
from idsync.domain.filters import AttributeRules
from idsync.errors import ConfigError

SCHEMA_FILE = Path(__file__).with_name("schema.json")

_TOKEN = re.compile(r"\s*(\(|\)|\$|'[^']*'|[^\s()$']+)")
_CONFIG_OID = "1.3.6.1.4.1.4203.1.12.2."
_SCHEMA_KEYWORDS = ("attributetype", "objectclass")
_LDIF_KEYS = {"attributetypes": "attributetype", "olcattributetypes": "attributetype",
              "objectclasses": "objectclass", "olcobjectclasses": "objectclass"}


def _tokens(text: str) -> Iterator[str]:
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConfigError(f"schema definition {text[:60]!r}: cannot read past position {pos}")
        pos = m.end()
        yield m.group(1)


def _list(tokens: list[str], i: int) -> tuple[list[str], int]:
    """A single word or a parenthesized list ('a' 'b' or a $ b); quotes removed."""
    if tokens[i] != "(":
        return [tokens[i].strip("'")], i + 1
    out: list[str] = []
    i += 1
    while tokens[i] != ")":
        if tokens[i] != "$":
            out.append(tokens[i].strip("'"))
        i += 1
    return out, i + 1


def parse_description(kind: str, text: str) -> dict[str, Any]:
    """One RFC 4512 attribute type or object class description as a plain dict."""
    tokens = list(_tokens(text))
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise ConfigError(f"schema definition {text[:60]!r} is not a parenthesized description")
    item: dict[str, Any] = {"oid": tokens[1], "names": []}
    i, end = 2, len(tokens) - 1
    while i < end:
        word = tokens[i].upper()
        i += 1
        if word in ("NAME", "SUP", "MUST", "MAY"):
            values, i = _list(tokens, i)
            item[{"NAME": "names"}.get(word, word.lower())] = values
        elif word in ("EQUALITY", "ORDERING", "SUBSTR", "SYNTAX", "USAGE", "DESC"):
            item[word.lower()] = tokens[i].strip("'")
            i += 1
        elif word in ("SINGLE-VALUE", "NO-USER-MODIFICATION", "OBSOLETE", "COLLECTIVE"):
            item[word.lower().replace("-", "_")] = True
        elif word in ("ABSTRACT", "STRUCTURAL", "AUXILIARY"):
            item["kind"] = word.lower()
        elif word.startswith("X-"):
            _, i = _list(tokens, i)
        else:
            raise ConfigError(f"schema definition {item['oid']}: unknown keyword {word!r}")
    item.pop("desc", None)
    if kind == "attributetype":
        if "syntax" in item:
            item["syntax"] = item["syntax"].split("{", 1)[0]
        if "sup" in item:
            item["sup"] = item["sup"][0]
    else:
        item.setdefault("kind", "structural")
    return item


def _statements(text: str, ldif: bool) -> Iterator[tuple[str, str]]:
    """(kind, description) from a .schema file or an LDIF (subschema or cn=config) file."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if raw[:1] in (" ", "\t") and lines:
            # LDIF folds lines after one space; .schema continues a statement on indented lines
            lines[-1] += raw[1:] if ldif else " " + raw.strip()
            continue
        lines.append(raw)
    for line in lines:
        head, _, rest = line.partition(" ")
        if head.lower() in _SCHEMA_KEYWORDS:
            yield head.lower(), rest
            continue
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() in _LDIF_KEYS:
            yield _LDIF_KEYS[key.strip().lower()], re.sub(r"^\s*\{\d+\}", "", value)


def parse_definitions(paths: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    """Attribute types and object classes of the files, later definitions of an OID winning."""
    found: dict[str, dict[str, dict[str, Any]]] = {"attributetype": {}, "objectclass": {}}
    for path in paths:
        ldif = path.suffix.lower() == ".ldif"
        for kind, text in _statements(path.read_text(encoding="utf-8"), ldif):
            item = parse_description(kind, text)
            names = [n.lower() for n in item["names"]]
            if item["oid"].startswith(_CONFIG_OID) or any(n.startswith("olc") for n in names):
                continue
            found[kind][item["oid"]] = item
    return {"attribute_types": list(found["attributetype"].values()),
            "object_classes": list(found["objectclass"].values())}


# ---------------------------------------------------------------- the loaded schema


@dataclass(frozen=True, slots=True)
class AttrInfo:
    """An attribute type with inherited rules resolved."""

    name: str
    names: tuple[str, ...]
    oid: str
    sup: str | None
    equality: str | None
    ordering: str | None
    substr: str | None
    syntax: str | None
    single_value: bool
    no_user_modification: bool
    usage: str

    @property
    def operational(self) -> bool:
        return self.usage != "userApplications"


@dataclass(frozen=True, slots=True)
class ClassInfo:
    name: str
    names: tuple[str, ...]
    superiors: tuple[str, ...]
    kind: str
    must: tuple[str, ...]
    may: tuple[str, ...]


class Schema:
    """Lookups over the schema data: attribute types and object classes by any
    name or OID, without regard to case."""

    def __init__(self, data: dict[str, list[dict[str, Any]]]) -> None:
        raw_attrs = {a["oid"]: a for a in data["attribute_types"]}
        by_name = {n.lower(): a for a in raw_attrs.values() for n in [a["oid"], *a["names"]]}

        def inherited(item: dict[str, Any], field: str) -> Any:
            seen = 0
            while item.get(field) is None and item.get("sup") and seen < 20:
                item = by_name.get(item["sup"].lower(), {})
                seen += 1
            return item.get(field)

        self.attributes: dict[str, AttrInfo] = {}
        for a in raw_attrs.values():
            names = tuple(a["names"]) or (a["oid"],)
            info = AttrInfo(
                name=names[0], names=names, oid=a["oid"], sup=a.get("sup"),
                equality=inherited(a, "equality"), ordering=inherited(a, "ordering"),
                substr=inherited(a, "substr"), syntax=inherited(a, "syntax"),
                single_value=bool(a.get("single_value")),
                no_user_modification=bool(a.get("no_user_modification")),
                usage=a.get("usage", "userApplications"),
            )
            for n in (a["oid"], *names):
                self.attributes[n.lower()] = info
        self.classes: dict[str, ClassInfo] = {}
        for c in data["object_classes"]:
            names = tuple(c["names"]) or (c["oid"],)
            info_c = ClassInfo(
                name=names[0], names=names, superiors=tuple(c.get("sup", ())), kind=c.get("kind", "structural"),
                must=tuple(self._canonical(n) for n in c.get("must", ())),
                may=tuple(self._canonical(n) for n in c.get("may", ())),
            )
            for n in (c["oid"], *names):
                self.classes[n.lower()] = info_c
        self._subtypes: dict[str, list[str]] = {}
        for info in set(self.attributes.values()):
            sup = info.sup
            while sup and (parent := self.attributes.get(sup.lower())):
                self._subtypes.setdefault(parent.name.lower(), []).append(info.name.lower())
                sup = parent.sup

    def _canonical(self, name: str) -> str:
        info = self.attributes.get(name.lower())
        return info.name if info else name

    def attribute(self, name: str) -> AttrInfo | None:
        return self.attributes.get(name.lower())

    def object_class(self, name: str) -> ClassInfo | None:
        return self.classes.get(name.lower())

    def subtypes(self, name: str) -> tuple[str, ...]:
        """Lower-cased canonical names of the type and every type derived from it."""
        return (name.lower(), *self._subtypes.get(name.lower(), ()))

    def chain(self, classes: Iterable[str]) -> tuple[ClassInfo, ...]:
        """The named classes and all their superiors; unknown names are skipped."""
        return _chain(self, tuple(sorted({c.lower() for c in classes})))

    def rules(self, name: str) -> AttributeRules | None:
        """How filters on attribute *name* evaluate (None: the type is undefined)."""
        info = self.attribute(name.split(";", 1)[0])
        if info is None:
            return None
        return AttributeRules(self.subtypes(info.name), info.equality, info.ordering, info.substr)

    @cached_property
    def directory_schema(self) -> DirectorySchema:
        attrs = {id(a): a for a in self.attributes.values()}.values()
        classes = {id(c): c for c in self.classes.values()}.values()
        return DirectorySchema(
            attribute_types=[AttributeType(a.names, a.single_value, a.no_user_modification) for a in attrs],
            object_classes=[ObjectClass(c.names, c.superiors, c.kind, c.must, c.may) for c in classes],
        )


@lru_cache(maxsize=4096)
def _chain(schema: Schema, lowered: tuple[str, ...]) -> tuple[ClassInfo, ...]:
    seen: dict[str, ClassInfo] = {}
    todo = list(lowered)
    while todo:
        oc = schema.classes.get(todo.pop().lower())
        if oc is not None and oc.name not in seen:
            seen[oc.name] = oc
            todo.extend(oc.superiors)
    return tuple(seen.values())


@lru_cache(maxsize=8)
def load_schema(extra: tuple[Path, ...] = ()) -> Schema:
    """The built-in schema, plus definitions from extra .schema or LDIF files."""
    data: dict[str, list[dict[str, Any]]] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    if extra:
        more = parse_definitions(extra)
        for key in ("attribute_types", "object_classes"):
            by_oid = {item["oid"]: item for item in data[key]}
            by_oid.update({item["oid"]: item for item in more[key]})
            data[key] = list(by_oid.values())
    return Schema(data)


def main(argv: Sequence[str]) -> int:
    """Write the schema of the given files as JSON: ``OUT.json FILE...``."""
    if len(argv) < 2:
        sys.stderr.write("usage: python -m idsync.connectors.local.schema OUT.json FILE...\n")
        return 2
    data = parse_definitions(Path(p) for p in argv[1:])
    Path(argv[0]).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
