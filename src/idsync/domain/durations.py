"""Spans of time as users write them in definitions: ``90s``, ``1h30m``, ``2d``, ``PT1H``.

One parser for every duration a definition holds (schedule repeats and
limits, workflow expiry and escalation), so each is written, checked and
exported the same way.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_SHORT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_DURATION_HELP = "write e.g. 90s, 15m, 1h30m, 2d, PT1H30M or a number of seconds"


def parse_duration(value: Any) -> timedelta:
    """A positive whole number of seconds from the forms users write.

    Years and months are refused: they have no fixed length, and a repeat or
    a time limit must mean the same span every time.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    elif isinstance(value, int | float):
        if value != int(value):
            raise ValueError(f"{value!r} is not a whole number of seconds")
        result = timedelta(seconds=int(value))
    elif isinstance(value, str):
        result = _parse_duration_text(value)
    else:
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    if result.microseconds:
        raise ValueError(f"{value!r} is not a whole number of seconds")
    if result <= timedelta(0):
        raise ValueError(f"a duration must be longer than zero; {_DURATION_HELP}")
    return result


def _parse_duration_text(value: str) -> timedelta:
    text = re.sub(r"\s+", "", value)
    if text.isdigit():
        return timedelta(seconds=int(text))
    upper = text.upper()
    if upper.startswith("P"):
        if re.match(r"^P(?:\d+Y)|^P[^T]*\d+M", upper):
            raise ValueError(f"{value!r}: years and months have no fixed length; use days (P30D)")
        iso = _ISO.match(upper)
        if iso is None or upper in ("P", "PT") or upper.endswith("T"):
            raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
    else:
        short = _SHORT.match(text.lower())
        if short is None or not text:
            raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in short.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The short text form: ``1h30m``, ``2d``, ``90s`` is ``1m30s``."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A positive span of whole seconds; written and exported as ``1h30m``."""

