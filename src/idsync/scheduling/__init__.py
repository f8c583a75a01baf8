"""Scheduling: when triggers are due (pure recurrence in :mod:`.triggers`)
and the scheduler that turns due times into runs."""
