"""Turn a run event into an e-mail message: subject, plain text and HTML.

Messages come from Jinja2 templates shipped in ``templates/``. The HTML
template is autoescaped, so a collection name or an error message carrying
markup arrives as text. Operators override templates from a directory: a
file there named ``<trigger>.<part>`` (e.g. ``failed.subject.txt``) replaces
that part for one trigger, a file named ``<part>`` (e.g. ``body.html``)
replaces it for every trigger; anything not overridden comes from the
shipped set. Rendering is pure: no I/O besides reading the templates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from idsync.domain.results import Counts, ErrorItem
from idsync.errors import ConfigError
from idsync.notify.events import ERRORS_SHOWN, RunEvent
from idsync.notify.rules import HEADLINE_ORDER, TRIGGER_MEANINGS, check_triggers

PARTS: tuple[str, ...] = ("subject.txt", "body.txt", "body.html")
"""The template parts of one message, as file names."""

PASSWORDS = "passwords"
"""The template prefix of the generated-passwords message (not a trigger)."""

COUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts) if f.name != "not_approved")
"""Count columns in the order messages show them; changes left out by a
partial approval are named only where there are some (:func:`_count_summary`)."""

_SHIPPED = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Message:
    """A rendered message, ready to be put in the outbox."""

    subject: str
    text: str
    html: str


def _plural(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else (plural or word + 's')}"


def _state_label(state: str) -> str:
    return state.replace("_", " ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.isoformat(sep=" ", timespec="seconds")


_CHANGE_WORDS = {"membership": ("membership change", "membership changes")}


def _change_summary(event: RunEvent) -> str:
    """What the run changed in the admin's words: ``25 created, 3 updated,
    2 membership changes``; ``nothing changed`` when it changed nothing."""
    parts = []
    for name, number in event.change_counts:
        if name in _CHANGE_WORDS:
            one, many = _CHANGE_WORDS[name]
            parts.append(f"{number} {one if number == 1 else many}")
        else:
            parts.append(f"{number} {name}")
    return ", ".join(parts) if parts else "nothing changed"


def _started_by(event: RunEvent) -> str:
    """Who or what started the run, as a phrase: ``the schedule``, ``alice (manually)``."""
    if event.trigger == "schedule":
        return "the schedule"
    who = event.requested_by or "an operator"
    return f"{who} ({event.trigger})" if event.trigger not in ("manual", "") else f"{who}, manually"


def _error_line(item: ErrorItem) -> str:
    """One record error; the line number is not repeated when the message starts with it."""
    where = item.key or item.dn or "(no key)"
    if item.attribute:
        where += f" [{item.attribute}]"
    message = item.message
    if item.line is not None and not message.startswith(f"line {item.line}"):
        where += f" line {item.line}"
    return f"{where}: {message}"


def _count_summary(counts: Counts) -> str:
    """Non-zero counts as ``read 12, created 3``; says so when there are none."""
    data = counts.to_dict()
    shown = [f"{name} {data[name]}" for name in COUNT_NAMES if data[name]]
    if counts.not_approved:
        shown.append(f"not approved {counts.not_approved}")
    return ", ".join(shown) if shown else "nothing read"


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise ConfigError(
                f"notification templates folder {str(templates_dir)!r} does not exist: "
                "create it or unset the templates folder setting"
            )
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(_SHIPPED)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["plural"] = _plural
    env.filters["state_label"] = _state_label
    env.filters["duration"] = _duration
    env.filters["when"] = _when
    env.filters["count_summary"] = _count_summary
    env.filters["change_summary"] = _change_summary
    env.filters["started_by"] = _started_by
    env.filters["error_line"] = _error_line
    return env


def render_parts(prefix: str, context: dict[str, Any], templates_dir: Path | None) -> Message:
    """Render the three parts of message *prefix* (``held``, ``passwords``,
    ``request``...), an override in *templates_dir* first; ConfigError for a
    broken or missing template."""
    env = _environment(templates_dir.resolve() if templates_dir is not None else None)
    rendered: list[str] = []
    for part in PARTS:
        label = part
        names = [f"{prefix}.{part}", part] if prefix != PASSWORDS else [f"{prefix}.{part}"]
        try:
            template = env.select_template(names)
            label = template.name or part
            rendered.append(template.render(context))
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"notification template {exc.filename or exc.name!r} line {exc.lineno}: {exc.message}; fix the template"
            ) from exc
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"notification template {exc.name!r} not found: restore it or remove the override") from exc
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"notification template {label!r} could not be rendered: {exc}; fix the template"
            ) from exc
    subject = " ".join(rendered[0].split())
    return Message(subject=subject, text=rendered[1], html=rendered[2])


def headline(triggers: Sequence[str]) -> str:
    """The trigger a message leads with: the most pressing of those that fired."""
    return min(triggers, key=HEADLINE_ORDER.index)


def run_command(run_id: int) -> str:
    """The command that shows the whole run."""
    return f"idsync run show {run_id}"


def render(
    event: RunEvent,
    triggers: str | Sequence[str],
    *,
    templates_dir: Path | None = None,
    changes_shown: int | None = None,
) -> Message:
    """The one message telling the recipients of *event*'s collection that
    *triggers* fired (a trigger name, or every one that fired for the run).

    It leads with the most pressing trigger (its override templates apply)
    and names them all. ConfigError for an unknown trigger or a broken
    override template.
    """
    fired = [triggers] if isinstance(triggers, str) else list(triggers)
    check_triggers(fired)
    if not fired:
        raise ValueError("a message needs at least one trigger")
    lead = headline(fired)
    shown = event.errors[:ERRORS_SHOWN]
    total = max(event.error_total, len(event.errors))
    changes = event.changes if changes_shown is None else event.changes[: max(changes_shown, 0)]
    context: dict[str, Any] = {
        "event": event,
        "trigger": lead,
        "triggers": [name for name in HEADLINE_ORDER if name in fired],
        "trigger_meaning": TRIGGER_MEANINGS[lead],
        "trigger_meanings": TRIGGER_MEANINGS,
        "collection": event.collection,
        "state": event.state,
        "counts": event.counts.to_dict(),
        "count_names": COUNT_NAMES,
        "jobs": event.jobs,
        "errors": shown,
        "error_total": total,
        "more_errors": total - len(shown),
        "changes": changes,
        "changes_total": max(event.changes_total, len(changes)),
        "more_changes": max(event.changes_total, len(changes)) - len(changes),
        "held": event.held,
        "groups": event.groups,
        "duration": event.duration_seconds,
        "link": event.link,
        "command": run_command(event.run_id),
    }
    return render_parts(lead, context, templates_dir)


def render_passwords(
    collection: str,
    run_id: int,
    items: Sequence[tuple[str, str, str]],
    *,
    templates_dir: Path | None = None,
) -> Message:
    """The separate message carrying the passwords a run generated, as (dn, key, password).

    It goes only to the password recipients, never into the run report.
    """
    context: dict[str, Any] = {
        "collection": collection,
        "run_id": run_id,
        "items": [{"dn": dn, "key": key, "password": password} for dn, key, password in items],
    }
    return render_parts(PASSWORDS, context, templates_dir)
