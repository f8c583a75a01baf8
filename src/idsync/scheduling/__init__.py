"""Scheduling: when triggers are due. Pure recurrence in :mod:`.triggers`, its words in :mod:`.describe`; the loop that acts on it is :mod:`idsync.runtime.scheduler`."""
