"""Definitions of identity stores, data sources and sync jobs.

These pydantic models are what users write in YAML (``idsync apply -f``),
what the database stores as JSON, and what ``idsync export`` writes back.
They check structure only; checks that need a connection or the engine
(the destination schema, transform steps) run in ``services``.

Secret fields hold either the secret itself or ``env:NAME``, a reference to
an environment variable read when the connection is opened. Secrets are kept
out of the stored JSON (encrypted separately) and out of every export.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from idsync.domain.entry import Scope

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")]

ENV_PREFIX = "env:"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Named(_Model):
    name: Name
    description: str = ""


# ---------------------------------------------------------------- stores


class LdapStore(_Named):
    """Any LDAPv3 server (OpenLDAP, 389-DS, Active Directory)."""

    kind: Literal["ldap"]
    url: str = Field(description="ldap://host:port or ldaps://host:port")
    bind_dn: str | None = None
    bind_password: str | None = Field(default=None, description="secret, or env:NAME")
    start_tls: bool = False
    ca_file: str | None = None
    tls_verify: bool = True
    base_dn: str | None = None
    timeout: float = Field(default=10.0, gt=0)
    page_size: int = Field(default=1000, ge=1, le=100_000)

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("bind_password",)

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v: str) -> str:
        if not v.lower().startswith(("ldap://", "ldaps://")):
            raise ValueError("must start with ldap:// or ldaps://")
        return v

    @model_validator(mode="after")
    def _tls(self) -> LdapStore:
        if self.start_tls and self.url.lower().startswith("ldaps://"):
            raise ValueError("start_tls cannot be combined with an ldaps:// URL (it is TLS already)")
        return self


class LocalStore(_Named):
    """The embedded directory: a file on this machine with the LDAP data model."""

    kind: Literal["local"]
    path: str = Field(description="file of the directory; relative paths are under IDSYNC_HOME")
    suffix: str = "dc=example,dc=org"

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()


StoreDefinition = Annotated[LdapStore | LocalStore, Field(discriminator="kind")]


# ---------------------------------------------------------------- sources


class CsvSource(_Named):
    """Delimited text: CSV, TSV or any single-character delimiter."""

    kind: Literal["csv"]
    path: str
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    fields: list[str] | None = Field(default=None, description="column names when header is false")

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter(cls, v: Any) -> Any:
        if isinstance(v, str) and v.lower() in ("tab", "\\t"):
            return "\t"
        return v

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("must be exactly one character (use 'tab' for a tab)")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _fields_without_header(self) -> CsvSource:
        if not self.header and not self.fields:
            raise ValueError("a source without a header row needs 'fields' (the column names)")
        return self


SourceDefinition = Annotated[CsvSource, Field(discriminator="kind")]


# ---------------------------------------------------------------- jobs


TransformStep = str | dict[str, Any]


class Join(_Model):
    fields: list[str] = Field(min_length=1)
    separator: str = " "


class MemberResolution(_Model):
    """Turn member keys from the source into DNs of existing destination objects."""

    base_dn: str
    attribute: str = Field(description="attribute of the member objects holding the key")
    scope: Scope = Scope.SUB
    filter: str = "(objectClass=*)"


class FieldMapping(_Model):
    """Destination attribute ← source field, static value, join or expression,
    then optional transform steps."""

    attribute: str = Field(min_length=1)
    source: str | None = Field(default=None, alias="from")
    value: str | None = None
    join: Join | None = None
    expression: str | None = None
    transforms: list[TransformStep] = Field(default_factory=list)
    key: bool = False
    new_only: bool = False
    required: bool = False
    multi_value_delimiter: str | None = None
    members: MemberResolution | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> FieldMapping:
        origins = [
            n for n, v in (("from", self.source), ("value", self.value), ("join", self.join), ("expression", self.expression))
            if v is not None
        ]
        if len(origins) != 1:
            raise ValueError(
                f"mapping for {self.attribute!r} needs exactly one of from, value, join, expression"
                + (f" (has {', '.join(origins)})" if origins else "")
            )
        if self.key and self.new_only:
            raise ValueError(f"key mapping {self.attribute!r} cannot be new_only")
        return self


OBJECT_TYPES: dict[str, tuple[str, ...]] = {
    "user": ("top", "person", "organizationalPerson", "inetOrgPerson"),
    "contact": ("top", "person", "organizationalPerson", "inetOrgPerson"),
    "group": ("top", "groupOfNames"),
}
DEFAULT_RDN = {"user": "uid", "contact": "cn", "group": "cn", "custom": "cn"}


class Destination(_Model):
    store: Name
    container: str = Field(description="DN of the container new objects go to")
    base_dn: str | None = Field(default=None, description="where matching objects are searched (default: container)")
    scope: Scope = Scope.SUB
    filter: str | None = Field(default=None, description="extra RFC 4515 filter narrowing the scope")
    object_type: Literal["user", "group", "contact", "custom"] = "user"
    object_classes: list[str] | None = None
    rdn_attribute: str | None = None
    container_expression: str | None = Field(
        default=None, description="Python expression giving the container DN of a new object"
    )

    @model_validator(mode="after")
    def _custom_needs_classes(self) -> Destination:
        if self.object_type == "custom" and not self.object_classes:
            raise ValueError("object_type custom needs object_classes")
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.object_classes) if self.object_classes else OBJECT_TYPES[self.object_type]

    @property
    def rdn(self) -> str:
        return self.rdn_attribute or DEFAULT_RDN[self.object_type]

    @property
    def search_base(self) -> str:
        return self.base_dn or self.container


class DisableWith(_Model):
    """How to disable an object on a directory without account flags."""

    attribute: str
    value: str


class Actions(_Model):
    on_new: Literal["create", "skip"] = "create"
    on_missing: Literal["skip", "delete", "disable", "move"] = "skip"
    move_to: str | None = None
    disable_with: DisableWith | None = None
    allow_empty_source: bool = Field(
        default=False,
        description="let a source with no records delete, disable or move every object in scope",
    )

    @model_validator(mode="after")
    def _complete(self) -> Actions:
        if self.on_missing == "move" and not self.move_to:
            raise ValueError("on_missing: move needs move_to (the container DN)")
        if self.on_missing == "disable" and not self.disable_with:
            raise ValueError("on_missing: disable needs disable_with (attribute and value)")
        return self


class JobSource(_Model):
    data_source: Name


class JobDefinition(_Named):
    owners: list[str] = Field(default_factory=list)
    source: JobSource
    destination: Destination
    mappings: list[FieldMapping] = Field(min_length=1)
    actions: Actions = Field(default_factory=Actions)

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, v: Any) -> Any:
        return {"data_source": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _keys(self) -> JobDefinition:
        if not any(m.key for m in self.mappings):
            raise ValueError(
                f"job {self.name!r} has no key mapping: mark at least one mapping with key: true"
            )
        seen: set[str] = set()
        for m in self.mappings:
            low = m.attribute.lower()
            if low in seen:
                raise ValueError(f"attribute {m.attribute!r} is mapped twice")
            seen.add(low)
        return self

    @property
    def key_mappings(self) -> list[FieldMapping]:
        return [m for m in self.mappings if m.key]


def is_env_reference(value: str | None) -> bool:
    return bool(value) and value.startswith(ENV_PREFIX)  # type: ignore[union-attr]
