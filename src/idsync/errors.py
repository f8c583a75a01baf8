"""The one exception tree of idsync.

Every error a user can cause or meet derives from :class:`IdsyncError`; the
engine decides what to do from the class alone::

    IdsyncError                  anything idsync reports to a user
    ├── ConfigError              a bad definition or setting: refused before anything runs
    ├── NotFoundError            no such store, source, job, run, plan or entry
    ├── StateConflictError       the object is not in a state that allows this
    │   │                        ("plan 3 is already applied", "run 4 has finished")
    │   └── VersionConflictError an edit based on a version that is no longer the stored one
    ├── PermissionDeniedError    the acting principal lacks the role this needs
    ├── RecordError              one record failed: counted and listed, the run goes on
    │   └── ConflictError        the object changed since the plan was computed: left untouched
    ├── ConnectorError           a store, source or the database could not do what was asked
    │   ├── TransientError       worth retrying (server down, timeout, busy, locked)
    │   └── AuthError            credentials refused
    └── RunAborted               the run was stopped by a guard (e.g. an empty source): failed
        └── RunTerminated        stopped on request (terminate, time limit): terminated

A front end maps the class to its own answer without reading messages: the
CLI to an exit code, an HTTP API to a status (NotFoundError 404,
StateConflictError 409, PermissionDeniedError 403, ConfigError 422, ...).

Every error may carry a ``field`` (the input it is about, e.g. ``schedule``
or ``mapping.mail``) and a ``hint`` (what to do next, in words). Messages
and hints raised below the front ends never name a CLI command: each front
end renders the hint its own way.

Adapters translate driver errors with ``raise ... from exc`` so the cause
stays in the chain for the logs while the user sees one line. The message of
an error is that line: it says what failed, where, and what to do about it.
Input echoed in a message goes through :func:`quoted`, so a name of 100,000
characters does not come back whole.
"""

from __future__ import annotations


class IdsyncError(Exception):
    """Something went wrong in idsync."""

    def __init__(self, message: str | None = None, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.field = field
        self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(IdsyncError):
    """The definition or setting is not valid."""


class NotFoundError(IdsyncError):
    """The object does not exist."""


class StateConflictError(IdsyncError):
    """The object is not in a state that allows this."""


class VersionConflictError(StateConflictError):
    """The object changed since the version this edit is based on was read."""


class PermissionDeniedError(IdsyncError):
    """The acting principal is not allowed to do this."""


class RecordError(IdsyncError):
    """One record could not be processed.

    Carries the record's key, the attribute involved (if any) and the source
    line (if known) so the run report can point at the exact place.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        key: str | None = None,
        attribute: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, field=attribute, hint=hint)
        self.key = key
        self.attribute = attribute
        self.line = line


class ConflictError(RecordError):
    """The object changed since the plan was computed; it was left untouched."""


class ConnectorError(IdsyncError):
    """A store or source could not complete the operation."""


class TransientError(ConnectorError):
    """The server could not be reached or is busy; retrying later may succeed."""


class AuthError(ConnectorError):
    """The server refused the credentials."""


class RunAborted(IdsyncError):
    """The run was stopped before it completed."""


class RunTerminated(RunAborted):
    """The run was stopped on request (terminate, or its time limit); what it applied stays."""


ECHO_LIMIT = 80
"""The most characters of a user's input an error message repeats."""


def quoted(value: object, limit: int = ECHO_LIMIT) -> str:
    """*value* as an error message quotes it: ``'hr'``; past *limit* characters,
    its start, an ellipsis and its length: ``'aaaa…' (100,000 characters)``."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit] + '…'!r} ({len(text):,} characters)"


def clipped(text: str, limit: int = 4 * ECHO_LIMIT) -> str:
    """*text* (a message that may repeat input) cut after *limit* characters,
    with an ellipsis and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
