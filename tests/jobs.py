"""Job definitions for engine tests: a job named ``people`` copying source
``hr`` into a container of store ``dir``, with the mappings a test needs."""

from __future__ import annotations

from typing import Any

from idsync.domain.definitions import JobDefinition

PEOPLE = "ou=People,dc=example,dc=org"


def job_definition(mappings: list[dict[str, Any]], container: str = PEOPLE, **overrides: Any) -> JobDefinition:
    """The job with *mappings* into *container*; *overrides* replace any other field."""
    data: dict[str, Any] = {
        "name": "people",
        "source": "hr",
        "destination": {"store": "dir", "container": container},
        "mappings": mappings,
    }
    data.update(overrides)
    return JobDefinition.model_validate(data)
