"""Opening a source's file, with the one-line errors every file source gives."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from idsync.errors import ConnectorError


def open_source_file(path: Path, what: str, hint: str = "check the source's path", **kwargs: Any) -> IO[Any]:
    """``open(path, **kwargs)``, with OS errors turned into a ConnectorError
    naming *what* ("CSV file", "Excel file") and the *hint*.

    A missing file is a ConnectorError too, not a NotFoundError: the source
    the caller named exists, it is its file that cannot be read."""
    try:
        handle: IO[Any] = open(path, **kwargs)  # noqa: SIM115 - the caller closes it
        return handle
    except FileNotFoundError as exc:
        raise ConnectorError(f"{what} not found: {path} ({hint})") from exc
    except IsADirectoryError as exc:
        raise ConnectorError(f"{what} {path} is a directory, not a file ({hint})") from exc
    except PermissionError as exc:
        raise ConnectorError(f"{what} {path} cannot be read: permission denied (check the file's permissions)") from exc
    except OSError as exc:
        raise ConnectorError(f"{what} {path} cannot be opened: {exc.strerror or exc}") from exc
