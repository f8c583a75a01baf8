"""Every setting of idsync, declared once.

Each setting has a name, a default, the ``IDSYNC_*`` environment variable
that overrides it, and a help text; ``idsync settings`` prints this table, so
the documentation can never drift from the code.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str

    @property
    def env_var(self) -> str:
        return "IDSYNC_" + self.name.upper()

    def value(self) -> str:
        return os.environ.get(self.env_var, "") or self.default

    def shown(self) -> str:
        """The value as it may be displayed: a secret key only as "(set)", and a
        URL with its password masked, as everywhere else idsync shows one."""
        value = self.value()
        if self.name in ("secret_key", "metrics_token"):
            return "(set)" if value else ""
        return mask_url_password(value)


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)", re.I)


def mask_url_password(text: str) -> str:
    """*text* with the password of any ``scheme://user:password@host`` in it
    replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "~/.idsync", "Folder for the default database, secret key and embedded directories."),
    Setting("database_url", "", "SQLAlchemy URL of the idsync database; default: SQLite in the home folder."),
    Setting(
        "database_busy_timeout", "30",
        "Seconds a SQLite database waits for another process's write before it is reported locked.",
    ),
    Setting("secret_key", "", "Fernet key encrypting secrets at rest; default: a key file in the home folder (mode 0600)."),
    Setting("log_level", "WARNING", "Level of the console log (DEBUG, INFO, WARNING, ERROR)."),
    Setting(
        "log_format", "text",
        "Format of the console log: text, or json (one JSON object per line with time, level, logger, message "
        "and the run_id, collection, job, node and request_id it concerns).",
    ),
    Setting(
        "metrics_token", "",
        "When set, /metrics of idsync serve answers only requests bearing it (Authorization: Bearer <token>); "
        "empty: /metrics is open to whoever reaches the port.",
    ),
    Setting("ldap_window", "64", "Asynchronous LDAP operations kept outstanding on each write connection."),
    Setting(
        "ldap_connections", "auto",
        "Connections a run spreads its LDAP writes over (1 sends every write on one); auto: 1 when the server "
        "is on this machine and it has at most 2 cores, else 2.",
    ),
    Setting("ldap_page_size", "1000", "Entries per page of an LDAP paged search."),
    Setting(
        "run_lease_seconds", "60",
        "Lease of a job run or preview started on its own (idsync job run, idsync job preview), renewed every "
        "third of it; when its process dies, the run or plan is marked failed once it runs out (by a scheduler, "
        "or by the next command that lists or starts runs or plans).",
    ),
    Setting(
        "workers", "in-process",
        "Where scheduled runs execute: in-process (threads of the scheduler or serve process) or external "
        "(deferred to `idsync worker` processes; PostgreSQL only).",
    ),
    Setting("worker_concurrency", "4", "Runs one `idsync worker` process executes at once."),
    Setting(
        "clock_speed", "1",
        "For tests only: how many times faster than real time schedulers look at schedules (leases and runs "
        "keep real time); with clock_start, the instant (Unix seconds) from which the fast clock counts.",
    ),
    Setting("clock_start", "", "For tests only: see clock_speed."),
    Setting("batch_size", "1000", "Changes per batch between planner, store and applier."),
    Setting(
        "csv_field_limit", "16777216",
        "Longest CSV field accepted, in characters (long member lists); a row may hold twice this in all.",
    ),
    Setting(
        "excel_cell_limit", "16777216",
        "Longest Excel cell text accepted, in characters; a row may hold twice this in all. "
        "A longer one is a record error for its row, never held in memory whole.",
    ),
    Setting(
        "excel_sheet_limit", "4294967296",
        "Largest worksheet of an .xlsx workbook, in bytes once decompressed; a larger one is refused unread.",
    ),
    Setting(
        "excel_part_limit", "268435456",
        "Largest other part of an .xlsx workbook (shared strings, styles), in bytes once decompressed; "
        "a larger one is refused unread.",
    ),
    Setting("base_url", "", "Address of the portal, for links to runs in notifications (e.g. https://idsync.example.org)."),
    Setting("outbox_retry_seconds", "30", "First wait before a notification that could not be delivered is tried again."),
    Setting("outbox_retry_max_seconds", "3600", "Longest wait between two delivery attempts (the wait doubles up to it)."),
    Setting("outbox_give_up_seconds", "86400", "A notification not delivered within this time is marked failed."),
    Setting("outbox_poll_seconds", "5", "How often the sender loop looks for messages to deliver."),
    Setting("notify_changes_shown", "20", "How many changed objects a notification lists, with their attribute changes (0: none)."),
    Setting("notify_send_wait_seconds", "30", "How long a manual collection run waits to deliver its own notifications before it exits."),
    Setting("notify_templates", "", "Folder of notification templates overriding the shipped ones (e.g. failed.subject.txt)."),
    Setting(
        "record_time_limit_seconds", "5",
        "Longest time the expressions of one record may take (a decimal number of seconds); "
        "past it the record fails, naming the mapping, and the run goes on.",
    ),
    Setting(
        "expression_max_length", "16777216",
        "Longest text, list or other collection an expression or a pattern replacement may produce, "
        "in characters or items; a record going over it fails, naming the mapping.",
    ),
    Setting(
        "expression_env", "",
        "Environment variables (names, comma-separated) every job's expressions and %ENV:NAME% values "
        "may read, besides those the job lists in environment; IDSYNC_* variables never are.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str:
    """The current value of setting *name* (environment first, then default)."""
    return _BY_NAME[name].value()


def get_int(name: str) -> int:
    from idsync.errors import ConfigError

    raw = get(name)
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{_BY_NAME[name].env_var}={raw!r} is not a whole number") from exc


def get_float(name: str) -> float:
    from idsync.errors import ConfigError

    raw = get(name)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{_BY_NAME[name].env_var}={raw!r} is not a number")
    return value


def home() -> Path:
    """The idsync home folder, created on first use open to its owner only
    (mode 0700): it holds the database, the secret key and embedded
    directories. An existing folder keeps the mode it has."""
    path = Path(get("home")).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def database_url() -> str:
    return get("database_url") or f"sqlite:///{home() / 'idsync.db'}"
