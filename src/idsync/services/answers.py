"""Checking a front end's answers one at a time, as they are given.

A wizard asks one question after another; each answer is checked here as
soon as it is given, so a typo is asked again at once rather than found
when the whole definition is validated at the end, every answer lost. Each
check returns the answer in the form the definition takes, or raises a
ConfigError whose message says what is wrong and what is expected.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, Notifications
from idsync.domain.definitions import Name
from idsync.errors import ConfigError
from idsync.services import definitions
from idsync.services.definitions import Kind
from idsync.services.workspace import Workspace

_NAME: TypeAdapter[str] = TypeAdapter(Name)


def split(text: str) -> list[str]:
    """Comma-separated items, stripped, empty ones left out."""
    return [part.strip() for part in text.split(",") if part.strip()]


def new_name(ws: Workspace, kind: Kind, text: str) -> str:
    """A valid name no definition of *kind* has yet."""
    name = text.strip()
    try:
        _NAME.validate_python(name)
    except ValidationError as exc:
        raise ConfigError(
            f"{name!r} is not a valid name: use letters, digits, spaces, '_', '.' and '-', "
            "starting with a letter or digit", field="name",
        ) from exc
    if any(d.name == name for d in definitions.list_definitions(ws, kind)):
        raise ConfigError(f"a {definitions.NOUNS[kind]} named {name!r} exists", field="name",
                          hint="choose another name, or edit that one")
    return name


def existing(ws: Workspace, kind: Kind, names: Sequence[str]) -> list[str]:
    """*names*, each the name of a stored definition of *kind*."""
    known = [d.name for d in definitions.list_definitions(ws, kind)]
    for name in names:
        if name not in known:
            listed = ", ".join(known) if known else "none yet"
            raise ConfigError(f"there is no {definitions.NOUNS[kind]} {name!r} (there are: {listed})", field=kind)
    return list(names)


def on_failure(text: str) -> str:
    """``abort`` or ``continue`` (the first letter is enough)."""
    value = text.strip().lower()
    for choice in ("abort", "continue"):
        if value and choice.startswith(value):
            return choice
    raise ConfigError(f"{text!r}: answer abort or continue", field="on_failure")


def email_addresses(text: str) -> list[str]:
    """Comma-separated e-mail addresses, at least one, each valid and listed once."""
    addresses = split(text)
    if not addresses:
        raise ConfigError("give at least one e-mail address (name@example.org)", field="notifications.recipients")
    try:
        Notifications(recipients=addresses)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigError(message, field="notifications.recipients") from exc
    return addresses


def notify_triggers(names: Sequence[str]) -> list[str]:
    """Known notification triggers, at least one, each once."""
    if not names:
        raise ConfigError(f"choose at least one of {', '.join(ALL_NOTIFY_TRIGGERS)}", field="notifications.triggers")
    for name in names:
        if name not in ALL_NOTIFY_TRIGGERS:
            raise ConfigError(
                f"{name!r} is not a notification trigger (use {', '.join(ALL_NOTIFY_TRIGGERS)})",
                field="notifications.triggers",
            )
    if len(set(names)) != len(names):
        raise ConfigError("a notification trigger is listed twice", field="notifications.triggers")
    return list(names)
