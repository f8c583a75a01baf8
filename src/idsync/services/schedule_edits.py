"""Composing a schedule from a front end's answers: a new one, or an edit of
its trigger list and settings.

Triggers are numbered from 1 as every front end shows them. Nothing is
saved here: saving goes through the review in :mod:`idsync.services.schedules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idsync.errors import ConfigError
from idsync.services import definitions


def new_schedule(
    name: str,
    trigger: Mapping[str, Any],
    *,
    description: str = "",
    enabled: bool = True,
    misfire: str = "run_once",
    grace: str = "1h",
) -> Any:
    """The validated schedule *name* with one trigger."""
    return definitions.parse("schedule", {
        "name": name, "description": description, "enabled": enabled,
        "triggers": [dict(trigger)], "misfire": misfire, "grace": grace,
    })


@dataclass(frozen=True)
class ScheduleEdit:
    """What to change in a stored schedule; fields left at their default stay.

    Trigger edits apply in this order: enable, disable, remove (by their
    numbers before the edit), then *add* (after clearing them all when
    *replace_triggers*).
    """

    add: Mapping[str, Any] | None = None
    replace_triggers: bool = False
    remove: int | None = None
    enable: int | None = None
    disable: int | None = None
    description: str | None = None
    misfire: str | None = None
    grace: str | None = None


def edit_schedule(current: Any, edit: ScheduleEdit) -> Any:
    """*current* with *edit* applied and validated again; ConfigError naming what is wrong."""
    data = current.model_dump(mode="json")
    triggers: list[dict[str, Any]] = data["triggers"]
    for field_name, number in (("remove_trigger", edit.remove), ("enable_trigger", edit.enable),
                               ("disable_trigger", edit.disable)):
        if number is not None and not 1 <= number <= len(triggers):
            raise ConfigError(
                f"trigger {number}: schedule {current.name!r} has triggers 1 to {len(triggers)}", field=field_name
            )
    if edit.enable is not None:
        triggers[edit.enable - 1]["enabled"] = True
    if edit.disable is not None:
        triggers[edit.disable - 1]["enabled"] = False
    if edit.remove is not None:
        del triggers[edit.remove - 1]
    if edit.add is not None:
        if edit.replace_triggers:
            triggers.clear()
        triggers.append(dict(edit.add))
    elif edit.replace_triggers:
        raise ConfigError("replacing the triggers needs the trigger to put in their place", field="triggers")
    for key, value in (("description", edit.description), ("misfire", edit.misfire), ("grace", edit.grace)):
        if value is not None:
            data[key] = value
    return definitions.parse("schedule", data)
