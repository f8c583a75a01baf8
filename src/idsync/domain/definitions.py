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

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from idsync.domain.base import DefinitionModel as DefinitionModel
from idsync.domain.base import Name as Name
from idsync.domain.entry import Scope
from idsync.domain.workflow import WorkflowSettings

ENV_PREFIX = "env:"
_ENV_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Named(DefinitionModel):
    name: Name
    description: str = ""


# ---------------------------------------------------------------- stores


class NotificationServer(DefinitionModel):
    """The SMTP server that delivers a store's notifications. Certificates are
    always verified (with the system CAs, or *ca_file*): a notification server
    is never trusted blindly."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 25, 587 (starttls) or 465 (implicit)")
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    ca_file: str | None = Field(default=None, description="CA certificates (PEM) to verify the server with")
    sender: str = Field(min_length=3, description="From address of the messages")
    username: str | None = None
    password: str | None = Field(default=None, description="secret, or env:NAME")
    default_to: list[str] = Field(default_factory=list)
    default_cc: list[str] = Field(default_factory=list)
    timeout: float = Field(default=10.0, gt=0)
    webhook_url: str | None = Field(
        default=None, description="http(s) URL that also receives each notification as a signed JSON POST"
    )
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 key of the webhook (secret, or env:NAME)")
    allow_plaintext_login: bool = Field(
        default=False, description="allow a login over tls: none, which sends the password in clear"
    )

    @property
    def sends_password_in_clear(self) -> bool:
        """A login over a connection without TLS: the password crosses the network readable."""
        return self.tls == "none" and bool(self.username)

    @property
    def effective_port(self) -> int:
        """The port to connect to: the one given, or the usual one for the TLS mode."""
        if self.port is not None:
            return self.port
        return {"none": 25, "starttls": 587, "implicit": 465}[self.tls]

    @model_validator(mode="after")
    def _login(self) -> NotificationServer:
        if self.password is not None and not self.username:
            raise ValueError("password needs a username")
        if self.webhook_url is not None and not self.webhook_url.lower().startswith(("http://", "https://")):
            raise ValueError("webhook_url must start with http:// or https://")
        return self


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
    flavor: Literal["generic", "active_directory"] = Field(
        default="generic",
        description="active_directory: objectGUID anchor, userAccountControl disable, unicodePwd passwords",
    )
    notification_server: NotificationServer | None = None
    workflow: WorkflowSettings | None = Field(default=None, description="which runs need approval, and by whom")

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "bind_password",
        "notification_server.password",
        "notification_server.webhook_secret",
    )

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
    suffix_attributes: dict[str, list[str]] | None = Field(
        default=None,
        description="attributes of the suffix entry (objectClass and the rest); default: made from the suffix's RDN",
    )
    indexed_attributes: list[str] | None = Field(
        default=None,
        description="attributes whose equality and presence searches use an index; default: objectClass, uid, "
        "cn, mail, member, ou, o, dc. Changing the list rebuilds the indexes when the store is next opened",
    )
    notification_server: NotificationServer | None = None
    workflow: WorkflowSettings | None = Field(default=None, description="which runs need approval, and by whom")

    @field_validator("suffix_attributes", mode="before")
    @classmethod
    def _single_values(cls, v: Any) -> Any:
        # ``o: Example`` is one value: the same as ``o: [Example]``.
        if isinstance(v, dict):
            return {k: [x] if isinstance(x, str) else x for k, x in v.items()}
        return v

    @field_validator("suffix_attributes")
    @classmethod
    def _has_classes(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if v is not None and not any(k.lower() == "objectclass" and vals for k, vals in v.items()):
            raise ValueError("suffix_attributes needs objectClass (e.g. [dcObject, organization])")
        return v

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("notification_server.password", "notification_server.webhook_secret")


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


class ExcelSource(_Named):
    """One sheet of an Excel workbook (.xlsx), read as a stream of rows."""

    kind: Literal["excel"]
    path: str
    sheet: str | None = Field(default=None, description="name of the sheet; default: the first sheet")
    header_row: int = Field(
        default=1, ge=0, le=1_048_576,
        description="row naming the columns (rows above it are ignored); 0: no header row, give fields",
    )
    fields: list[str] | None = Field(default=None, description="column names when header_row is 0")

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _fields_without_header(self) -> ExcelSource:
        if self.header_row == 0 and not self.fields:
            raise ValueError("a sheet without a header row (header_row: 0) needs 'fields' (the column names)")
        return self


class SqlSource(_Named):
    """A table, view or read-only query of a database reached by an SQLAlchemy URL."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL without the password, e.g. postgresql+psycopg://user@host/db")
    password: str | None = Field(default=None, description="secret, or env:NAME")
    table: str | None = Field(default=None, description="table or view, optionally schema.table")
    query: str | None = Field(default=None, description="one SELECT (or WITH ... SELECT) statement")
    schema_name: str | None = Field(default=None, alias="schema", description="schema of the table")
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="rows fetched per round trip")

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)

    @field_validator("url")
    @classmethod
    def _url_without_password(cls, v: str) -> str:
        from urllib.parse import parse_qs, urlsplit

        if "://" not in v or not v.split("://", 1)[0]:
            raise ValueError("must be an SQLAlchemy URL such as postgresql+psycopg://user@host/db or sqlite:///file.db")
        parts = urlsplit(v)
        if parts.password or any(k.lower() == "password" for k in parse_qs(parts.query)):
            raise ValueError("must not hold the password: give it in the password field (a secret, or env:NAME)")
        return v

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        given = [n for n, v in (("table", self.table), ("query", self.query)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "needs exactly one of table (a table or view) or query (a SELECT statement)"
                + (" (has both)" if len(given) == 2 else "")
            )
        if self.table is not None and not self.table.strip():
            raise ValueError("table must not be empty")
        if self.query is not None and not self.query.strip():
            raise ValueError("query must not be empty")
        if self.query is not None and self.schema_name is not None:
            raise ValueError("schema applies to a table; qualify the names inside the query instead")
        return self


SourceDefinition = Annotated[CsvSource | ExcelSource | SqlSource, Field(discriminator="kind")]


# ---------------------------------------------------------------- jobs


TransformStep = str | dict[str, Any]


class Join(DefinitionModel):
    fields: list[str] = Field(min_length=1)
    separator: str = " "


class Resolve(DefinitionModel):
    """Turn each value into the DN of the destination object holding it in
    ``attribute`` (a manager's employee number into the manager's DN, member
    keys into member DNs), through an index read once per run."""

    base_dn: str
    attribute: str = Field(min_length=1, description="attribute of the objects looked up that holds the value")
    scope: Scope = Scope.SUB
    filter: str = "(objectClass=*)"
    unresolved: Literal["error", "report"] = Field(
        default="error",
        description="a value matching no object or several: error fails the record; report leaves the value out",
    )


class FieldMapping(DefinitionModel):
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
    resolve: Resolve | None = None

    @model_validator(mode="before")
    @classmethod
    def _members_alias(cls, data: Any) -> Any:
        # ``members: {...}`` is the former spelling of resolve with unresolved: report.
        if isinstance(data, dict) and "members" in data:
            data = dict(data)
            members = data.pop("members")
            if data.get("resolve") is not None:
                raise ValueError("give resolve or its former name members, not both")
            if isinstance(members, dict):
                members = {"unresolved": "report", **members}
            data["resolve"] = members
        return data

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
        if self.key and self.resolve is not None:
            raise ValueError(f"key mapping {self.attribute!r} cannot use resolve")
        return self


OBJECT_TYPES: dict[str, tuple[str, ...]] = {
    "user": ("top", "person", "organizationalPerson", "inetOrgPerson"),
    "contact": ("top", "person", "organizationalPerson", "inetOrgPerson"),
    "group": ("top", "groupOfNames"),
}
DEFAULT_RDN = {"user": "uid", "contact": "cn", "group": "cn", "custom": "cn"}


class Destination(DefinitionModel):
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
    create_container: bool = Field(
        default=False,
        description="create the container (and its missing parents) when it does not exist; previews show the creates",
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


class DisableWith(DefinitionModel):
    """How to disable an object on a directory without account flags."""

    attribute: str
    value: str


class Actions(DefinitionModel):
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
        # on_missing: disable without disable_with is checked with the destination
        # store (services.validation): Active Directory disables accounts by itself.
        if self.on_missing == "move" and not self.move_to:
            raise ValueError("on_missing: move needs move_to (the container DN)")
        return self


_STORE_SOURCE_FIELDS = ("base_dn", "scope", "filter", "attributes", "multi_value_separator")


class JobSource(DefinitionModel):
    """Where a job's records come from: a data source, or an identity store read
    under a base DN (a directory-to-directory job).

    A store source yields one record per entry: a field per attribute (named
    as in ``attributes``) holding its values joined with
    ``multi_value_separator``, plus ``dn``. A mapping splits the values again
    with ``multi_value_delimiter`` set to the same separator.
    """

    data_source: Name | None = None
    store: Name | None = None
    base_dn: str | None = Field(default=None, description="where the entries are read (store sources)")
    scope: Scope = Scope.SUB
    filter: str = "(objectClass=*)"
    attributes: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="attributes to read; default: the fields the mappings read"
    )
    multi_value_separator: str = Field(default="\n", min_length=1)

    @model_validator(mode="after")
    def _one_origin(self) -> JobSource:
        if (self.data_source is None) == (self.store is None):
            raise ValueError(
                "a job source needs exactly one of data_source (a data source name) "
                "or store (an identity store name, with base_dn)"
            )
        if self.store is not None and not self.base_dn:
            raise ValueError(f"source store {self.store!r} needs base_dn (where to read the entries)")
        if self.data_source is not None:
            extra = [f for f in _STORE_SOURCE_FIELDS if f in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to a store source (store: NAME)")
        return self

    @property
    def label(self) -> str:
        """How messages name the source: ``data source 'hr'`` or ``store 'corp' (ou=People,…)``."""
        if self.store is not None:
            return f"store {self.store!r} ({self.base_dn})"
        return f"data source {self.data_source!r}"


DEFAULT_SYMBOLS = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
"""Symbols of generated passwords: printable ASCII without quotes, backslash and space."""

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PasswordRules(DefinitionModel):
    """How generated passwords look: their length and the character classes
    each one contains at least once."""

    length: int = Field(default=16, ge=8, le=128)
    lower: bool = True
    upper: bool = True
    digits: bool = True
    symbols: bool = True
    symbol_set: str = Field(default=DEFAULT_SYMBOLS, min_length=1)

    @model_validator(mode="after")
    def _usable(self) -> PasswordRules:
        if not (self.lower or self.upper or self.digits or self.symbols):
            raise ValueError("generate needs at least one of lower, upper, digits, symbols")
        bad = sorted({c for c in self.symbol_set if not c.isprintable() or c.isspace()})
        if bad:
            raise ValueError(f"symbol_set may hold only visible characters (not {bad!r})")
        return self


class Passwords(DefinitionModel):
    """The password written when the job creates an object: fixed (a secret)
    or generated per object. Generated ones wait, encrypted, for delivery to
    the recipients."""

    attribute: str = Field(default="userPassword", min_length=1)
    fixed: str | None = Field(default=None, description="secret, or env:NAME")
    generate: PasswordRules | None = None
    recipients: list[Annotated[str, Field(pattern=EMAIL_PATTERN)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Passwords:
        # Neither is accepted here: a stored fixed password is left out of
        # exports, and applying the export again keeps it (services check it exists).
        if self.fixed is not None and self.generate is not None:
            raise ValueError("passwords needs one of fixed or generate, not both")
        if self.fixed is not None and self.recipients:
            raise ValueError("passwords.recipients receive generated passwords; a fixed password has none")
        return self


class ChangedBy(DefinitionModel):
    """How a changed-only run tells changed records: a source timestamp, or a
    content hash of the mapped values kept by idsync."""

    timestamp_field: str | None = Field(default=None, min_length=1)
    timestamp_format: str | None = Field(default=None, description="strptime format; default ISO 8601")
    timestamp_zone: str = Field(default="UTC", description="zone of timestamps written without one")
    hash: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> ChangedBy:
        if (self.timestamp_field is not None) == self.hash:
            raise ValueError("changed_by needs exactly one of timestamp_field (a source field) or hash: true")
        if self.hash and ("timestamp_format" in self.model_fields_set or "timestamp_zone" in self.model_fields_set):
            raise ValueError("timestamp_format and timestamp_zone apply to timestamp_field, not to hash")
        if self.timestamp_format is not None and "%" not in self.timestamp_format:
            raise ValueError(f"timestamp_format {self.timestamp_format!r} has no % directive (e.g. %d.%m.%Y %H:%M)")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timestamp_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timestamp_zone!r} (an IANA name such as Europe/Berlin)") from exc
        return self


class Limits(DefinitionModel):
    """The most one run may change; a run over a limit is held, changing nothing."""

    max_creates: int | None = Field(default=None, ge=0)
    max_deletes: int | None = Field(default=None, ge=0, description="deletes, disables and moves of missing objects")
    max_changed_percent: float | None = Field(default=None, ge=0, le=100, description="of the objects in scope")

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_creates, self.max_deletes, self.max_changed_percent))


class JobDefinition(_Named):
    owners: list[str] = Field(default_factory=list)
    source: JobSource
    destination: Destination
    mappings: list[FieldMapping] = Field(min_length=1)
    actions: Actions = Field(default_factory=Actions)
    passwords: Passwords | None = None
    update_mode: Literal["all", "changed"] = "all"
    changed_by: ChangedBy | None = None
    limits: Limits | None = None
    environment: list[str] = Field(
        default_factory=list,
        description="environment variables the job's expressions and %ENV:NAME% values may read (never IDSYNC_*)",
    )

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("passwords.fixed",)
    """Dotted paths of the secrets inside the definition."""

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, v: Any) -> Any:
        return {"data_source": v} if isinstance(v, str) else v

    @field_validator("environment")
    @classmethod
    def _environment_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ENV_VARIABLE.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _)")
            if name.upper().startswith("IDSYNC_"):
                raise ValueError(f"{name!r} cannot be listed: IDSYNC_* variables are never readable by jobs")
        return names

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
        if self.update_mode == "changed" and self.changed_by is None:
            raise ValueError("update_mode: changed needs changed_by ({timestamp_field: FIELD} or {hash: true})")
        if self.passwords is not None and self.passwords.attribute.lower() in seen:
            raise ValueError(f"passwords.attribute {self.passwords.attribute!r} is also mapped; write it one way")
        return self

    @property
    def key_mappings(self) -> list[FieldMapping]:
        return [m for m in self.mappings if m.key]


def is_env_reference(value: str | None) -> bool:
    return bool(value) and value.startswith(ENV_PREFIX)  # type: ignore[union-attr]
