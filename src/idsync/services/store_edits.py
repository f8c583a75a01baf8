"""Composing an identity store from a front end's answers: a new one, or an edit.

A front end (command options, a portal form) collects the fields it was
given into a :class:`StoreEdit`; :func:`new_store` and :func:`edit_store`
turn it into a validated store definition, or refuse it with a ConfigError
naming the field. :func:`review_changes` then shows what saving would do,
secrets masked, and :func:`save_store` saves. Nothing is written before that.

Secrets (the bind password, the notification server's password and webhook
key) are values like any other here; they are never shown: the review
masks them, and a changed secret shows as changed, not as its text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from idsync.errors import ConfigError, NotFoundError
from idsync.services import definitions
from idsync.services.review import Review, review
from idsync.services.workspace import Workspace

NOUN = "identity store"
MASK = "********"

SERVER_FIELDS = (
    "host", "port", "tls", "ca_file", "sender", "username", "password", "default_to", "default_cc",
    "timeout", "webhook_url", "webhook_secret", "allow_plaintext_login",
)
"""The fields of a notification server, as :class:`StoreEdit.notification` takes them."""

WORKFLOW_FIELDS = (
    "manual", "scheduled", "held", "approvers", "approver_group", "required_approvals", "expires_after",
    "stale_after", "escalation",
)
"""The fields of a workflow, as :class:`StoreEdit.workflow` takes them."""


@dataclass(frozen=True)
class StoreEdit:
    """What to set in a store; fields not named stay as they are.

    *fields* are top-level store fields (``url``, ``bind_dn``, ``base_dn``,
    ``path``...); *notification* the notification server's fields (see
    :data:`SERVER_FIELDS`). An empty text clears an optional field. With
    *remove_notification*, the store has no notification server afterwards.
    """

    fields: Mapping[str, Any] = field(default_factory=dict)
    notification: Mapping[str, Any] = field(default_factory=dict)
    remove_notification: bool = False
    workflow: Mapping[str, Any] = field(default_factory=dict)
    """Workflow fields to set (see :data:`WORKFLOW_FIELDS`); ``escalation``
    takes a mapping of its own fields, or None to remove the escalation."""
    remove_workflow: bool = False

    @property
    def empty(self) -> bool:
        return not (self.fields or self.notification or self.remove_notification or self.workflow or self.remove_workflow)


def _model(kind: str) -> Any:
    """The definition class of a store *kind*, or None for an unknown kind."""
    from idsync.domain.definitions import LdapStore, LocalStore

    return {"ldap": LdapStore, "local": LocalStore}.get(kind)


def _apply(body: dict[str, Any], edit: StoreEdit, label: str) -> dict[str, Any]:
    """*body* (plain data, secrets included) with *edit* applied."""
    kind = str(body.get("kind", ""))
    model = _model(kind)
    out = dict(body)
    for name, value in edit.fields.items():
        if name in ("name", "kind"):
            raise ConfigError(f"{label}: the {name} of a store cannot be changed", field=name,
                              hint="add a store of the new name or kind, then remove this one")
        if model is not None and name not in model.model_fields:
            takers = [k for k in ("ldap", "local") if name in _model(k).model_fields]
            where = f"{' or '.join(takers)} stores only" if takers else "not a store field"
            raise ConfigError(f"{label}: {name} does not apply to a {kind} store ({where})", field=name)
        out[name] = _cleared(model, name, value)
    if edit.remove_notification:
        if edit.notification:
            raise ConfigError(f"{label}: give notification server settings or remove it, not both",
                              field="notification_server")
        out["notification_server"] = None
    elif edit.notification:
        unknown = [n for n in edit.notification if n not in SERVER_FIELDS]
        if unknown:
            raise ConfigError(f"{label}: notification_server.{unknown[0]} is not a notification server field",
                              field="notification_server")
        server = dict(out.get("notification_server") or {})
        for name, value in edit.notification.items():
            server[name] = None if value == "" else value
        if edit.notification.get("username") == "":
            server["password"] = None  # no login: no password either
        out["notification_server"] = {k: v for k, v in server.items() if v is not None}
    return _apply_workflow(out, edit, label)


def _apply_workflow(out: dict[str, Any], edit: StoreEdit, label: str) -> dict[str, Any]:
    """*out* with the workflow of *edit* merged in (or removed)."""
    if edit.remove_workflow:
        if edit.workflow:
            raise ConfigError(f"{label}: give workflow settings or remove the workflow, not both", field="workflow")
        out["workflow"] = None
        return out
    if not edit.workflow:
        return out
    unknown = [n for n in edit.workflow if n not in WORKFLOW_FIELDS]
    if unknown:
        raise ConfigError(f"{label}: workflow.{unknown[0]} is not a workflow field", field="workflow")
    workflow = dict(out.get("workflow") or {})
    for name, value in edit.workflow.items():
        if name == "escalation" and isinstance(value, Mapping):
            escalation = dict(workflow.get("escalation") or {})
            escalation.update({k: v for k, v in value.items() if v is not None})
            workflow["escalation"] = escalation
        else:
            workflow[name] = None if value == "" else value
    out["workflow"] = {k: v for k, v in workflow.items() if v is not None}
    return out


def _cleared(model: Any, name: str, value: Any) -> Any:
    """An empty text for an optional field is no value (the field's default)."""
    if value == "" and model is not None and name in model.model_fields and model.model_fields[name].default is None:
        return None
    return value


def _parse(body: dict[str, Any], label: str) -> Any:
    return definitions.parse("store", body, label)


def new_store(name: str, kind: str, edit: StoreEdit) -> Any:
    """The validated definition of a new store *name* of *kind* with *edit*'s fields."""
    body: dict[str, Any] = {"name": name, "kind": kind}
    return _parse(_apply(body, edit, f"store {name!r}"), f"store {name!r}")


def edit_store(current: Any, edit: StoreEdit) -> Any:
    """*current* (as loaded, secrets included) with *edit* applied and validated again."""
    if edit.empty:
        raise ConfigError(f"store {current.name!r}: nothing to change was given", hint="name a field to change")
    body = current.model_dump(mode="json", by_alias=True, exclude_none=True)
    return _parse(_apply(body, edit, f"store {current.name!r}"), f"store {current.name!r}")


def load_store(ws: Workspace, name: str) -> Any:
    """Store *name* with its secrets, for editing."""
    return definitions.load(ws, "store", name).definition


def find_store(ws: Workspace, name: str) -> Any | None:
    try:
        return load_store(ws, name)
    except NotFoundError:
        return None


def masked(definition: Any, other: Any | None = None) -> dict[str, Any] | None:
    """*definition* as plain data with each secret shown as ``********``
    (``env:NAME`` references as written); a secret that differs from the same
    one in *other* shows as ``******** (changed)``, so a review can say a
    secret changed without showing it."""
    if definition is None:
        return None
    body: dict[str, Any] = definition.model_dump(mode="json", by_alias=True)
    for path in definitions.secret_fields(definition):
        value = definitions.get_path(definition, path)
        if value is None or str(value).startswith("env:"):
            continue
        changed = other is not None and definitions.get_path(other, path) not in (None, value)
        *sections, last = path.split(".")
        node: Any = body
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[last] = f"{MASK} (changed)" if changed else MASK
    return body


def review_changes(ws: Workspace, store: Any) -> Review:
    """What saving *store* would do, secrets masked; nothing is saved."""
    stored = find_store(ws, store.name)
    after = masked(store, stored)
    if stored is not None and after is not None:
        for path in definitions.secret_fields(store):
            kept = definitions.get_path(stored, path)
            if kept is not None and definitions.get_path(store, path) is None:
                # saving keeps a stored secret that is not given again
                definitions.set_path(after, path, kept if str(kept).startswith("env:") else MASK)
    return review(NOUN, after, masked(stored))


def save_store(ws: Workspace, store: Any, *, based_on: Collection[str] | None = None) -> str:
    """Save; returns "created", "updated" or "unchanged" (*based_on*: see definitions.save)."""
    outcome: str = definitions.save(ws, "store", store, based_on=based_on)
    return outcome
