"""Notifications: which triggers fire for a run, the messages they send, and their delivery.

:mod:`~idsync.notify.rules` and :mod:`~idsync.notify.render` are pure; the
delivery modules beside them do the I/O.
"""

from __future__ import annotations

from idsync.notify.events import ERRORS_SHOWN, JobOutcome, RunEvent
from idsync.notify.render import Message, render, render_passwords
from idsync.notify.rules import TRIGGER_MEANINGS, TRIGGERS, fired

__all__ = [
    "ERRORS_SHOWN",
    "TRIGGERS",
    "TRIGGER_MEANINGS",
    "JobOutcome",
    "Message",
    "RunEvent",
    "fired",
    "render",
    "render_passwords",
]
