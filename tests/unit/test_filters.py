"""RFC 4515 filters: parsing, formatting, matching, and escaping of data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.dn import fold_value
from idsync.domain.entry import Attrs
from idsync.domain.filters import (
    And,
    Approx,
    AttributeRules,
    Equality,
    Extensible,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substring,
    escape_filter_value,
    filter_attributes,
    format_filter,
    matches,
    parse_filter,
    value_key,
)
from idsync.errors import ConfigError

PERSON = Attrs(
    {
        "objectClass": ["top", "person", "inetOrgPerson"],
        "uid": ["JDoe"],
        "cn": ["John   Doe", "Johnny"],
        "sn": ["Doe"],
        "uidNumber": ["1001"],
        "mail": ["john.doe@example.org"],
        "description": ["a*b (c)"],
    }
)


def test_parse_items() -> None:
    assert parse_filter("(uid=jdoe)") == Equality("uid", "jdoe")
    assert parse_filter("(cn=*)") == Present("cn")
    assert parse_filter("(uidNumber>=10)") == GreaterOrEqual("uidNumber", "10")
    assert parse_filter("(uidNumber<=10)") == LessOrEqual("uidNumber", "10")
    assert parse_filter("(cn~=jon)") == Approx("cn", "jon")
    assert parse_filter("(cn:caseExactMatch:=Jo)") == Extensible("cn", "Jo", "caseExactMatch")
    assert parse_filter("(cn:=Jo)") == Extensible("cn", "Jo", None)


def test_parse_without_outer_parentheses() -> None:
    assert parse_filter("uid=x") == Equality("uid", "x")
    assert parse_filter("mail=*@example.org") == Substring("mail", None, (), "@example.org")


def test_parse_nested_boolean_filters() -> None:
    flt = parse_filter("(&(objectClass=person)(|(uid=a)(!(cn=b)))( & (sn=c)))")
    assert flt == And(
        (
            Equality("objectClass", "person"),
            Or((Equality("uid", "a"), Not(Equality("cn", "b")))),
            And((Equality("sn", "c"),)),
        )
    )


def test_parse_substrings_with_several_parts() -> None:
    assert parse_filter("(cn=J*o*h*n)") == Substring("cn", "J", ("o", "h"), "n")
    assert parse_filter("(cn=*oh*)") == Substring("cn", None, ("oh",), None)
    assert parse_filter("(cn=Jo*)") == Substring("cn", "Jo", (), None)


def test_parse_escaped_values() -> None:
    assert parse_filter(r"(cn=a\2ab\28c\29\5cd\00)") == Equality("cn", "a*b(c)\\d\x00")
    assert parse_filter(r"(cn=J\c3\a9r\C3\B4me)") == Equality("cn", "Jérôme")
    assert parse_filter(r"(cn=\2a*)") == Substring("cn", "*", (), None)


def test_empty_and_or_are_absolute_true_and_false() -> None:
    assert matches(parse_filter("(&)"), PERSON)
    assert not matches(parse_filter("(|)"), PERSON)


@pytest.mark.parametrize(
    ("text", "position", "why"),
    [
        ("", 0, "empty filter"),
        ("(uid=x", 6, "expected ')'"),
        ("(uid=x))", 7, "unexpected text"),
        ("((uid=x))", 1, "missing attribute"),
        ("(uid=a(b)", 6, "unescaped '('"),
        (r"(uid=\zz)", 5, "two hex digits"),
        (r"(uid=\c3)", 8, "not valid UTF-8"),
        ("(!uid=x)", 2, "parenthesized"),
        ("(u id=x)", 1, "bad attribute description"),
        ("(uid>x)", 4, "expected '='"),
        ("(uid>=a*)", 8, "'*' is only allowed"),
        ("(cn:rule1:rule2:=x)", 10, "bad matching rule 'rule2'"),
        ("(cn:caseExactMatch:dn:=x)", 19, "bad matching rule 'dn'"),
    ],
)
def test_bad_syntax_raises_config_error_with_position(text: str, position: int, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_filter(text)
    assert f"at position {position}" in info.value.message
    assert why in info.value.message


def test_format_filter_round_trips() -> None:
    text = r"(&(objectClass=person)(|(cn=J*o\2a*n)(!(uid>=5))(mail~=x)(sn<=d)(cn=*)(cn:caseExactMatch:=\28x\29)))"
    assert format_filter(parse_filter(text)) == text


def test_filter_attributes() -> None:
    assert filter_attributes(parse_filter("(&(objectClass=person)(|(UID=a)(!(cn=*b))))")) == {
        "objectclass",
        "uid",
        "cn",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(uid=jdoe)", True),
        ("(UID=JDOE)", True),
        ("(cn=john doe)", True),
        ("(cn=  JOHN DOE )", True),
        ("(cn=john)", False),
        ("(objectclass=INETORGPERSON)", True),
        ("(objectClass=*)", True),
        ("(telephoneNumber=*)", False),
        ("(cn=jo*)", True),
        ("(cn=*n d*)", True),
        ("(cn=J*h*N*e)", True),
        ("(cn=J*e*h)", False),
        ("(cn=*doe)", True),
        ("(mail=*@EXAMPLE.org)", True),
        ("(description=a\\2ab \\28c\\29)", True),
        ("(description=a*)", True),
        ("(uidNumber>=999)", True),
        ("(uidNumber>=1002)", False),
        ("(uidNumber<=1001)", True),
        ("(sn>=c)", True),
        ("(sn<=C)", False),
        ("(cn~=JOHNNY)", True),
        ("(&(uid=jdoe)(sn=doe))", True),
        ("(&(uid=jdoe)(sn=smith))", False),
        ("(|(uid=nobody)(sn=doe))", True),
        ("(!(uid=jdoe))", False),
        ("(!(title=x))", True),
    ],
)
def test_matches(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), PERSON) is expected


def test_numbers_compare_numerically_others_as_text() -> None:
    attrs = Attrs({"n": ["9"], "s": ["b10"]})
    assert matches(parse_filter("(n<=10)"), attrs)
    assert not matches(parse_filter("(s<=b09)"), attrs)
    assert matches(parse_filter("(s<=B2)"), attrs)


def _schema_rules(name: str) -> AttributeRules | None:
    known = {
        "uid": AttributeRules(("uid",), "caseIgnoreMatch", None, "caseIgnoreSubstringsMatch"),
        "uidnumber": AttributeRules(("uidnumber",), "integerMatch", "integerOrderingMatch"),
        "member": AttributeRules(("member",), "distinguishedNameMatch"),
        "name": AttributeRules(("name", "cn", "sn"), "caseIgnoreMatch"),
        "labeleduri": AttributeRules(("labeleduri",), "caseExactMatch"),
        "telephonenumber": AttributeRules(("telephonenumber",), "telephoneNumberMatch"),
    }
    return known.get(name.lower())


GROUP = Attrs(
    {
        "uid": ["g"],
        "uidNumber": ["100"],
        "member": ["uid=a,ou=People,dc=org"],
        "cn": ["Admins"],
        "labeledURI": ["http://X"],
        "telephoneNumber": ["+1 555-0100"],
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(member=UID=A, ou=people,DC=org)", True),
        ("(member=uid=b,ou=people,dc=org)", False),
        ("(uidNumber=0100)", False),  # not a valid integer: Undefined
        ("(!(uidNumber=0100))", False),
        ("(uidNumber>=99)", True),
        ("(uid>=a)", False),  # uid has no ordering rule: Undefined
        ("(!(uid>=a))", False),
        ("(member=*a*)", False),  # no substring rule
        ("(nosuch=x)", False),
        ("(!(nosuch=x))", False),
        ("(!(nosuch=*))", False),
        ("(|(nosuch=x)(uid=g))", True),
        ("(&(nosuch=x)(uid=nope))", False),
        ("(name=admins)", True),  # a supertype tests its subtypes
        ("(labeledURI=http://x)", False),
        ("(labeledURI=http://X)", True),
        ("(labeledURI:caseIgnoreMatch:=http://x)", True),
        ("(telephoneNumber=+15550100)", True),
    ],
)
def test_matches_with_schema_rules(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), GROUP, _schema_rules) is expected


def test_value_key_by_rule() -> None:
    assert value_key("caseIgnoreMatch", " A  b ") == value_key("caseIgnoreMatch", "a b")
    assert value_key("caseExactMatch", "A") != value_key("caseExactMatch", "a")
    assert value_key("integerMatch", "12") == 12
    assert value_key("integerMatch", "012") is None
    assert value_key("distinguishedNameMatch", "CN=A, DC=Org") == "cn=a,dc=org"
    assert value_key("generalizedTimeMatch", "20261124101500Z") == value_key(
        "generalizedTimeMatch", "20261124111500+0100"
    )
    assert value_key("octetStringMatch", "Secret") == "Secret"


@given(st.text())
def test_escaped_value_parses_back_to_itself(value: str) -> None:
    assert parse_filter(f"(cn={escape_filter_value(value)})") == Equality("cn", value)


@given(st.text(), st.text())
def test_escaped_value_matches_only_itself(value: str, other: str) -> None:
    flt = parse_filter(f"(uid={escape_filter_value(value)})")
    assert isinstance(flt, Equality)
    assert matches(flt, Attrs({"uid": [value]})) is True
    assert matches(flt, Attrs({"uid": [other]})) is (fold_value(other) == fold_value(value))


@pytest.mark.parametrize("value", ["*)(uid=*", "*", "\\", "\x00", "a)(|(objectClass=*)", "x*)(!(uid=x"])
def test_injection_attempts_stay_one_equality(value: str) -> None:
    escaped = escape_filter_value(value)
    flt = parse_filter(f"(&(objectClass=person)(uid={escaped}))")
    assert flt == And((Equality("objectClass", "person"), Equality("uid", value)))
    assert not matches(flt, PERSON)
    assert set(escaped) & set("*()\x00") == set()


def test_extensible_match_with_dn_attributes_is_parsed_and_formatted() -> None:
    assert parse_filter("(ou:dn:=people)") == Extensible("ou", "people", None, dn_attributes=True)
    assert parse_filter("(ou:DN:caseExactMatch:=People)") == Extensible("ou", "People", "caseExactMatch", True)
    for text in ("(ou:dn:=people)", "(ou:dn:caseExactMatch:=People)", "(!(o:dn:=x\\2a))"):
        assert format_filter(parse_filter(text)) == text
    assert filter_attributes(parse_filter("(ou:dn:=people)")) == {"ou", "entrydn"}, "the DN is read as entryDN"


@pytest.mark.parametrize(
    ("text", "dn", "expected"),
    [
        ("(ou:dn:=people)", "uid=jd,ou=People,dc=example,dc=org", True),
        ("(ou:dn:=PEOPLE)", "uid=jd,ou=People,dc=example,dc=org", True),
        ("(ou:dn:=staff)", "uid=jd,ou=People,dc=example,dc=org", False),
        ("(ou=people)", "uid=jd,ou=People,dc=example,dc=org", False),
        ("(ou:dn:caseExactMatch:=People)", "uid=jd,ou=People,dc=example,dc=org", True),
        ("(ou:dn:caseExactMatch:=people)", "uid=jd,ou=People,dc=example,dc=org", False),
        ("(uid:dn:=jd)", "cn=Doe\\, John+uid=jd,ou=People,dc=example,dc=org", True),
        ("(cn:dn:=doe, john)", "cn=Doe\\, John+uid=jd,ou=People,dc=example,dc=org", True),
        ("(dc:dn:=org)", "uid=jd,ou=People,dc=example,dc=org", True),
        ("(!(ou:dn:=people))", "uid=jd,ou=People,dc=example,dc=org", False),
        ("(sn:dn:=doe)", "uid=jd,ou=People,dc=example,dc=org", True),
    ],
)
def test_extensible_match_with_dn_attributes_looks_at_the_entry_dn(text: str, dn: str, expected: bool) -> None:
    entry = Attrs({"uid": ["jd"], "sn": ["Doe"], "entryDN": [dn]})
    assert matches(parse_filter(text), entry) is expected


def test_extensible_match_with_dn_attributes_without_the_dn_tests_the_values_only() -> None:
    assert matches(parse_filter("(sn:dn:=doe)"), PERSON)
    assert not matches(parse_filter("(ou:dn:=people)"), PERSON)
