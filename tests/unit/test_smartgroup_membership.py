"""Smart group membership: set arithmetic over normalised DNs, and the limits that hold an update."""

from __future__ import annotations

from idsync.smartgroups.membership import Limits, difference, members_of, refusal, target_members

ANN, BOB, CID = "uid=ann,ou=People,dc=example,dc=org", "uid=bob,ou=People,dc=example,dc=org", "uid=cid,ou=People,dc=example,dc=org"


def test_queries_are_united_and_compared_as_normalised_dns() -> None:
    one = members_of([ANN, BOB])
    two = members_of(["UID=Ann, OU=people,DC=Example,DC=org", CID])
    target = target_members([one, two], None, [], [])
    assert sorted(target) == sorted(members_of([ANN, BOB, CID]))
    assert target[next(iter(members_of([ANN])))] in (ANN, "UID=Ann, OU=people,DC=Example,DC=org")


def test_include_wins_over_the_queries_and_exclude_over_everything() -> None:
    target = target_members([members_of([ANN, BOB])], members_of([CID]), include=[CID.upper()], exclude=[BOB, CID])
    assert list(target.values()) == [ANN]
    assert list(target_members([{}], None, include=[CID], exclude=[]).values()) == [CID]


def test_the_difference_adds_as_found_and_removes_as_stored() -> None:
    current = members_of(["UID=ANN,ou=People,dc=example,dc=org", BOB])
    target = members_of([ANN, CID])
    diff = difference(current, target)
    assert (diff.add, diff.remove, diff.current, diff.target, diff.changed) == ([CID], [BOB], 2, 2, 2)
    assert difference(target, target).changed == 0


def test_an_empty_result_is_refused_unless_allowed() -> None:
    diff = difference(members_of([ANN]), {})
    assert "the result is empty" in (refusal(diff, Limits()) or "")
    assert refusal(diff, Limits(allow_empty=True)) is None
    assert refusal(difference({}, {}), Limits()) is None  # nothing to do is never refused


def test_a_result_over_the_maximum_is_refused() -> None:
    diff = difference({}, members_of([ANN, BOB, CID]))
    assert "over the maximum of 2" in (refusal(diff, Limits(max_members=2)) or "")
    assert refusal(diff, Limits(max_members=3)) is None


def test_the_guard_holds_a_large_change_of_a_group_over_its_minimum_size() -> None:
    big = members_of([f"uid=u{i},dc=example,dc=org" for i in range(10)])
    smaller = dict(list(big.items())[:7])
    diff = difference(big, smaller)  # 3 of 10 removed: 30 %
    assert "3 of 10 members (30.0 %)" in (refusal(diff, Limits(guard_percent=25, guard_min_size=5)) or "")
    assert refusal(diff, Limits(guard_percent=30, guard_min_size=5)) is None  # not over 30 %
    assert refusal(diff, Limits(guard_percent=25, guard_min_size=10)) is None  # the group is not larger than 10


def test_the_fast_member_key_is_the_normal_form_of_every_dn() -> None:
    from idsync.domain.dn import normalize_dn
    from idsync.smartgroups.membership import member_key

    for dn in [
        "uid=u0000001,ou=w6people,dc=example,dc=org", "CN=Ada Lovelace,OU=People,DC=Example,DC=org",
        "CN=Foo  Bar,dc=x", "commonName=a,dc=x", "cn=a,commonName=b,dc=x", "cn=a\\,b,dc=x", "cn=\\#x,dc=x",
        "uid=é,dc=x", "cn= a,dc=x", "cn=a ,dc=X", "cn=a, dc=x", "2.5.4.3=a,dc=x", "cn=a=b,dc=x", "cn=,dc=x",
        "cn=a+uid=b,dc=x", "CN=ÅSA,dc=x", "cn=a;b,dc=x".replace(";", "\\;"), "dc=org",
    ]:
        assert member_key(dn) == normalize_dn(dn), dn
        assert member_key(dn) == normalize_dn(dn), dn  # and again, from the cache


def test_the_difference_of_values_is_the_difference_of_their_normal_forms() -> None:
    import random

    from idsync.smartgroups.membership import difference, difference_of_values, members_of

    people = [f"uid=u{i},ou=People,dc=x" for i in range(30)]
    spellings = [*people, *(p.upper() for p in people), *(p.replace(",", ", ") for p in people), "not a dn"]
    rng = random.Random(13)
    for _ in range(300):
        values = rng.sample(spellings, rng.randint(0, 40))
        target = members_of(rng.sample(spellings, rng.randint(0, 40)))
        assert difference_of_values(values, target) == difference(members_of(values), target), (values, target)
    same = members_of(people)
    assert difference_of_values(people, same) == difference(same, same)  # spelled alike: nothing normalised
