"""Editing a store, source or job as a whole form: start from its stored
version, review what saving would change, test it as edited, and save it
only over the version the edit began from.

A form front end (the portal) shows every field of a definition, lets the
user change some, and sends them all back. :func:`editable` gives the
stored body (secrets left out: a secret field is write-only, and left empty
it keeps the stored secret) with its version; :func:`compose` turns the
edited body into a definition with the kept secrets put back;
:func:`review_changes` shows what saving would do, secrets masked;
:func:`test_connection` and :func:`send_test_message` try the definition as
edited, saved or not; :func:`save_edited` saves, refusing an edit begun
from a version someone else has changed since (as the API's If-Match does).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, StateConflictError, quoted
from idsync.services import (
    authz,
    connections,
    definitions,
    jobs,
    notifications,
    store_edits,
    validation,
)
from idsync.services.definitions import NOUNS, Kind
from idsync.services.review import Review, review
from idsync.services.workspace import Workspace

EDITABLE: tuple[Kind, ...] = ("store", "source", "job")


@dataclass(frozen=True)
class Editable:
    """A stored definition as an edit starts from it: plain data without secrets,
    the secret fields it has stored, and its version."""

    body: dict[str, Any]
    stored_secrets: frozenset[str]
    version: str


def version_of(body: dict[str, Any]) -> str:
    """A short hash of a stored body (as an export shows it): the version an edit began from."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _check_kind(kind: Kind) -> None:
    if kind not in EDITABLE:
        raise ConfigError(f"{NOUNS[kind]}s are not edited here", hint="use the collection wizard or the schedules page")


def current_version(ws: Workspace, kind: Kind, name: str) -> str | None:
    """The version of the stored definition *name*; None when there is none."""
    try:
        return version_of(definitions.exportable(ws, kind, name))
    except NotFoundError:
        return None


def editable(ws: Workspace, kind: Kind, name: str) -> Editable:
    """Definition *name* as an edit form starts from it (any reader may look)."""
    _check_kind(kind)
    authz.require_reader(ws, f"{NOUNS[kind]}s")
    exported = definitions.exportable(ws, kind, name)
    loaded = definitions.load(ws, kind, name)
    body = definitions.public_body(loaded.definition)
    return Editable(body, frozenset(loaded.secrets), version_of(exported))


def compose(ws: Workspace, kind: Kind, body: dict[str, Any], *, creating: bool = False) -> Any:
    """The definition *body* describes, validated. Editing, a secret field it
    leaves empty keeps the stored secret; creating, no stored secret is taken
    (a new definition named like a stored one never borrows its secrets)."""
    _check_kind(kind)
    name = body.get("name")
    data = copy.deepcopy(body)
    if isinstance(name, str) and name and not creating:
        try:
            kept = definitions.load(ws, kind, name).secrets
        except NotFoundError:
            kept = {}
        for path, value in kept.items():
            if not definitions.get_path(data, path):
                definitions.set_path(data, path, value)
    return definitions.parse(kind, data)


def review_changes(ws: Workspace, kind: Kind, definition: Any) -> Review:
    """What saving *definition* would do, secrets masked; nothing is saved."""
    _check_kind(kind)
    if kind == "store":
        return store_edits.review_changes(ws, definition)
    try:
        stored = definitions.load(ws, kind, definition.name).definition
    except NotFoundError:
        stored = None
    return review(NOUNS[kind], store_edits.masked(definition, stored), store_edits.masked(stored))


def check_free(ws: Workspace, kind: Kind, name: str) -> None:
    """StateConflictError when a new definition would take the name of a stored one."""
    if current_version(ws, kind, name) is not None:
        raise StateConflictError(f"{NOUNS[kind]} {quoted(name)} exists already: choose another name",
                                 field="name", hint="or edit the existing one")


