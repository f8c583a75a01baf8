"""Which changes of a plan a reader asked to see."""

from __future__ import annotations

from idsync.domain.changes import Change, ChangeFilter, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs


def test_a_change_filter_keeps_changes_by_kind_attribute_and_text_without_regard_to_case() -> None:
    create = Change(ChangeOp.CREATE, "uid=3,ou=People,dc=x", key="3", attrs=Attrs({"sn": ["Hopper"], "cn": ["Grace"]}))
    update = Change(ChangeOp.UPDATE, "uid=1,ou=People,dc=x", key="1",
                    mods=(Modification(ModOp.REPLACE, "sn", ("Byron",), before=("Lovelace",)),))
    move = Change(ChangeOp.MOVE, "uid=2,ou=People,dc=x", new_dn="uid=2,ou=Gone,dc=x")
    assert [ChangeFilter().keeps(c) for c in (create, update, move)] == [True, True, True]
    assert [ChangeFilter(attribute="SN").keeps(c) for c in (create, update, move)] == [True, True, False]
    assert [ChangeFilter(text="lovelace").keeps(c) for c in (create, update, move)] == [False, True, False]
    assert [ChangeFilter(text="OU=GONE").keeps(c) for c in (create, update, move)] == [False, False, True]
    assert ChangeFilter(op=ChangeOp.CREATE, text="hopper").keeps(create)
    assert not ChangeFilter(op=ChangeOp.UPDATE, text="hopper").keeps(create)
