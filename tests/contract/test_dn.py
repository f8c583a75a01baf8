"""DNs with special characters: written escaped, found by filter, compared normalized."""

from __future__ import annotations

import pytest

from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import escape_filter_value
from tests.contract.conftest import Box

SPECIAL = ",+\"\\<>;="


def escape_rdn_value(value: str) -> str:
    """RFC 4514 escaping, written out here so the test does not trust the code under test."""
    out = []
    for i, ch in enumerate(value):
        if ch in SPECIAL or (i == 0 and ch in " #") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


VALUES = [
    "Smith, John",
    "a+b",
    'Say "hi"',
    "back\\slash",
    "<angle>",
    "semi;colon",
    "x=y",
    " leading space",
    "trailing space ",
    "#hash",
    "Jürgen Groß",
    "東京 オフィス",
    "all , + \" \\ < > ; together",
]


@pytest.mark.parametrize("value", VALUES)
def test_special_dn_values_round_trip(box: Box, value: str) -> None:
    dn = f"cn={escape_rdn_value(value)},{box.base}"
    box.apply_ok(Change(ChangeOp.CREATE, dn, key=value, attrs=Attrs({
        "objectClass": ["person"], "cn": [value], "sn": ["Special"],
    })))

    found = box.find(f"(cn={escape_filter_value(value)})", Scope.ONE)

    assert len(found) == 1
    assert normalize_dn(found[0].dn) == normalize_dn(dn)
    assert value in found[0].attrs["cn"]
    # The DN as the directory wrote it reads the entry back, and so does ours.
    assert box.get(found[0].dn) is not None
    assert box.get(dn) is not None


def test_special_dn_values_can_be_modified_moved_and_deleted(box: Box) -> None:
    value = "Doe, Jane + \"Jr\""
    dn = f"cn={escape_rdn_value(value)},{box.base}"
    box.apply_ok(Change(ChangeOp.CREATE, dn, key="jane", attrs=Attrs({
        "objectClass": ["person"], "cn": [value], "sn": ["Doe"],
    })))
    box.apply_ok(Change(ChangeOp.UPDATE, dn, key="jane", mods=(Modification(ModOp.REPLACE, "sn", ("Roe",)),)))
    new_value = "Roe; Jane <x>"
    new_dn = f"cn={escape_rdn_value(new_value)},{box.base}"
    box.apply_ok(Change(ChangeOp.MOVE, dn, key="jane", new_dn=new_dn))

    (entry,) = box.find(f"(cn={escape_filter_value(new_value)})", Scope.ONE)
    assert normalize_dn(entry.dn) == normalize_dn(new_dn)
    assert entry.attrs["sn"] == ("Roe",)
    assert box.get(dn) is None

    box.apply_ok(Change(ChangeOp.DELETE, new_dn, key="jane"))
    assert box.get(new_dn) is None
