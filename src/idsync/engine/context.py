"""What a run knows about itself: its job, its clock and its environment.

Transforms and expressions never ask the system for the time or the
environment: they read this context. A run builds it once, so every record
of the run sees the same ``%NOW%`` and tests fix the clock by passing ``now``.

Only some environment variables are readable (``%ENV:NAME%``,
``context.env``): those the job lists in ``environment`` and those of the
``IDSYNC_EXPRESSION_ENV`` setting, never an ``IDSYNC_*`` one (the secret key,
the database URL). Everything else, the variables that ``env:`` secrets name
included, stays out of the context.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from idsync import settings
from idsync.errors import ConfigError

NEVER_READABLE = "IDSYNC_"
"""Prefix of the variables no job may read, whatever it lists."""


def readable_names(listed: Iterable[str] = ()) -> frozenset[str]:
    """The variables a job listing *listed* may read: those, and the
    ``IDSYNC_EXPRESSION_ENV`` setting's, less every ``IDSYNC_*`` one."""
    names = {n.strip() for n in settings.get("expression_env").split(",")} | {n.strip() for n in listed}
    return frozenset(n for n in names if n and not n.upper().startswith(NEVER_READABLE))


@dataclass(frozen=True)
class RunContext:
    """The job being run, the instant the run started (UTC) and the environment.

    ``environ`` is a snapshot of the readable variables (``readable``) that
    are set: a variable changed during the run does not make two records of
    the same run disagree.
    """

    job_name: str
    now: datetime
    environ: Mapping[str, str]
    readable: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ConfigError(
                f"run context of job {self.job_name!r}: the clock must give an aware datetime (UTC)"
            )

    @classmethod
    def create(
        cls,
        job_name: str,
        now: datetime | None = None,
        environ: Mapping[str, str] | None = None,
        readable: Iterable[str] = (),
    ) -> RunContext:
        """A context for *job_name*: *now* defaults to the current time, *environ*
        to ``os.environ``, of which only the variables in *readable* (the job's
        ``environment``) or the ``IDSYNC_EXPRESSION_ENV`` setting are kept
        (:func:`readable_names`); *now* is converted to UTC."""
        instant = datetime.now(UTC) if now is None else now
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ConfigError(
                f"run context of job {job_name!r}: 'now' must be timezone-aware (got {instant.isoformat()})"
            )
        names = readable_names(readable)
        source = os.environ if environ is None else environ
        env = {name: source[name] for name in names if name in source}
        return cls(
            job_name=job_name, now=instant.astimezone(UTC), environ=MappingProxyType(env), readable=names
        )

    def refusal(self, name: str) -> str | None:
        """Why environment variable *name* cannot be read in this run, or None when it can."""
        if name.upper().startswith(NEVER_READABLE):
            return f"environment variable {name!r} cannot be read: IDSYNC_* variables never are"
        if name not in self.readable:
            return (
                f"environment variable {name!r} is not readable by this job: list it in the job's "
                "environment (or in the IDSYNC_EXPRESSION_ENV setting)"
            )
        return None

    @property
    def utc(self) -> datetime:
        """``now`` in UTC (it already is when built by :meth:`create`)."""
        return self.now.astimezone(UTC)

    def variables(self) -> dict[str, str]:
        """The ``%VARIABLE%`` table of static values (names upper-case, without the %).

        ``%ENV:NAME%`` is not listed here: it reads ``environ`` by name.
        """
        utc = self.utc
        return {
            "NOW": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "DATE": utc.strftime("%Y-%m-%d"),
            "TIME": utc.strftime("%H:%M:%S"),
            "JOBNAME": self.job_name,
        }


VARIABLE_HELP: dict[str, str] = {
    "NOW": "the run's start time, ISO 8601 in UTC (2024-05-01T12:30:00Z)",
    "DATE": "the run's start date in UTC (2024-05-01)",
    "TIME": "the run's start time of day in UTC (12:30:00)",
    "JOBNAME": "the name of the job being run",
    "ENV:NAME": "the value of environment variable NAME, which the job lists in environment "
    "(the run fails if it is not set)",
}
"""One line of help per variable, for ``--help`` and the reference docs."""
