"""Explain: why an entry is or is not a member, rule by rule, with the filter code of the embedded directory."""

from __future__ import annotations

from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import parse_filter
from idsync.smartgroups.explain import JoinRule, QueryRule, explain, failures

PEOPLE = "ou=People,dc=example,dc=org"
ANN = f"uid=ann,{PEOPLE}"
ATTRS = Attrs({"objectClass": ["inetOrgPerson"], "uid": ["ann"], "departmentNumber": ["Sales"], "title": ["Contractor"]})


def _values(name: str) -> tuple[str, ...]:
    return ATTRS.get_values(name)


def test_the_query_that_matched_is_named() -> None:
    result = explain(ANN, ATTRS, queries=[QueryRule(PEOPLE, Scope.SUB, "(departmentNumber=IT)"),
                                          QueryRule(PEOPLE, Scope.ONE, "(departmentNumber=sales)")],
                     include=[], exclude=[])
    assert result.member
    assert result.summary.endswith("query 2 ((departmentNumber=sales) under ou=People,dc=example,dc=org, scope one) matched")


def test_the_failing_term_is_named_with_the_entry_value() -> None:
    result = explain(ANN, ATTRS, queries=[QueryRule(PEOPLE, Scope.SUB, "(&(uid=*)(|(departmentNumber=IT)(l=Paris)))")],
                     include=[], exclude=[])
    assert not result.member
    assert result.reasons[0].text.endswith(
        "did not match: (departmentNumber=IT) failed: the entry's departmentNumber is 'Sales'; "
        "(l=Paris) failed: the entry has no l"
    )


def test_a_negation_that_fails_says_what_matched() -> None:
    assert failures(parse_filter("(!(title=contractor))"), _values) == [
        "(!(title=contractor)) failed: (title=contractor) matches, the entry's title is 'Contractor'"
    ]


def test_an_entry_outside_the_base_is_said_so() -> None:
    result = explain(ANN, ATTRS, queries=[QueryRule("ou=Groups,dc=example,dc=org", Scope.SUB, "(uid=ann)")],
                     include=[], exclude=[])
    assert not result.member and "not within its base and scope" in result.reasons[0].text


def test_exclude_wins_then_include() -> None:
    query = [QueryRule(PEOPLE, Scope.SUB, "(uid=ann)")]
    excluded = explain(ANN, ATTRS, queries=query, include=[ANN.upper()], exclude=[ANN])
    assert not excluded.member and "exclude list" in excluded.summary
    included = explain(ANN, ATTRS, queries=[], include=[ANN.upper()], exclude=[])
    assert included.member and "include list" in included.summary


def test_the_join_says_which_value_the_source_has() -> None:
    join = JoinRule("staff", "login", "uid", frozenset({"ann"}))
    assert "the source has 'ann'" in explain(ANN, ATTRS, queries=[], include=[], exclude=[], join=join).summary
    missing = explain(ANN, ATTRS, queries=[], include=[], exclude=[], join=JoinRule("staff", "login", "uid", frozenset()))
    assert not missing.member and "'ann' is not in the source" in missing.reasons[0].text


def test_an_entry_that_does_not_exist_can_only_be_included() -> None:
    result = explain(ANN, None, queries=[QueryRule(PEOPLE, Scope.SUB, "(uid=*)")], include=[ANN], exclude=[])
    assert result.member and [r.kind for r in result.reasons] == ["include", "entry"]


def test_the_directory_decides_where_its_schema_matches_otherwise() -> None:
    # slapd matches (objectClass=person) on an inetOrgPerson; evaluated here on the stored values it does not.
    query = [QueryRule(PEOPLE, Scope.SUB, "(objectClass=person)")]
    result = explain(ANN, ATTRS, queries=query, include=[], exclude=[], directory_says=[True])
    assert result.member
    assert "matched in the directory (evaluated here, (objectClass=person) failed" in result.reasons[0].text
    assert not explain(ANN, ATTRS, queries=query, include=[], exclude=[], directory_says=[None]).member
