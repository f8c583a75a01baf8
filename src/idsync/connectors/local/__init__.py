"""The embedded directory: an identity store in a local file with the LDAP data model.

``open_local_directory`` is the connector factory registered as kind ``local``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from idsync import settings
from idsync.connectors.local.directory import LocalDirectory

if TYPE_CHECKING:  # not imported at run time: the writer process starts faster without pydantic
    from idsync.domain.definitions import LocalStore

__all__ = ["LocalDirectory", "open_local_directory"]


def open_local_directory(definition: LocalStore, secrets: Mapping[str, str]) -> LocalDirectory:
    """Open (creating on first use) the directory file of *definition*.

    A relative path is under the idsync home folder; the store has no secrets.
    ``suffix_attributes`` of the definition, when given, are the suffix
    entry's (see :mod:`idsync.connectors.local.suffix`).
    """
    path = Path(definition.path).expanduser()
    if not path.is_absolute():
        path = settings.home() / path
    return LocalDirectory(
        path, definition.suffix, suffix_attributes=definition.suffix_attributes,
        indexed_attributes=definition.indexed_attributes,
    )
