"""Translation of python-ldap errors into the idsync exception tree.

python-ldap raises one exception class per LDAP result code, with a dict in
``args[0]`` holding ``desc`` (the code's description), ``info`` (the
server's diagnostic message), ``matched`` and, for results of asynchronous
operations, ``msgid``. The engine acts on our classes only:

- a result about one entry (already exists, no such object, schema
  violation, ...) is a :class:`RecordError` for that change: counted, the run
  goes on;
- the server gone, a timeout or a busy server is a :class:`TransientError`;
- refused credentials are an :class:`AuthError`;
- a TLS handshake failure is a plain :class:`ConnectorError` (retrying will
  not help until the certificate or ``ca_file`` is fixed).

Messages are one line and never contain the bind password (python-ldap
never echoes it; we only ever format DNs, descriptions and diagnostics).
"""

from __future__ import annotations

import errno
import re
from typing import Any

import ldap

from idsync.errors import AuthError, ConnectorError, RecordError, TransientError

# Results meaning "the connection or the server, not this entry".
TRANSIENT: tuple[type[Exception], ...] = (
    ldap.SERVER_DOWN,
    ldap.TIMEOUT,
    ldap.CONNECT_ERROR,
    ldap.BUSY,
    ldap.UNAVAILABLE,
)
AUTH: tuple[type[Exception], ...] = (
    ldap.INVALID_CREDENTIALS,
    ldap.INAPPROPRIATE_AUTH,
    ldap.STRONG_AUTH_REQUIRED,
    ldap.AUTH_UNKNOWN,
)

# errno values of a TCP connection that never got established: the server is
# unreachable, as opposed to a TLS handshake that failed once connected.
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ENOTCONN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
    }
)

_ATTR_IN_INFO = (
    re.compile(r"^(?:modify/\w+: )?([A-Za-z][\w-]*(?:;[\w-]+)*):"),
    re.compile(r"attribute '([^']+)'"),
)


def details(exc: BaseException) -> dict[str, Any]:
    """The dict python-ldap puts in ``args[0]`` (empty when there is none)."""
    if exc.args and isinstance(exc.args[0], dict):
        return exc.args[0]
    return {}


def _clean(text: object) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text or "").split())


def describe(exc: BaseException) -> str:
    """One line: the result's description and the server's diagnostic, if any."""
    info = details(exc)
    desc = _clean(info.get("desc")) or type(exc).__name__
    diag = _clean(info.get("info"))
    if diag and diag != "(unknown error code)" and diag.lower() != desc.lower():
        return f"{desc}: {diag}"
    return desc


def is_tls_failure(exc: BaseException) -> bool:
    """True when a connect error on a TLS connection came from the handshake."""
    if not isinstance(exc, (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)):
        return False
    code = details(exc).get("errno")
    return code not in _UNREACHABLE_ERRNOS


def connection_error(exc: BaseException, url: str, doing: str, *, tls: bool) -> ConnectorError:
    """The idsync error for a failure of the connection as a whole (not one entry)."""
    if tls and is_tls_failure(exc):
        return ConnectorError(
            f"{url}: TLS handshake failed while {doing}: the server certificate was not accepted; "
            "check ca_file, the host name in the URL, and the server's certificate"
        )
    what = describe(exc)
    if isinstance(exc, ldap.INVALID_CREDENTIALS):
        return AuthError(f"{url}: {doing} refused: invalid credentials; check bind_dn and the bind password")
    if isinstance(exc, AUTH):
        return AuthError(f"{url}: {doing} refused: {what}")
    if isinstance(exc, (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)):
        return TransientError(
            f"{url}: cannot reach the LDAP server while {doing} ({what}); "
            "check the URL and that the server is running"
        )
    if isinstance(exc, ldap.TIMEOUT):
        return TransientError(f"{url}: no answer from the LDAP server while {doing} (timed out)")
    if isinstance(exc, TRANSIENT):
        return TransientError(f"{url}: the LDAP server could not serve the request while {doing} ({what})")
    return ConnectorError(f"{url}: {doing} failed: {what}")


def is_record_level(exc: BaseException) -> bool:
    """True when the error concerns the entry of one operation, not the connection."""
    return not isinstance(exc, TRANSIENT + AUTH)


def record_error(exc: BaseException, verb: str, dn: str, key: str) -> RecordError:
    """The RecordError for one failed operation, naming the DN and the server's diagnostic."""
    info = details(exc)
    message = f"{verb} {dn} failed: {describe(exc)}"
    matched = _clean(info.get("matched"))
    if matched and isinstance(exc, ldap.NO_SUCH_OBJECT):
        message += f" (nearest existing entry: {matched})"
    attribute = None
    diag = _clean(info.get("info"))
    for pattern in _ATTR_IN_INFO:
        m = pattern.search(diag)
        if m:
            attribute = m.group(1)
            break
    return RecordError(message, key=key, attribute=attribute)
