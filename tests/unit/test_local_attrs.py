"""The compact attributes the embedded directory's searches return behave as Attrs."""

from idsync.connectors.local.attrs import StoredAttrs, layout, stored
from idsync.connectors.local.storage import _key, dn_key
from idsync.domain.entry import Attrs


def _pair() -> tuple[StoredAttrs, Attrs]:
    data = {"objectClass": ["top", "person"], "cn": ["Ann Lee"], "sn": ["Lee"]}
    return StoredAttrs(layout(tuple(data)), tuple(stored(v) for v in data.values())), Attrs(data)


def test_stored_attrs_read_like_attrs() -> None:
    compact, plain = _pair()
    assert compact.get_values("CN") == plain.get_values("cn") == ("Ann Lee",)
    assert compact["objectclass"] == ("top", "person")
    assert compact.get_values("mail") == ()
    assert "SN" in compact and "mail" not in compact
    assert len(compact) == 3 and list(compact) == ["objectClass", "cn", "sn"]
    assert compact == plain and compact.to_dict() == plain.to_dict()
    assert compact.first("sn") == "Lee"


def test_entries_with_the_same_names_share_one_layout() -> None:
    first, _ = _pair()
    second, _ = _pair()
    assert first._layout is second._layout


def test_the_key_of_a_dn_is_the_same_by_the_quick_way_and_the_full_parse() -> None:
    for dn in ("uid=A  B,ou=People,dc=example,dc=org", "cn=a\\,b,ou=x,dc=o", "cn=Ä,ou=x,dc=o",
               "uid=x+cn=y,dc=o", "cn= x ,dc=o", "dc=org", "cn=x,ou=a\\+b,dc=o", "CN=X,OU=A,DC=O"):
        assert dn_key(dn) == _key(dn)
    assert dn_key("CN=X,OU=A,DC=O") == dn_key("cn=x,ou=a,dc=o")
