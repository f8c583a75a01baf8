"""The message a smart group's owners get: what changed in each of their groups, or why not."""

from __future__ import annotations

from idsync.notify.group_notice import DNS_SHOWN, OwnedGroup, render_owner_notice


def test_one_group_changed_lists_the_members_added_and_removed() -> None:
    item = OwnedGroup("it", "cn=it,dc=x", "updated", ("uid=a,dc=x",), ("uid=<b>,dc=x",), 1, 1)
    message = render_owner_notice("groups", 7, [item])
    assert message.subject == "[idsync] smart group it: 1 added, 1 removed"
    assert "  + uid=a,dc=x\n  - uid=<b>,dc=x" in message.text
    assert "update run 7 (groups)" in message.text
    assert "uid=&lt;b&gt;,dc=x" in message.html  # escaped


def test_many_members_are_cut_and_counted() -> None:
    added = tuple(f"uid=u{i},dc=x" for i in range(DNS_SHOWN + 5))
    item = OwnedGroup("big", "cn=big,dc=x", "updated", added, (), len(added) + 10, 0)
    text = render_owner_notice("groups", 1, [item]).text
    assert text.count("  + ") == DNS_SHOWN and "... and 15 more" in text


def test_several_groups_and_a_held_one_say_why_it_was_not_updated() -> None:
    groups = [
        OwnedGroup("it", "cn=it,dc=x", "updated", ("uid=a,dc=x",), (), 1, 0),
        OwnedGroup("hr", "cn=hr,dc=x", "held", reason="held for approval by request 3: the update changes 4 of 5"),
    ]
    message = render_owner_notice("groups", 2, groups)
    assert message.subject == "[idsync] 1 of your smart groups changed, 1 not updated"
    assert "Smart group hr (cn=hr,dc=x) was not updated: held for approval by request 3" in message.text
