"""Distinguished names (RFC 4514): parse, escape, format, compare.

Directories compare DNs by their *normalized* form: attribute types without
regard to case (and aliases such as ``commonName`` folded to ``cn``), values
case-folded with insignificant spaces removed, the AVAs of a multi-valued RDN
in a fixed order. :func:`normalize_dn` builds that form; it runs once per
entry on large runs, so DNs without escapes take a fast path and results are
cached.

Parsing is strict where RFC 4514 is (special characters must be escaped) and
lenient where servers are (spaces around separators, LDAPv2 quoted values).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from idsync.domain.entry import Scope
from idsync.errors import ConfigError

AVA = tuple[str, str]
RDN = tuple[AVA, ...]
DN = tuple[RDN, ...]

# RFC 4519 long names of the attribute types that appear in DNs, folded to the short name.
_ALIASES = {
    "commonname": "cn",
    "surname": "sn",
    "countryname": "c",
    "localityname": "l",
    "stateorprovincename": "st",
    "streetaddress": "street",
    "organizationname": "o",
    "organizationalunitname": "ou",
    "userid": "uid",
    "domaincomponent": "dc",
    "rfc822mailbox": "mail",
    "emailaddress": "email",
    "pkcs9email": "email",
}

_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
_NEEDS_FULL_PARSE = re.compile(r'[\\"+#<>;\x00-\x1f\x7f]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPECIAL = frozenset(',+"\\<>;')
_NEEDS_ESCAPE = re.compile(r'[,+"\\<>;\x00]|^[ #]|(?<=.) $', re.DOTALL)
_ESCAPABLE = frozenset(',+"\\<>;#= ')
_HEX = frozenset("0123456789abcdefABCDEF")
# BER tags of the string types a '#'-value may carry (octet, UTF8, printable, T61, IA5).
_BER_STRINGS = frozenset({0x04, 0x0C, 0x13, 0x14, 0x16})


def _error(dn: str, why: str) -> ConfigError:
    return ConfigError(f"invalid DN {dn!r}: {why}")


def _check_type(dn: str, name: str) -> str:
    name = name.strip()
    if name[:4].lower() == "oid.":
        name = name[4:]
    if not _TYPE.fullmatch(name):
        raise _error(dn, f"bad attribute type {name!r}" if name else "missing attribute type")
    return name


def _decode_ber(dn: str, text: str) -> str:
    """The string inside a '#'-prefixed BER value (``#0403616263`` is ``abc``)."""
    hexpart = text[1:].strip()
    if len(hexpart) < 4 or len(hexpart) % 2 or not set(hexpart) <= _HEX:
        raise _error(dn, f"'#' value {text!r} is not a hex string")
    raw = bytes.fromhex(hexpart)
    tag, length, body = raw[0], raw[1], raw[2:]
    if length & 0x80:  # long form length
        count = length & 0x7F
        length = int.from_bytes(body[:count], "big")
        body = body[count:]
    if tag not in _BER_STRINGS or length != len(body):
        raise _error(dn, f"'#' value {text!r} is not a BER-encoded string")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(dn, f"'#' value {text!r} is not UTF-8") from exc


def _flush(dn: str, buf: bytearray, out: list[str]) -> None:
    if buf:
        try:
            out.append(buf.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _error(dn, "hex escapes are not valid UTF-8") from exc
        buf.clear()


def _parse_value(dn: str, i: int) -> tuple[str, int]:
    """Parse the value starting at *i*; return it and the index of the separator after it."""
    n = len(dn)
    while i < n and dn[i] == " ":
        i += 1
    if i < n and dn[i] == "#":
        j = i
        while j < n and dn[j] not in ",+":
            j += 1
        return _decode_ber(dn, dn[i:j]), j
    if i < n and dn[i] == '"':
        return _parse_quoted(dn, i + 1)
    parts: list[str] = []
    buf = bytearray()
    trailing = 0  # unescaped spaces at the end, dropped
    while i < n:
        ch = dn[i]
        if ch in ",+":
            break
        if ch == "\\":
            pair = dn[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                buf.append(int(pair, 16))
                i += 3
            elif i + 1 < n and dn[i + 1] in _ESCAPABLE:
                _flush(dn, buf, parts)
                parts.append(dn[i + 1])
                i += 2
            else:
                raise _error(dn, f"bad escape at position {i}")
            trailing = 0
            continue
        if ch in _SPECIAL or ch == "\x00":
            raise _error(dn, f"character {ch!r} at position {i} must be escaped")
        _flush(dn, buf, parts)
        trailing = trailing + 1 if ch == " " else 0
        parts.append(ch)
        i += 1
    _flush(dn, buf, parts)
    value = "".join(parts)
    return (value[:-trailing] if trailing else value), i


def _parse_quoted(dn: str, i: int) -> tuple[str, int]:
    parts: list[str] = []
    n = len(dn)
    while i < n and dn[i] != '"':
        if dn[i] == "\\" and i + 1 < n:
            i += 1
        parts.append(dn[i])
        i += 1
    if i >= n:
        raise _error(dn, "unterminated quoted value")
    i += 1
    while i < n and dn[i] == " ":
        i += 1
    if i < n and dn[i] not in ",+":
        raise _error(dn, f"unexpected {dn[i]!r} after quoted value at position {i}")
    return "".join(parts), i


def _parse_simple(dn: str) -> DN | None:
    """Fast path for DNs without escapes, quotes or multi-valued RDNs (None: not simple)."""
    if _NEEDS_FULL_PARSE.search(dn):
        return None
    rdns: list[RDN] = []
    for part in dn.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _TYPE.fullmatch(name):
            return None
        rdns.append(((name, value.strip(" ")),))
    return tuple(rdns)


def _parse(dn: str) -> DN:
    if not dn.strip():
        return ()
    simple = _parse_simple(dn)
    if simple is not None:
        return simple
    rdns: list[RDN] = []
    avas: list[AVA] = []
    i, n = 0, len(dn)
    while True:
        eq = dn.find("=", i)
        if eq < 0:
            raise _error(dn, f"missing '=' after position {i}")
        name = _check_type(dn, dn[i:eq])
        value, i = _parse_value(dn, eq + 1)
        avas.append((name, value))
        if i >= n:
            rdns.append(tuple(avas))
            return tuple(rdns)
        if dn[i] == ",":
            rdns.append(tuple(avas))
            avas = []
        i += 1
        if i >= n:
            raise _error(dn, "ends with a separator")


def parse_dn(dn: str) -> DN:
    """The RDNs of *dn*, each a tuple of (attribute, unescaped value) pairs.

    ``parse_dn("cn=a\\,b+uid=x,dc=org")`` is
    ``((("cn", "a,b"), ("uid", "x")), (("dc", "org"),))``. The empty DN (the
    root) has no RDNs. Raises ConfigError naming the problem.
    """
    return _parse_cached(dn)


@lru_cache(maxsize=4096)
def _parse_cached(dn: str) -> DN:
    return _parse(dn)


def parse_dn_uncached(dn: str) -> DN:
    """:func:`parse_dn` without its cache: for DNs read once each (the records
    of a file), which would only push the DNs a run keeps using out of the cache."""
    return _parse(dn)


def escape_dn_value(value: str) -> str:
    """*value* escaped for use in a DN (RFC 4514 section 2.4)."""
    if not _NEEDS_ESCAPE.search(value):  # most values: one regex scan, no copy
        return value
    out = []
    for ch in value:
        if ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    if out and (value[0] == " " or value[0] == "#"):
        out[0] = "\\" + value[0]
    if len(value) > 1 and value[-1] == " ":
        out[-1] = "\\ "
    return "".join(out)


def _escape_canonical(value: str) -> str:
    """Like :func:`escape_dn_value`, and control characters as hex pairs, so
    a canonical form never contains one (stores use them as separators)."""
    escaped = escape_dn_value(value)
    if _CONTROL.search(escaped):
        return _CONTROL.sub(lambda m: f"\\{ord(m.group()):02x}", escaped)
    return escaped


def format_dn(rdns: Iterable[Iterable[tuple[str, str]]]) -> str:
    """The string form of parsed RDNs (the inverse of :func:`parse_dn`)."""
    return ",".join("+".join(f"{t}={escape_dn_value(v)}" for t, v in rdn) for rdn in rdns)


def fold_value(value: str) -> str:
    """caseIgnoreMatch preparation: compatibility-normalized, case-folded,
    leading/trailing spaces removed and inner runs of spaces collapsed."""
    if not value.isascii():
        value = unicodedata.normalize("NFKC", value)
    return " ".join(value.casefold().split())


def _norm_type(name: str) -> str:
    low = name.lower()
    return _ALIASES.get(low, low)


@lru_cache(maxsize=65536)
def normalized_rdns(dn: str) -> tuple[str, ...]:
    """The canonical string of each RDN of *dn*, leaf first (see :func:`normalize_dn`)."""
    if not _NEEDS_FULL_PARSE.search(dn):
        out: list[str] = []
        for part in dn.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not _TYPE.fullmatch(name):
                break
            folded = fold_value(value)
            if not folded.isascii():  # compatibility mapping may yield special characters
                folded = _escape_canonical(folded)
            out.append(f"{_norm_type(name)}={folded}")
        else:
            return tuple(out) if dn.strip() else ()
    return tuple(
        "+".join(sorted(f"{_norm_type(t)}={_escape_canonical(fold_value(v))}" for t, v in rdn))
        for rdn in _parse(dn)
    )


@lru_cache(maxsize=65536)
def normalize_dn(dn: str) -> str:
    """The canonical form of *dn* for comparisons.

    Types lower-cased (long aliases folded to the short name), values
    case-folded with insignificant spaces removed, multi-valued RDNs sorted,
    values escaped canonically: ``"UID=J  Doe , OU=People"`` becomes
    ``"uid=j doe,ou=people"``.
    """
    return ",".join(normalized_rdns(dn))


def dn_equal(a: str, b: str) -> bool:
    """True when *a* and *b* name the same entry."""
    return a == b or normalize_dn(a) == normalize_dn(b)


def rdn_dn(attribute: str, value: str, parent: str) -> str:
    """The DN of the entry named ``attribute=value`` under *parent* (value escaped)."""
    rdn = f"{attribute}={escape_dn_value(value)}"
    return f"{rdn},{parent}" if parent.strip() else rdn


def parent_dn(dn: str) -> str:
    """The DN of the parent of *dn* ("" for a single RDN or the root)."""
    if not _NEEDS_FULL_PARSE.search(dn) and "=" in dn.partition(",")[0]:
        return dn.partition(",")[2].strip()
    return format_dn(parse_dn(dn)[1:])


def rdn_of(dn: str) -> RDN:
    """The first RDN of *dn* as (attribute, value) pairs (empty for the root)."""
    rdns = parse_dn(dn)
    return rdns[0] if rdns else ()


def is_within(dn: str, base: str, scope: Scope) -> bool:
    """True when a search of *base* with *scope* would reach *dn*."""
    entry = normalized_rdns(dn)
    top = normalized_rdns(base)
    depth = len(entry) - len(top)
    if depth < 0 or entry[depth:] != top:
        return False
    if scope is Scope.BASE:
        return depth == 0
    if scope is Scope.ONE:
        return depth == 1
    return True
