"""The smart group definitions: what the models refuse, with the field and the position."""

from __future__ import annotations

import pytest

from idsync.errors import ConfigError
from idsync.services import definitions

GROUP = {"name": "it", "store": "dir", "dn": "cn=it,ou=Groups,dc=example,dc=org"}


def test_a_filter_that_does_not_parse_is_refused_with_its_position() -> None:
    bad = {**GROUP, "queries": [{"base": "dc=example,dc=org", "filter": "(uid=ann"}]}
    with pytest.raises(ConfigError, match=r"queries\.0\.filter: invalid LDAP filter '\(uid=ann' at position 8"):
        definitions.parse("smart_group", bad)


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "at least one query, an include list or a join"),
    ({"include": ["uid=a,dc=x", "UID=A,dc=x"]}, "is listed twice"),
    ({"include": ["not a dn"]}, "include: item 1: invalid DN 'not a dn'"),
    ({"include": ["uid=a,dc=x"], "guard": {"percent": 0}}, "guard.percent"),
    ({"include": ["uid=a,dc=x"], "object_class": "posixGroup"}, "object_class"),
])
def test_structure_is_checked(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        definitions.parse("smart_group", {**GROUP, **extra})


def test_the_member_attribute_follows_the_object_class() -> None:
    make = lambda oc: definitions.parse("smart_group", {**GROUP, "include": ["uid=a,dc=x"], "object_class": oc})  # noqa: E731
    assert [make(oc).member_attribute for oc in ("groupOfNames", "groupOfUniqueNames", "group")] == [
        "member", "uniqueMember", "member"
    ]


def test_an_update_job_needs_targets() -> None:
    with pytest.raises(ConfigError, match="needs groups or containers"):
        definitions.parse("smart_group_job", {"name": "j", "store": "dir"})
