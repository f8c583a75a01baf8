"""Saving, loading and removing the definitions of stores, sources, jobs,
collections and schedules.

A definition is stored as its JSON body with the secret fields taken out and
encrypted separately. Loading puts them back (for connecting); exporting
leaves them out, except ``env:NAME`` references, which are not secrets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from idsync.domain.collections import CollectionDefinition
from idsync.domain.definitions import (
    JobDefinition,
    SourceDefinition,
    StoreDefinition,
    is_env_reference,
)
from idsync.domain.roles import Role
from idsync.domain.schedules import ScheduleDefinition
from idsync.domain.smartgroups import SmartGroup, SmartGroupJob
from idsync.errors import ConfigError, StateConflictError, VersionConflictError, clipped, quoted
from idsync.services import authz, workflow_checks
from idsync.services.workspace import Workspace
from idsync.store.definitions_repo import DefinitionRepository, StoredDefinition
from idsync.store.secrets import REDACTED

log = logging.getLogger(__name__)

Kind = Literal["store", "source", "job", "collection", "schedule", "smart_group", "smart_group_job"]

log = logging.getLogger(__name__)

NOUNS: dict[str, str] = {
    "store": "identity store",
    "source": "data source",
    "job": "sync job",
    "collection": "job collection",
    "schedule": "schedule",
    "smart_group": "smart group",
    "smart_group_job": "smart group update job",
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "store": TypeAdapter(StoreDefinition),
    "source": TypeAdapter(SourceDefinition),
    "job": TypeAdapter(JobDefinition),
    "collection": TypeAdapter(CollectionDefinition),
    "schedule": TypeAdapter(ScheduleDefinition),
    "smart_group": TypeAdapter(SmartGroup),
    "smart_group_job": TypeAdapter(SmartGroupJob),
}

USED_BY: dict[str, str] = {
    "store": "job", "source": "job", "job": "collection", "schedule": "collection",
    "smart_group": "smart group update job", "smart_group_job": "collection",
}
"""What kind of definition uses each kind (and so blocks its removal)."""


@dataclass(frozen=True)
class Loaded:
    """A stored definition with its secrets (plain or ``env:`` references)."""

    id: int
    definition: Any
    secrets: dict[str, str]


def format_validation_error(exc: ValidationError, what: str) -> str:
    """One line naming the field of the first problem, e.g.
    ``job 'hr': mappings.2.attribute: Field required``."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = clipped(str(err["msg"]).removeprefix("Value error, "))
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{what}: " + "; ".join(parts) + more


def parse(kind: Kind, data: Any, what: str | None = None) -> Any:
    """Validate *data* as a definition of *kind*; ConfigError naming the field otherwise."""
    try:
        return _ADAPTERS[kind].validate_python(data)
    except ValidationError as exc:
        name = data.get("name") if isinstance(data, dict) else None
        label = what or (f"{NOUNS[kind]} {quoted(name)}" if name else NOUNS[kind])
        raise ConfigError(format_validation_error(exc, label)) from exc


def secret_fields(definition: Any) -> tuple[str, ...]:
    """The secret fields of *definition*: top-level names, or dotted paths
    into its sections (``passwords.fixed``)."""
    return tuple(getattr(definition, "SECRET_FIELDS", ()))


