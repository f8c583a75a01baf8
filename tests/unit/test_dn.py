"""RFC 4514 DNs: parsing, escaping, normalization and tree relations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.dn import (
    dn_equal,
    escape_dn_value,
    format_dn,
    is_within,
    normalize_dn,
    normalized_rdns,
    parent_dn,
    parse_dn,
    rdn_dn,
    rdn_of,
)
from idsync.domain.entry import Scope
from idsync.errors import ConfigError


def test_parse_simple_dn() -> None:
    assert parse_dn("uid=jdoe,ou=People,dc=example,dc=org") == (
        (("uid", "jdoe"),),
        (("ou", "People"),),
        (("dc", "example"),),
        (("dc", "org"),),
    )


def test_parse_empty_dn_is_the_root() -> None:
    assert parse_dn("") == ()
    assert normalize_dn("") == ""


def test_parse_multi_valued_rdn() -> None:
    assert parse_dn("cn=John+uid=jdoe,dc=org") == ((("cn", "John"), ("uid", "jdoe")), (("dc", "org"),))


@pytest.mark.parametrize("char", [",", "+", '"', "\\", "<", ">", ";"])
def test_backslash_escapes_of_special_characters(char: str) -> None:
    assert parse_dn(f"cn=a\\{char}b,dc=org")[0] == (("cn", f"a{char}b"),)


def test_hex_escapes_decode_as_utf8() -> None:
    assert parse_dn(r"cn=a\2Cb\2bc,dc=org")[0] == (("cn", "a,b+c"),)
    assert parse_dn(r"cn=J\C3\A9r\C3\B4me,dc=org")[0] == (("cn", "Jérôme"),)


def test_escaped_leading_and_trailing_spaces_are_kept_unescaped_ones_dropped() -> None:
    assert parse_dn(r"cn=\ a b\ ,dc=org")[0] == (("cn", " a b "),)
    assert parse_dn("cn= a b  , dc=org") == ((("cn", "a b"),), (("dc", "org"),))


def test_leading_hash_escaped_and_hex_string_value() -> None:
    assert parse_dn(r"cn=\#1,dc=org")[0] == (("cn", "#1"),)
    # BER OCTET STRING "abc"
    assert parse_dn("cn=#0403616263,dc=org")[0] == (("cn", "abc"),)


def test_quoted_value_from_ldapv2() -> None:
    assert parse_dn('cn="Doe, John",dc=org')[0] == (("cn", "Doe, John"),)


def test_non_ascii_values_kept() -> None:
    assert parse_dn("cn=Zoë Łukasz,dc=org")[0] == (("cn", "Zoë Łukasz"),)


@pytest.mark.parametrize(
    ("dn", "why"),
    [
        ("cn", "missing '='"),
        ("=x,dc=org", "missing attribute type"),
        ("cn=a,", "ends with a separator"),
        ("cn=a,,dc=org", "bad attribute type"),
        ("c n=a", "bad attribute type"),
        ("cn=a<b", "must be escaped"),
        ("cn=a;b", "must be escaped"),
        (r"cn=a\zz", "bad escape"),
        (r"cn=\C3", "not valid UTF-8"),
        ("cn=#zz", "not a hex string"),
        ("cn=#0201ff", "not a BER-encoded string"),
        ('cn="open', "unterminated"),
    ],
)
def test_invalid_dns_raise_config_error(dn: str, why: str) -> None:
    with pytest.raises(ConfigError, match="invalid DN") as info:
        parse_dn(dn)
    assert why in str(info.value)


def test_escape_dn_value_escapes_rfc4514_specials() -> None:
    assert escape_dn_value('a,b+c"d\\e<f>g;h') == 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h'
    assert escape_dn_value(" lead") == "\\ lead"
    assert escape_dn_value("#lead") == "\\#lead"
    assert escape_dn_value("mid#dle") == "mid#dle"
    assert escape_dn_value("trail ") == "trail\\ "
    assert escape_dn_value(" ") == "\\ "
    assert escape_dn_value("nul\x00") == "nul\\00"
    assert escape_dn_value("Łódź=é") == "Łódź=é"


def test_format_dn_inverts_parse() -> None:
    dn = r"cn=a\,b+uid=x,ou=P\+Q,dc=org"
    assert format_dn(parse_dn(dn)) == dn


def test_normalize_folds_case_spaces_and_aliases() -> None:
    assert normalize_dn("UID=J  Doe , OU=People,DC=Example,DC=ORG") == "uid=j doe,ou=people,dc=example,dc=org"
    assert normalize_dn("commonName=X,domainComponent=org") == "cn=x,dc=org"
    assert normalize_dn("cn=Straße,dc=org") == normalize_dn("cn=STRASSE,dc=org")


def test_normalize_equivalent_escapings() -> None:
    assert normalize_dn(r"cn=a\,b,dc=org") == normalize_dn(r"cn=a\2Cb,dc=org") == r"cn=a\,b,dc=org"
    assert normalize_dn(r"cn=\4a\6f,dc=org") == "cn=jo,dc=org"


def test_normalize_sorts_multi_valued_rdns() -> None:
    assert normalize_dn("uid=b+cn=a,dc=org") == normalize_dn("CN=A+UID=B,dc=org") == "cn=a+uid=b,dc=org"


def test_normalize_escapes_control_characters() -> None:
    assert "\x01" not in normalize_dn(r"cn=a\01b,dc=org")


def test_dn_helpers() -> None:
    assert rdn_dn("cn", "Doe, John", "ou=People,dc=org") == r"cn=Doe\, John,ou=People,dc=org"
    assert rdn_dn("dc", "org", "") == "dc=org"
    assert parent_dn("uid=x,ou=People,dc=org") == "ou=People,dc=org"
    assert parent_dn(r"cn=a\,b,ou=People,dc=org") == "ou=People,dc=org"
    assert parent_dn("dc=org") == ""
    assert rdn_of(r"cn=a\+b+uid=x,dc=org") == (("cn", "a+b"), ("uid", "x"))
    assert dn_equal("UID=X, dc=Org", "uid=x,dc=org")
    assert not dn_equal("uid=x,dc=org", "uid=y,dc=org")


@pytest.mark.parametrize(
    ("dn", "scope", "expected"),
    [
        ("dc=example,dc=org", Scope.BASE, True),
        ("dc=example,dc=org", Scope.ONE, False),
        ("dc=example,dc=org", Scope.SUB, True),
        ("ou=People,dc=example,dc=org", Scope.ONE, True),
        ("ou=People,dc=example,dc=org", Scope.BASE, False),
        ("uid=x,ou=People,dc=example,dc=org", Scope.ONE, False),
        ("uid=x,ou=People,dc=example,dc=org", Scope.SUB, True),
        ("dc=other,dc=org", Scope.SUB, False),
        ("dc=org", Scope.SUB, False),
    ],
)
def test_is_within(dn: str, scope: Scope, expected: bool) -> None:
    assert is_within(dn, "DC=Example, DC=org", scope) is expected


@given(st.text())
def test_escape_then_parse_gives_the_value_back(value: str) -> None:
    dn = rdn_dn("cn", value, "ou=People,dc=org")
    assert parse_dn(dn) == ((("cn", value),), (("ou", "People"),), (("dc", "org"),))


def _hex_escaped(value: str) -> str:
    return "".join(f"\\{b:02x}" for b in value.encode("utf-8"))


@given(st.text(min_size=1), st.text(min_size=1))
def test_fast_and_full_normalization_agree(first: str, second: str) -> None:
    plain = f"{rdn_dn('cn', first, rdn_dn('ou', second, 'dc=org'))}"
    escaped = f"cn={_hex_escaped(first)},ou={_hex_escaped(second)},dc=org"
    assert normalize_dn(plain) == normalize_dn(escaped)
    assert dn_equal(plain.upper() if plain.isascii() else plain, escaped)


_simple_rdn = st.tuples(
    st.sampled_from(["cn", "OU", "dc", "uid", "o", "L"]),
    st.from_regex(r"[A-Za-z0-9 .@_=-]{0,12}", fullmatch=True),
)


@given(st.lists(_simple_rdn, min_size=1, max_size=5))
def test_simple_dns_normalize_like_the_full_parser(rdns: list[tuple[str, str]]) -> None:
    dn = ",".join(f"{t}={v}" for t, v in rdns)
    expected = tuple(f"{t.lower()}={' '.join(v.lower().split())}" for t, v in rdns)
    assert normalized_rdns(dn) == expected
    assert normalized_rdns(dn + r",cn=\2c") == (*expected, r"cn=\,")
