"""Active Directory specifics of the LDAP store, as small pure pieces.

An ``ldap`` store with ``flavor: active_directory`` is still spoken to over
plain LDAPv3; what differs is a handful of conventions, each kept here so it
can be tested without a domain controller (captured examples in
``tests/unit/test_activedirectory.py``):

- **objectGUID** is the anchor. It travels as 16 bytes in Microsoft's mixed
  byte order (the first three fields little-endian, the rest as is) and is
  shown, compared and stored as the GUID text Windows tools print
  (``8c4ac332-975f-4717-ad7b-ba4a4e968fff``).
- **userAccountControl** holds account flags as a decimal integer; an account
  is disabled by setting the ``ACCOUNTDISABLE`` bit (0x2) on its current value
  and enabled by clearing it, leaving every other flag alone.
- **unicodePwd** is written as the password in double quotes, encoded
  UTF-16-LE, and only over an encrypted connection (the server refuses it
  otherwise, with an error that does not say why).
- **Range retrieval**: a multi-valued attribute larger than the server's
  ``MaxValRange`` (1500 values by default) comes back as
  ``member;range=0-1499`` instead of ``member``; the rest is fetched with
  follow-up requests for ``member;range=1500-*`` and so on until the server
  answers with a range ending in ``*``.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from idsync.domain.changes import Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.errors import ConnectorError, RecordError

ANCHOR_ATTRIBUTE = "objectGUID"
ACCOUNT_CONTROL_ATTRIBUTE = "userAccountControl"
PASSWORD_ATTRIBUTE = "unicodePwd"  # noqa: S105 - an attribute name, not a password

# ------------------------------------------------------------------ objectGUID


def guid_to_text(raw: bytes) -> str:
    """The GUID text of an ``objectGUID`` value (16 bytes, Microsoft byte order)."""
    if len(raw) != 16:
        raise ValueError(f"an objectGUID has 16 bytes, not {len(raw)}")
    return str(uuid.UUID(bytes_le=raw))


def guid_to_bytes(text: str) -> bytes:
    """The 16 bytes of the GUID *text* (with or without braces), in Microsoft byte order."""
    try:
        return uuid.UUID(text.strip().strip("{}")).bytes_le
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a GUID (expected 8-4-4-4-12 hexadecimal digits)") from exc


def guid_filter_value(text: str) -> str:
    """The GUID *text* as an escaped filter value: ``(objectGUID=\\32\\c3...)`` matches it."""
    return "".join(f"\\{b:02x}" for b in guid_to_bytes(text))


# ------------------------------------------------------------------ userAccountControl


class AccountFlag(enum.IntFlag):
    """Bits of ``userAccountControl`` (MS-ADTS 2.2.16)."""

    SCRIPT = 0x1
    ACCOUNTDISABLE = 0x2
    HOMEDIR_REQUIRED = 0x8
    LOCKOUT = 0x10
    PASSWD_NOTREQD = 0x20
    PASSWD_CANT_CHANGE = 0x40
    ENCRYPTED_TEXT_PWD_ALLOWED = 0x80
    TEMP_DUPLICATE_ACCOUNT = 0x100
    NORMAL_ACCOUNT = 0x200
    INTERDOMAIN_TRUST_ACCOUNT = 0x800
    WORKSTATION_TRUST_ACCOUNT = 0x1000
    SERVER_TRUST_ACCOUNT = 0x2000
    DONT_EXPIRE_PASSWORD = 0x10000
    MNS_LOGON_ACCOUNT = 0x20000
    SMARTCARD_REQUIRED = 0x40000
    TRUSTED_FOR_DELEGATION = 0x80000
    NOT_DELEGATED = 0x100000
    USE_DES_KEY_ONLY = 0x200000
    DONT_REQ_PREAUTH = 0x400000
    PASSWORD_EXPIRED = 0x800000
    TRUSTED_TO_AUTH_FOR_DELEGATION = 0x1000000
    PARTIAL_SECRETS_ACCOUNT = 0x4000000


def parse_account_control(value: str | None) -> int:
    """The flags of a ``userAccountControl`` value; a missing value is a normal account.

    The attribute is a 32-bit integer; a negative text (a signed reading of
    the same bits) is taken as its unsigned equivalent.
    """
    if value is None or not value.strip():
        return int(AccountFlag.NORMAL_ACCOUNT)
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise ValueError(f"userAccountControl {value!r} is not an integer") from exc
    return number & 0xFFFFFFFF


def disabled_value(current: str | None) -> str:
    """``userAccountControl`` of the account once disabled: *current* with ACCOUNTDISABLE set."""
    return str(parse_account_control(current) | AccountFlag.ACCOUNTDISABLE)


def enabled_value(current: str | None) -> str:
    """``userAccountControl`` of the account once enabled: *current* with ACCOUNTDISABLE cleared."""
    return str(parse_account_control(current) & ~AccountFlag.ACCOUNTDISABLE & 0xFFFFFFFF)


def is_disabled(value: str | None) -> bool:
    return bool(parse_account_control(value) & AccountFlag.ACCOUNTDISABLE)


class AccountControl:
    """How the planner disables an account on Active Directory (the *disable*
    action of a job whose destination is an AD store and that sets no
    ``disable_with``): read ``userAccountControl`` into the index, then
    replace it with the same flags plus ACCOUNTDISABLE."""

    attributes: tuple[str, ...] = (ACCOUNT_CONTROL_ATTRIBUTE,)

    def disable(self, attrs: Attrs) -> Modification | None:
        """The modification that disables the account with *attrs*; None when it already is.

        The current value is the modification's ``before``, so applying a
        stored plan leaves an account whose flags changed in between alone.
        """
        current = attrs.get_values(ACCOUNT_CONTROL_ATTRIBUTE)
        try:
            wanted = disabled_value(current[0] if current else None)
        except ValueError as exc:
            raise RecordError(
                f"{exc}; cannot compute the disabled value", attribute=ACCOUNT_CONTROL_ATTRIBUTE
            ) from exc
        if current and current[0].strip() == wanted:
            return None
        return Modification(ModOp.REPLACE, ACCOUNT_CONTROL_ATTRIBUTE, (wanted,), current)


# ------------------------------------------------------------------ unicodePwd


def encode_password(password: str) -> bytes:
    """The ``unicodePwd`` value of *password*: the password in double quotes, UTF-16-LE."""
    return f'"{password}"'.encode("utf-16-le")


def decode_password(raw: bytes) -> str:
    """The password inside a ``unicodePwd`` value (the inverse of :func:`encode_password`)."""
    text = raw.decode("utf-16-le")
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ValueError("a unicodePwd value is a password in double quotes")
    return text[1:-1]


class ActiveDirectoryCodec:
    """Turns attribute values to and from the bytes Active Directory expects.

    ``objectGUID`` is read as GUID text; ``unicodePwd`` is written as
    :func:`encode_password`, and refused (a record error naming the cause)
    when the connection is not encrypted. Everything else is UTF-8.
    """

    def __init__(self, *, tls: bool) -> None:
        self.tls = tls

    def decode(self, attribute: str, value: bytes) -> str:
        if attribute.lower() == "objectguid" and len(value) == 16:
            return guid_to_text(value)
        return value.decode("utf-8", "surrogateescape")

    def encode(self, attribute: str, value: str) -> bytes:
        if attribute.split(";", 1)[0].lower() == "unicodepwd":
            if not self.tls:
                raise RecordError(
                    "unicodePwd can only be written over an encrypted connection: "
                    "use an ldaps:// URL or start_tls: true for this store",
                    attribute=PASSWORD_ATTRIBUTE,
                )
            return encode_password(value)
        return value.encode("utf-8", "surrogateescape")


# ------------------------------------------------------------------ range retrieval

_RANGE = re.compile(r"^range=(\d+)-(\d+|\*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Range:
    """One ``;range=LOW-HIGH`` attribute description; ``high`` None stands for ``*`` (the last part)."""

    attribute: str
    low: int
    high: int | None

    @property
    def is_last(self) -> bool:
        return self.high is None

    def next_request(self) -> str | None:
        """The attribute description asking for the values after this part, or None after the last."""
        if self.high is None:
            return None
        return f"{self.attribute};range={self.high + 1}-*"


def parse_range(description: str) -> Range | None:
    """The range of an attribute description such as ``member;range=0-1499``; None without one.

    Other options are kept in the attribute name (``member;x-opt;range=0-9``
    gives ``member;x-opt``); the option name is matched without regard to case.
    """
    if ";" not in description:
        return None
    name, *options = description.split(";")
    found: tuple[int, int | None] | None = None
    kept: list[str] = []
    for option in options:
        m = _RANGE.match(option)
        if m is None:
            kept.append(option)
            continue
        high = m.group(2)
        found = (int(m.group(1)), None if high == "*" else int(high))
    if found is None:
        return None
    low, high_value = found
    if high_value is not None and high_value < low:
        raise ConnectorError(f"the server returned an impossible range {description!r}")
    return Range(";".join([name, *kept]), low, high_value)


V = TypeVar("V")
Fetch = Callable[[str], Mapping[str, Sequence[V]]]


def complete_ranges(attrs: Mapping[str, Sequence[V]], fetch: Fetch[V], *, dn: str = "") -> dict[str, list[V]]:
    """*attrs* with every ranged attribute replaced by all of its values.

    For each ``name;range=LOW-HIGH`` in *attrs*, ``fetch(description)`` is
    called with the next description (``name;range=HIGH+1-*``) and must
    return the attributes of a base search of the same entry for it, until
    the server answers with a range ending in ``*``. An answer that does not
    continue where the previous part ended raises ConnectorError: an
    incomplete ``member`` list must never reach the planner, which would
    remove the members it did not see.
    """
    out: dict[str, list[V]] = {}
    ranged: list[tuple[Range, Sequence[V]]] = []
    for description, values in attrs.items():
        part = parse_range(description)
        if part is None:
            out.setdefault(description, []).extend(values)
        else:
            ranged.append((part, values))
    for part, values in ranged:
        collected = list(values)
        current = part
        while not current.is_last:
            request = current.next_request()
            assert request is not None
            answer = fetch(request)
            following = _part_for(answer, current.attribute)
            if following is None or following[0].low != (current.high or 0) + 1:
                got = f"{following[0].low}" if following else "nothing"
                raise ConnectorError(
                    f"range retrieval of {current.attribute!r}{' of ' + dn if dn else ''} asked for "
                    f"values from {(current.high or 0) + 1} and got {got}; the values were not all read"
                )
            current, more = following
            collected.extend(more)
        out.setdefault(part.attribute, []).extend(collected)
    return out


def _part_for(answer: Mapping[str, Sequence[V]], attribute: str) -> tuple[Range, Sequence[V]] | None:
    wanted = attribute.lower()
    for description, values in answer.items():
        part = parse_range(description)
        if part is not None and part.attribute.lower() == wanted:
            return part, values
    return None