def save_edited(ws: Workspace, kind: Kind, definition: Any, version: str | None, *, creating: bool) -> str:
    """Save *definition*: a new one only if its name is free, an edit only
    if the stored version is still *version*. Returns "created", "updated"
    or "unchanged", and, for a job that could not be checked, a warning is logged."""
    _check_kind(kind)
    authz.require(ws, Role.OPERATOR, f"save {NOUNS[kind]}s")
    if creating:
        check_free(ws, kind, definition.name)
    elif current_version(ws, kind, definition.name) != version:
        raise StateConflictError(
            f"{NOUNS[kind]} {quoted(definition.name)} was changed by someone else since this edit began",
            hint="review the differences from its new version and save again",
        )
    if kind == "store":
        return store_edits.save_store(ws, definition)
    if kind == "source":
        validation.check_source(definition)
        outcome: str = definitions.save(ws, "source", definition)
        return outcome
    return jobs.save_checked(ws, definition).outcome


def _secrets_of(definition: Any) -> dict[str, str]:
    found = {path: definitions.get_path(definition, path) for path in definitions.secret_fields(definition)}
    return {path: str(value) for path, value in found.items() if value}


def test_connection(ws: Workspace, kind: Kind, definition: Any) -> str:
    """Connect to the store or open the source as edited (saved or not); one
    line describing it, or a ConnectorError."""
    authz.require(ws, Role.OPERATOR, f"test {NOUNS[kind]}s")
    if kind == "store":
        with _closing(connections.open_store(definition, _secrets_of(definition))) as store:
            return str(store.test())
    if kind == "source":
        with _closing(connections.open_source(definition, _secrets_of(definition))) as source:
            return str(source.test())
    raise ConfigError(f"{NOUNS[kind]}s have no connection to test", hint="try the job's mappings instead")


def send_test_message(ws: Workspace, store: Any, to: Sequence[str]) -> str:
    """A test message through the notification server of *store* as edited; the server's answer."""
    authz.require(ws, Role.OPERATOR, "send test notifications")
    server = getattr(store, "notification_server", None)
    if server is None:
        raise ConfigError(f"identity store {store.name!r} has no notification server: give its host and sender",
                          field="notification_server.host")
    return notifications.send_test_through(server, store.name, to)


class _closing:
    """Close a connection afterwards (stores and sources have ``close``)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()


# ---------------------------------------------------------------- transform steps as text


def step_text(step: str | dict[str, Any]) -> str:
    """A transform step as one line a form shows: ``upper`` or ``{left: 3}``."""
    if isinstance(step, str):
        return step
    return yaml.safe_dump(step, default_flow_style=True, allow_unicode=True, width=10_000).strip()


def parse_step(text: str, label: str) -> str | dict[str, Any]:
    """One line of :func:`step_text` back as a step; ConfigError naming *label* otherwise."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: transform {text!r} is not a step such as {{left: 3}}",
                          hint=str(exc).splitlines()[0]) from exc
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(f"{label}: transform {text!r} needs one step name, e.g. {{prefix: 'ext-'}}")
    return value


# ---------------------------------------------------------------- secrets typed into a form not saved yet

_SEALED_FOR = "\x00for"


def seal(ws: Workspace, kind: Kind, name: str, definition: Any, body: dict[str, Any]) -> str:
    """The secrets typed into a form (those *body* holds) not saved yet,
    encrypted with the workspace's key, so the next step of the form keeps
    them without ever showing them ("" when there are none). Bound to *kind*
    and *name*; the stored secrets an edit keeps are not in it."""
    typed = {path: definitions.get_path(body, path) for path in definitions.secret_fields(definition)}
    kept = {path: str(value) for path, value in typed.items() if value}
    if not kept:
        return ""
    return ws.secrets.encrypt({**kept, _SEALED_FOR: f"{kind}:{name}"}) or ""


def unseal(ws: Workspace, kind: Kind, name: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """*body* with the secrets :func:`seal` kept put back where the form left
    them empty; a token sealed for another definition, or not readable, adds nothing."""
    if not token:
        return body
    try:
        sealed = ws.secrets.decrypt(token)
    except ConfigError:
        return body
    if sealed.pop(_SEALED_FOR, None) != f"{kind}:{name}":
        return body
    out = copy.deepcopy(body)
    for path, value in sealed.items():
        if not definitions.get_path(out, path):
            definitions.set_path(out, path, value)
    return out
