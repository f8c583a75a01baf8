"""schema(): the attribute types and object classes the engine validates jobs against."""

from __future__ import annotations

import pytest

from idsync.connectors.base import DirectorySchema
from tests.contract.conftest import Box


@pytest.fixture
def schema(box: Box) -> DirectorySchema:
    found = box.directory.schema()
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("name", "alias"),
    [("cn", "commonName"), ("uid", "userid"), ("mail", "rfc822Mailbox"), ("sn", "surname")],
)
def test_attribute_types_with_aliases(schema: DirectorySchema, name: str, alias: str) -> None:
    by_name = schema.attribute(name)
    assert by_name is not None
    assert by_name is schema.attribute(alias.upper())
    assert {n.lower() for n in by_name.names} >= {name.lower(), alias.lower()}
    assert not by_name.single_value


def test_attribute_flags(schema: DirectorySchema) -> None:
    display_name = schema.attribute("displayName")
    assert display_name is not None and display_name.single_value
    uid_number = schema.attribute("uidNumber")
    assert uid_number is not None and uid_number.single_value
    entry_uuid = schema.attribute("entryUUID")
    assert entry_uuid is not None and entry_uuid.no_user_modification
    assert schema.attribute("noSuchAttributeXyz") is None
    assert schema.attribute("mail;lang-en") is schema.attribute("mail")


def test_object_classes(schema: DirectorySchema) -> None:
    person = schema.object_class("PERSON")
    assert person is not None
    assert person.kind == "structural"
    assert {"cn", "sn"} <= {n.lower() for n in person.must}
    assert "telephonenumber" in {n.lower() for n in person.may}

    inet = schema.object_class("inetOrgPerson")
    assert inet is not None
    assert [s.lower() for s in inet.superiors] == ["organizationalperson"]
    assert "mail" in {n.lower() for n in inet.may}

    top = schema.object_class("top")
    assert top is not None and top.kind == "abstract"
    posix = schema.object_class("posixAccount")
    assert posix is not None and posix.kind == "auxiliary"
    assert {"uidnumber", "gidnumber", "homedirectory"} <= {n.lower() for n in posix.must}


def test_required_and_allowed_attributes_follow_superiors(schema: DirectorySchema) -> None:
    required = schema.required_attributes(["inetOrgPerson"])
    assert {"cn", "sn", "objectclass"} <= required
    allowed = schema.allowed_attributes(["inetOrgPerson"])
    assert {"mail", "uid", "telephonenumber", "givenname", "cn", "sn"} <= allowed
    assert "homedirectory" not in allowed
