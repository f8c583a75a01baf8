"""Deterministic test data: the same people, CSV and LDIF, for every run."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("uid", "givenName", "sn", "cn", "mail", "title", "telephoneNumber", "employeeNumber")
TITLES = ("Engineer", "Analyst", "Manager", "Specialist", "Director", "Associate")


def person(i: int, *, title_shift: int = 0) -> dict[str, str]:
    """Person number *i*; *title_shift* changes the title (a modify in a delta)."""
    first, last = f"First{i % 997}", f"Last{i}"
    return {
        "uid": f"u{i:07d}",
        "givenName": first,
        "sn": last,
        "cn": f"{first} {last}",
        "mail": f"user{i}@example.org",
        "title": TITLES[(i + title_shift) % len(TITLES)],
        "telephoneNumber": f"+1 555 {i % 10000:04d}",
        "employeeNumber": str(100000 + i),
    }


@dataclass(frozen=True)
class Delta:
    """W3: of *n* people, the first 1 % are deleted, 1 % new ones are created,
    and 5 % (after the deleted ones) get a new title."""

    n: int

    @property
    def deleted(self) -> range:
        return range(0, self.n // 100)

    @property
    def created(self) -> range:
        return range(self.n, self.n + self.n // 100)

    @property
    def modified(self) -> range:
        start = self.n // 100
        return range(start, start + self.n * 5 // 100)

    @property
    def changes(self) -> int:
        return len(self.deleted) + len(self.created) + len(self.modified)

    def people(self) -> Iterator[dict[str, str]]:
        modified = self.modified
        for i in range(self.deleted.stop, self.n):
            yield person(i, title_shift=1 if i in modified else 0)
        for i in self.created:
            yield person(i)


def write_csv(path: Path, people: Iterable[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(people)


def write_ldif(path: Path, people: Iterable[dict[str, str]], container: str) -> None:
    """The same people as LDIF add records, for ldapadd."""
    with path.open("w", encoding="utf-8") as out:
        for p in people:
            out.write(f"dn: uid={p['uid']},{container}\n")
            out.write("objectClass: inetOrgPerson\n")
            for name in COLUMNS:
                out.write(f"{name}: {p[name]}\n")
            out.write("\n")


def job_definition(container: str, source: str, store: str = "bench") -> dict[str, object]:
    """The idsync job of the benchmarks: every column mapped, uid the key."""
    return {
        "name": "people",
        "source": source,
        "destination": {"store": store, "container": container},
        "mappings": [
            {"attribute": name, "from": name, **({"key": True} if name == "uid" else {})}
            for name in COLUMNS
        ],
        "actions": {"on_missing": "delete"},
    }


def group_job_definition(container: str, people_container: str, store: str = "bench") -> dict[str, object]:
    """W5: one group whose members are listed by uid in the source."""
    return {
        "name": "groups",
        "source": "groups",
        "destination": {"store": store, "container": container, "object_type": "group"},
        "mappings": [
            {"attribute": "cn", "from": "name", "key": True},
            {
                "attribute": "member",
                "from": "members",
                "multi_value_delimiter": ";",
                "resolve": {"base_dn": people_container, "attribute": "uid", "scope": "one", "unresolved": "report"},
            },
        ],
    }