def get_path(obj: Any, path: str) -> Any:
    """The value at dotted *path* of a model or plain data; None where a step is missing."""
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _parent(body: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The dict holding the last step of *path* in *body* (None when a section is absent)."""
    *sections, last = path.split(".")
    node: Any = body
    for part in sections:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), last


def set_path(body: dict[str, Any], path: str, value: Any) -> bool:
    """Put *value* at *path* of *body*, only where its section exists (a secret
    kept for a section since removed is not brought back); True if it was put."""
    parent, last = _parent(body, path)
    if parent is None:
        return False
    parent[last] = value
    return True


def pop_path(body: dict[str, Any], path: str) -> None:
    parent, last = _parent(body, path)
    if parent is not None:
        parent.pop(last, None)


def with_secrets(body: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """A copy of *body* with *secrets* put back at their paths."""
    out = copy.deepcopy(body)
    for path, value in secrets.items():
        set_path(out, path, value)
    return out


def public_body(definition: Any) -> dict[str, Any]:
    """The definition as plain data, without secrets and without default values."""
    body: dict[str, Any] = definition.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    body["name"] = definition.name
    if "kind" in type(definition).model_fields:
        body["kind"] = definition.kind
    for name in secret_fields(definition):
        pop_path(body, name)
    return body


def _still_fits(kind: Kind, definition: Any, path: str, value: str) -> bool:
    """Whether a stored secret kept for a section (not given again) still makes
    a valid definition: a section replaced by another choice drops it."""
    body = public_body(definition)
    if not set_path(body, path, value):
        return False
    try:
        parse(kind, body)
    except ConfigError:
        return False
    return True


def save(ws: Workspace, kind: Kind, definition: Any, *, based_on: Collection[str] | None = None) -> str:
    """Create or update a definition; returns "created", "updated" or "unchanged".

    A secret field left empty keeps the secret stored before, so an exported
    file (which has no secrets) can be applied again safely.

    *based_on*: the versions (:func:`version_of`) an edit may be based on. The
    stored definition must exist and be one of them, checked in the same
    transaction as the save, whose write is conditional on the row not having
    changed since: an edit racing another on the same version is refused with
    VersionConflictError, not merged.
    """
    authz.require(ws, Role.OPERATOR, f"save {NOUNS[kind]}s")
    if kind == "store":
        _check_notification_login(definition)
        workflow_checks.check(ws, definition)
    with ws.db.session() as session:
        repo = DefinitionRepository(session, kind, box=ws.secrets)
        existing = repo.get(definition.name)
        if based_on is not None:
            if existing is None:
                repo.require(definition.name)
            assert existing is not None
            if version_of(_exported(ws, kind, existing)) not in based_on:
                raise VersionConflictError(
                    f"{NOUNS[kind]} {quoted(definition.name)} changed since it was read", field="version",
                    hint="read it again, apply the edit to that version, and save again",
                )
        secrets = ws.secrets.decrypt(existing.secrets_token) if existing else {}
        for name in secret_fields(definition):
            value = get_path(definition, name)
            if value:
                secrets[name] = value
            elif name in secrets and "." in name and not _still_fits(kind, definition, name, secrets[name]):
                del secrets[name]
        token = ws.secrets.encrypt(secrets)
        return repo.put(definition.name, getattr(definition, "kind", ""), public_body(definition), token, ws.actor,
                        based_on=existing if based_on is not None else None)


def _check_notification_login(store: Any) -> None:
    """A notification server login without TLS sends the password in clear:
    refused, unless the store says so explicitly, and then warned about."""
    server = getattr(store, "notification_server", None)
    if server is None or not server.sends_password_in_clear:
        return
    if not server.allow_plaintext_login:
        raise ConfigError(
            f"identity store {store.name!r}: the notification server logs in over tls: none, "
            "which would send the password in clear",
            field="notification_server.tls",
            hint="use tls: starttls or implicit, or set allow_plaintext_login: true on a network you trust",
        )
    log.warning(
        "identity store %r: the notification server sends its login password in clear (tls: none, "
        "allow_plaintext_login: true)", store.name,
    )


def load(ws: Workspace, kind: Kind, name: str) -> Loaded:
    """The definition named *name*, with its secrets restored."""
    authz.require_reader(ws, f"{NOUNS[kind]}s")
    with ws.db.session() as session:
        stored = DefinitionRepository(session, kind).require(name)
        secrets = ws.secrets.decrypt(stored.secrets_token)
    definition = parse(kind, with_secrets(stored.body, secrets))
    return Loaded(stored.id, definition, secrets)


def list_definitions(ws: Workspace, kind: Kind) -> list[Any]:
    """All definitions of *kind*, by name, without their secrets."""
    return [definition for _id, definition in list_with_ids(ws, kind)]


def list_with_ids(ws: Workspace, kind: Kind) -> list[tuple[int, Any]]:
    """All definitions of *kind*, by name, with their ids, without their secrets."""
    authz.require_reader(ws, f"{NOUNS[kind]}s")
    with ws.db.session() as session:
        rows = DefinitionRepository(session, kind).list()
    return [(row.id, parse(kind, row.body)) for row in rows]


def users_of(ws: Workspace, kind: Kind, name: str) -> list[str]:
    """Names of the jobs (and smart groups) that use the store or source
    *name*, of the collections that use the job, schedule or smart group
    update job *name*, or of the update jobs naming smart group *name*."""
    if kind in ("collection", "smart_group", "smart_group_job"):
        return _smart_group_users(ws, kind, name)
    if kind in ("job", "schedule"):
        return [
            c.name
            for c in list_definitions(ws, "collection")
            if (name in c.job_names if kind == "job" else c.schedule == name)
        ]
    users = []
    for job in list_definitions(ws, "job"):
        uses = {job.destination.store, job.source.store} if kind == "store" else {job.source.data_source}
        if name in uses:
            users.append(job.name)
    for group in list_definitions(ws, "smart_group"):
        uses = {group.store} if kind == "store" else {group.join.source} if group.join is not None else set()
        if name in uses:
            users.append(f"smart group {group.name}")
    return users


def _smart_group_users(ws: Workspace, kind: Kind, name: str) -> list[str]:
    """The update jobs naming smart group *name*, or the collections linking update job *name*."""
    if kind == "smart_group":
        return [j.name for j in list_definitions(ws, "smart_group_job") if name in j.groups]
    if kind == "smart_group_job":
        return [c.name for c in list_definitions(ws, "collection") if name in c.smart_group_jobs]
    return []


def remove(ws: Workspace, kind: Kind, name: str) -> None:
    """Remove a definition; one still used (a store or source by a job, a job
    or schedule by a collection) is refused with StateConflictError: the
    definition is valid, it is what refers to it now that blocks the removal.
    The run history of a removed job is kept."""
    authz.require(ws, Role.OPERATOR, f"remove {NOUNS[kind]}s")
    users = users_of(ws, kind, name)
    if users:
        raise StateConflictError(
            f"{NOUNS[kind]} {name!r} is used by {USED_BY[kind]}(s) {', '.join(users)}",
            hint=f"change or remove those {USED_BY[kind]}s first",
        )
    with ws.db.session() as session:
        repo = DefinitionRepository(session, kind)
        repo.require(name)
        repo.remove(name, ws.actor)


def displayable(ws: Workspace, kind: Kind, name: str) -> dict[str, Any]:
    """The definition as ``show`` prints it: like an export, with each stored
    secret present as ``********`` (``env:NAME`` references as written)."""
    loaded = load(ws, kind, name)
    body = public_body(loaded.definition)
    for path, value in loaded.secrets.items():
        set_path(body, path, value if is_env_reference(value) else REDACTED)
    return body


def exportable(ws: Workspace, kind: Kind, name: str) -> dict[str, Any]:
    """The definition as an export shows it: secrets left out, env references kept.

    An export holds no secret, so it needs no secret key: the key is used
    only to read the env references of a definition that has encrypted
    secrets. Without it (the key file lost, another key), that definition is
    exported without them, and a warning says so.
    """
    with ws.db.session() as session:
        stored = DefinitionRepository(session, kind).require(name)
    return _exported(ws, kind, stored)


def version_of(body: dict[str, Any]) -> str:
    """The version of a definition as :func:`exportable` shows it: a hash of
    that body, which changes with every saved change (an HTTP ETag)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _exported(ws: Workspace, kind: Kind, stored: StoredDefinition) -> dict[str, Any]:
    name = stored.name
    secrets: dict[str, str] = {}
    if stored.secrets_token:
        try:
            secrets = ws.secrets.decrypt(stored.secrets_token)
        except ConfigError as exc:
            log.warning("%s %r is exported without its env references: %s", NOUNS[kind], name, exc.message)
    body = public_body(parse(kind, with_secrets(stored.body, secrets)))
    for field_name, value in secrets.items():
        if is_env_reference(value):
            set_path(body, field_name, value)
    return body
