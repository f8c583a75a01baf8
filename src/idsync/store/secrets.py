"""Secrets at rest: encrypted with Fernet, or referenced as ``env:NAME``.

Bind, SMTP and database passwords never reach the database in clear text.
A definition's secret fields are taken out of its JSON body and stored as
one Fernet token (:class:`SecretBox`). The key comes from
``IDSYNC_SECRET_KEY`` or from ``<home>/secret.key``, created on first use
readable by its owner only; a key file others can read is refused, since
it would make the encryption pointless. A key file that is missing while
the database holds secrets encrypted with it is never replaced by a new
key: that would only make those secrets unreadable for good, and hide the
loss until something tries to read them.

A secret may instead be ``env:NAME``: the value is read from the
environment only when a connection opens (:func:`resolve_secret`), so it is
never stored at all. Such references are not secret and may be shown;
everything else is redacted (:func:`redact`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsync import settings
from idsync.domain.definitions import ENV_PREFIX
from idsync.errors import ConfigError
from idsync.store.tables import DEFINITION_TABLES, generated_passwords, outbox

KEY_FILE_NAME = "secret.key"
REDACTED = "********"

_WRONG_KEY = (
    "cannot decrypt stored secrets: the secret key differs from the one they were saved with "
    "(IDSYNC_SECRET_KEY or <home>/secret.key)"
)


class SecretBox:
    """Encrypts a definition's secrets into one token, and back."""

    def __init__(self, key: bytes | str) -> None:
        self._key = key.encode("ascii", "replace") if isinstance(key, str) else key
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)",
                hint="generate one with Fernet.generate_key() of the Python package cryptography",
            ) from exc

    @classmethod
    def from_settings(cls, encrypted: Callable[[], int] | None = None) -> SecretBox:
        """The box of this installation: ``IDSYNC_SECRET_KEY``, else the home key
        file. *encrypted* counts what the database holds encrypted: a missing
        key file is created only when that is nothing."""
        key = settings.get("secret_key").strip()
        if key:
            return cls(key)
        return cls(load_or_create_key_file(settings.home() / KEY_FILE_NAME, encrypted=encrypted))

    def encrypt(self, secrets: Mapping[str, str]) -> str | None:
        """One token holding every secret of a definition; None when there are none."""
        if not secrets:
            return None
        plain = json.dumps(dict(secrets), sort_keys=True, separators=(",", ":"))
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> dict[str, str]:
        """The secrets saved in *token* (empty for None)."""
        if not token:
            return {}
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise ConfigError(_WRONG_KEY) from exc
        data = json.loads(plain)
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ConfigError("stored secrets are not a mapping of names to strings: save them again")
        return data

    def same(self, first: str | None, second: str | None) -> bool:
        """Whether two tokens hold the same secrets (tokens differ even for equal secrets)."""
        if first == second:
            return True
        if not first or not second:
            return False
        try:
            return self.decrypt(first) == self.decrypt(second)
        except ConfigError:
            return False

    def derive(self, purpose: str) -> str:
        """A stable name of this installation for *purpose* (hex HMAC-SHA256 of
        it under the key): the same on every node, other for another key, and
        telling nothing about the key."""
        return hmac.new(self._key, purpose.encode("utf-8"), hashlib.sha256).hexdigest()


def load_or_create_key_file(path: Path, *, encrypted: Callable[[], int] | None = None) -> bytes:
    """The key in *path*, created with mode 0600 if missing; refused if others
    can read it, and not created while *encrypted* (what the database holds
    encrypted) counts anything: those need the key that was lost."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    held = encrypted() if encrypted is not None else 0
    if held:
        raise ConfigError(
            f"the secret key file {path} is missing, but {held} encrypted secret(s) in the database "
            "were saved with the key it held; a new key would not read them",
            field="secret_key",
            hint="restore the key file from a backup, or give its key in IDSYNC_SECRET_KEY",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Written in full to a private temporary file, then linked into place:
    # the key file never exists half-written or with a wider mode, and a
    # concurrent first start keeps whichever key was linked first.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key_file(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return key


def _read_key_file(path: Path) -> bytes:
    with open(path, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secret key file {path} is open to other users", hint=f"let only its owner read it (chmod 600 {path})"
            )
        key = handle.read().strip()
    if not key:
        raise ConfigError(f"secret key file {path} is empty: restore it from a backup")
    return key


def count_encrypted(session: Session) -> int:
    """How many tokens of the secret key the database holds: definitions with
    secrets, generated passwords waiting for delivery, outbox messages."""
    total = 0
    for table in DEFINITION_TABLES.values():
        total += session.execute(
            select(func.count()).select_from(table).where(table.c.secrets.is_not(None), table.c.secrets != "")
        ).scalar_one()
    for table in (generated_passwords, outbox):
        total += session.execute(select(func.count()).select_from(table)).scalar_one()
    return int(total)


def resolve_secret(value: str) -> str:
    """The secret itself: ``env:NAME`` is read from the environment, anything else is as is."""
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    if not name:
        raise ConfigError("secret reference 'env:' names no environment variable: write env:NAME")
    try:
        return os.environ[name]
    except KeyError:
        raise ConfigError(
            f"environment variable {name} (referenced by a secret) is not set"
        ) from None


def is_reference(value: str | None) -> bool:
    """True for ``env:NAME``, which names a secret without being one."""
    return value is not None and value.startswith(ENV_PREFIX)


def redact(value: str | None) -> str | None:
    """What may be shown of a secret: a reference as is, anything else masked."""
    if value is None:
        return None
    return value if is_reference(value) else REDACTED
