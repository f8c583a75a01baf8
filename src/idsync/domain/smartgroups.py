"""Smart groups and smart group update jobs, as users write them and as they are stored.

A smart group is a group entry of an identity store whose members idsync
computes: ``(queries ∪ join ∪ include) − exclude``. The exclude list wins
over everything, the include list over the queries. Its limits keep a bad
rule from emptying or flooding a group: an empty result is refused unless
``allow_empty``; a result over ``max_members`` is refused; a change of more
than ``guard.percent`` % of a group larger than ``guard.min_size`` is refused.
A refused group is left as it is, and the run reports it.

A smart group update job names the groups it recomputes: listed by name, or
every smart group of its store whose DN lies under one of its containers
(at any depth).

The models check structure, including that each filter parses (the error
gives the position in the filter); whether the store, the source and the
bases exist is checked by :mod:`idsync.services.smartgroups`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from idsync.domain.base import DefinitionModel, Name
from idsync.domain.dn import normalize_dn, parse_dn
from idsync.domain.entry import Scope
from idsync.domain.filters import parse_filter
from idsync.errors import ConfigError

GroupClass = Literal["groupOfNames", "groupOfUniqueNames", "group"]

MEMBER_ATTRIBUTE: dict[str, str] = {
    "groupOfNames": "member",
    "groupOfUniqueNames": "uniqueMember",
    "group": "member",  # Active Directory
}
"""The attribute listing a group's members, by the group's object class."""


def _dn(value: str, what: str) -> str:
    try:
        parse_dn(value)
    except ConfigError as exc:
        raise ValueError(f"{what}: {exc.message}") from exc
    if not value.strip():
        raise ValueError(f"{what}: the DN is empty")
    return value


class GroupQuery(DefinitionModel):
    """One query of a smart group: the entries under *base* (with *scope*) matching *filter*."""

    base: str = Field(description="search base DN; must lie within the store")
    scope: Scope = Scope.SUB
    filter: str = Field(default="(objectClass=*)", description="RFC 4515 filter")

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        return _dn(value, "base")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        try:
            parse_filter(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from exc
        return value

    def label(self) -> str:
        """``(department=IT) under ou=People,dc=example,dc=org (sub)``."""
        return f"{self.filter} under {self.base} ({self.scope.value})"


class GroupJoin(DefinitionModel):
    """Members from a data source: the entries whose *attribute* equals a value of *column*."""

    source: Name
    column: str = Field(min_length=1)
    attribute: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9-]*$")
    base: str | None = Field(default=None, description="where to look for the entries; default: the store's base")

    @field_validator("base")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        return None if value is None else _dn(value, "base")


class Guard(DefinitionModel):
    """Do not update, and report, when a change exceeds *percent* % of a group larger than *min_size*."""

    percent: float = Field(gt=0, le=100)
    min_size: int = Field(default=0, ge=0)


class SmartGroup(DefinitionModel):
    """A group whose members idsync computes from queries, a join, and lists."""

    name: Name
    description: str = ""
    store: Name
    dn: str = Field(description="the group entry")
    object_class: GroupClass = "groupOfNames"
    queries: list[GroupQuery] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    join: GroupJoin | None = None
    allow_empty: bool = Field(default=False, description="let an empty result empty the group")
    max_members: int | None = Field(default=None, ge=1)
    guard: Guard | None = None

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @field_validator("dn")
    @classmethod
    def _group_dn(cls, value: str) -> str:
        return _dn(value, "dn")

    @field_validator("include", "exclude")
    @classmethod
    def _listed(cls, values: list[str]) -> list[str]:
        seen: set[str] = set()
        for index, value in enumerate(values):
            _dn(value, f"item {index + 1}")
            key = normalize_dn(value)
            if key in seen:
                raise ValueError(f"{value!r} is listed twice")
            seen.add(key)
        return values

    @model_validator(mode="after")
    def _something(self) -> SmartGroup:
        if not self.queries and not self.include and self.join is None:
            raise ValueError("a smart group needs at least one query, an include list or a join")
        return self

    @property
    def member_attribute(self) -> str:
        return MEMBER_ATTRIBUTE[self.object_class]


class SmartGroupJob(DefinitionModel):
    """A smart group update job: recompute some smart groups of one store, write the differences."""

    name: Name
    description: str = ""
    store: Name
    groups: list[Name] = Field(default_factory=list, description="smart groups by name")
    containers: list[str] = Field(
        default_factory=list, description="every smart group of the store whose DN is under one of these (any depth)"
    )
    notify_owners: bool = Field(
        default=False,
        description="after each run, send each group's owners (owner / managedBy, by their mail) what changed",
    )

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @field_validator("containers")
    @classmethod
    def _containers(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            _dn(value, f"container {index + 1}")
        return values

    @model_validator(mode="after")
    def _targets(self) -> SmartGroupJob:
        if not self.groups and not self.containers:
            raise ValueError("a smart group update job needs groups or containers to target")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError("a smart group is listed twice in groups")
        return self
