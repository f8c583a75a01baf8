"""Changes survive JSON exactly: every field, spelling, order and ``before`` values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError
from idsync.store.serialize import (
    change_body_text,
    change_body_to_json,
    change_from_json,
    change_to_json,
)

text = st.text(max_size=20)
values = st.lists(text, max_size=4).map(tuple)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=12)
attrs = st.dictionaries(names, values, max_size=5).map(Attrs)
mods = st.builds(Modification, op=st.sampled_from(ModOp), attribute=names, values=values, before=values)
changes = st.builds(
    Change,
    op=st.sampled_from(ChangeOp),
    dn=text,
    key=text,
    attrs=st.none() | attrs,
    mods=st.lists(mods, max_size=4).map(tuple),
    new_dn=st.none() | text,
    anchor=st.none() | text,
)


def spelled(change: Change) -> object:
    """What Attrs equality ignores: attribute spelling and order."""
    return None if change.attrs is None else list(change.attrs.to_dict().items())


@given(changes)
def test_every_change_round_trips_through_json_text(change: Change) -> None:
    restored = change_from_json(json.loads(json.dumps(change_to_json(change))))
    assert restored == change
    assert spelled(restored) == spelled(change)
    assert [m.before for m in restored.mods] == [m.before for m in change.mods]


@given(changes)
def test_the_stored_body_is_compact_json_of_the_body(change: Change) -> None:
    text = change_body_text(change)
    # The standard library's compact form, non-ASCII text kept as it is.
    assert text == json.dumps(change_body_to_json(change), separators=(",", ":"), ensure_ascii=False)
    restored = change_from_json({**json.loads(text), "op": change.op.value, "dn": change.dn, "key": change.key,
                                 "new_dn": change.new_dn, "anchor": change.anchor})
    assert restored == change and spelled(restored) == spelled(change)


def test_a_binary_value_is_stored_as_an_escape_and_comes_back() -> None:
    """A value read as bytes that are not UTF-8 holds lone surrogates: the
    stored text escapes them, so it is valid UTF-8 for the database."""
    change = Change(op=ChangeOp.CREATE, dn="cn=x,dc=example,dc=org", attrs=Attrs({"cn": ["x"], "photo": ["\udcff\udc00ab"]}))
    text = change_body_text(change)
    text.encode("utf-8")
    assert "\\udcff" in text
    assert change_from_json({**json.loads(text), "op": "create", "dn": change.dn}) == change


def test_an_update_keeps_its_before_values() -> None:
    change = Change(
        op=ChangeOp.UPDATE,
        dn="uid=ann,ou=people,dc=example,dc=org",
        key="ann",
        mods=(
            Modification(ModOp.REPLACE, "mail", ("ann@new.org",), ("ann@old.org",)),
            Modification(ModOp.ADD, "member", ("uid=bob",), ()),
        ),
        anchor="5f1c-uuid",
    )
    data = change_to_json(change)
    assert data == {
        "op": "update",
        "dn": "uid=ann,ou=people,dc=example,dc=org",
        "key": "ann",
        "mods": [
            {"op": "replace", "attribute": "mail", "values": ["ann@new.org"], "before": ["ann@old.org"]},
            {"op": "add", "attribute": "member", "values": ["uid=bob"]},
        ],
        "anchor": "5f1c-uuid",
    }
    assert change_from_json(data) == change


def test_a_create_keeps_attribute_spelling_and_value_order() -> None:
    change = Change(
        op=ChangeOp.CREATE,
        dn="uid=ann,dc=example,dc=org",
        attrs=Attrs({"objectClass": ["top", "inetOrgPerson"], "givenName": ["Ann"]}),
    )
    restored = change_from_json(change_to_json(change))
    assert restored.attrs is not None
    assert restored.attrs.to_dict() == {"objectClass": ["top", "inetOrgPerson"], "givenName": ["Ann"]}


def test_empty_attrs_stay_distinct_from_no_attrs() -> None:
    with_empty = Change(op=ChangeOp.CREATE, dn="cn=x", attrs=Attrs())
    assert change_from_json(change_to_json(with_empty)).attrs == Attrs()
    assert change_from_json(change_to_json(Change(op=ChangeOp.DELETE, dn="cn=x"))).attrs is None


def test_a_move_keeps_its_new_dn() -> None:
    change = Change(op=ChangeOp.MOVE, dn="uid=a,ou=old", new_dn="uid=a,ou=new")
    assert change_from_json(change_to_json(change)).new_dn == "uid=a,ou=new"


def test_a_document_without_a_dn_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="lacks the field 'dn'"):
        change_from_json({"op": "create"})


def test_an_unknown_operation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid"):
        change_from_json({"op": "rename", "dn": "cn=x"})
