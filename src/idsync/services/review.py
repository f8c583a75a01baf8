"""Review your changes: what is about to be saved, and how it differs from what is stored.

Every create and edit flow (collections, schedules; CLI, API and portal
alike) ends here before saving: :func:`review` turns the new definition and
the stored one (None when creating) into a readable summary of every field,
defaults included, and the differences field by field. It is pure: it reads
nothing and saves nothing, so a front end can show it, ask for confirmation,
and only then save.

Nested settings are shown by their dotted path (``notifications.enabled``);
lists are shown whole (``jobs``, ``triggers``), one numbered item per line,
because a reordered list is one change, not a change at every position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ItemRenderer = Callable[[str, Any], str | None]
"""Renders one item of a list field (field name, item) as text; None for the default."""

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its dotted path and both values, as text."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class Review:
    """What a create or edit would save."""

    noun: str
    name: str
    action: Action
    summary: list[tuple[str, str]] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return self.action != "unchanged"

    def lines(self) -> list[str]:
        """The review as plain text lines, the way the CLI prints it."""
        heading = {"create": "new", "update": "changed", "unchanged": "unchanged"}[self.action]
        out = [f"{self.noun} {self.name!r} ({heading})"]
        for label, value in self.summary:
            out.extend(_labelled(f"  {label}", value))
        if self.action == "update":
            out.append("differences from the stored version:")
            for change in self.changes:
                out.extend(_labelled(f"  {_label(change.field)}", change.before, "    was"))
                out.extend(_labelled("    now", change.after))
        elif self.action == "unchanged":
            out.append("no differences from the stored version: nothing to save")
        return out


def _labelled(label: str, value: str, first: str | None = None) -> list[str]:
    """``label: value``, or the label then the value's lines indented when it has several."""
    if first is not None:
        return [f"{label}:", *_labelled(first, value)]
    if "\n" not in value:
        return [f"{label}: {value}"]
    indent = " " * (len(label) - len(label.lstrip()) + 2)
    return [f"{label}:", *(indent + line for line in value.splitlines())]


def render(value: Any, name: str = "", render_item: ItemRenderer | None = None) -> str:
    """A value as people read it: yes/no, none, comma lists, numbered items."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(f"{key}: {render(item, str(key))}" for key, item in value.items())
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return ", ".join(render(item) for item in value)
        texts = []
        for index, item in enumerate(value, start=1):
            text = render_item(name, item) if render_item is not None else None
            texts.append(f"{index}. {text if text is not None else render(item, name)}")
        return "\n".join(texts)
    return str(value)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted paths; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def _label(path: str) -> str:
    return path.replace("_", " ")


def _plain(definition: Any) -> dict[str, Any]:
    if definition is None:
        return {}
    if hasattr(definition, "model_dump"):
        data: dict[str, Any] = definition.model_dump(mode="json", by_alias=True)
        return data
    return dict(definition)


def diff(
    old: Any, new: Any, render_item: ItemRenderer | None = None
) -> list[FieldChange]:
    """The fields that differ between two definitions (models or plain data), in
    the order of the new one, then the fields only the old one has."""
    before, after = flatten(_plain(old)), flatten(_plain(new))
    changes = []
    for path in [*after, *(p for p in before if p not in after)]:
        if before.get(path, _ABSENT) == after.get(path, _ABSENT):
            continue
        if _section_swapped(path, before, after):
            continue  # a section set or removed whole: its fields say so, one by one
        leaf = path.rsplit(".", 1)[-1]
        changes.append(
            FieldChange(
                path,
                render(before[path], leaf, render_item) if path in before else "(not set)",
                render(after[path], leaf, render_item) if path in after else "(not set)",
            )
        )
    return changes


def _section_swapped(path: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether *path* is an empty (None) section on one side and has fields on the other."""
    inner = f"{path}."
    if before.get(path, _ABSENT) is None and path not in after:
        return any(key.startswith(inner) for key in after)
    if after.get(path, _ABSENT) is None and path not in before:
        return any(key.startswith(inner) for key in before)
    return False


def summary(new: Any, render_item: ItemRenderer | None = None) -> list[tuple[str, str]]:
    """Every field of the definition, defaults included, as (label, text)."""
    flat = flatten(_plain(new))
    flat.pop("name", None)
    return [(_label(path), render(value, path.rsplit(".", 1)[-1], render_item)) for path, value in flat.items()]


def review(noun: str, new: Any, old: Any | None = None, render_item: ItemRenderer | None = None) -> Review:
    """The review of saving *new* where *old* is stored (None: nothing is stored yet)."""
    name = str(_plain(new).get("name", ""))
    if old is None:
        return Review(noun, name, "create", summary(new, render_item))
    changes = diff(old, new, render_item)
    action: Action = "update" if changes else "unchanged"
    return Review(noun, name, action, summary(new, render_item), changes)


_ABSENT = object()
