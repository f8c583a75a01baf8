"""Active Directory encodings and range retrieval, against captured examples.

No domain controller runs here, so every value below was captured from
Windows tools or Microsoft's documentation of the wire format:

- objectGUID: the canonical GUID that PowerShell's ``[guid]`` prints, the
  octet string ADSI Edit shows (``ToByteArray()``), and the base64 that
  ``ldapsearch`` prints for the attribute; and the escaped filter value of a
  GUID as ``(objectGUID=\\74\\E5...)`` searches use it.
- userAccountControl: 512 (a normal enabled user), 514 (the same, disabled),
  66048 (enabled, password never expires), 66050 (its disabled form), 546
  (what AD gives a user created without a password: disabled, no password
  required).
- unicodePwd: ``unicodePwd::`` LDIF lines that set ``password`` and ``admin``.
- range retrieval: the attribute descriptions AD returns for a 3,200-member
  group with the default MaxValRange of 1500.
"""

from __future__ import annotations

import base64

import pytest

from idsync.connectors.activedirectory import (
    AccountControl,
    AccountFlag,
    ActiveDirectoryCodec,
    Range,
    complete_ranges,
    decode_password,
    disabled_value,
    enabled_value,
    encode_password,
    guid_filter_value,
    guid_to_bytes,
    guid_to_text,
    is_disabled,
    parse_account_control,
    parse_range,
)
from idsync.domain.changes import ModOp
from idsync.domain.entry import Attrs
from idsync.errors import ConnectorError, RecordError

# ------------------------------------------------------------------ objectGUID

GUID_TEXT = "8c4ac332-975f-4717-ad7b-ba4a4e968fff"
GUID_OCTETS = "32c34a8c5f971747ad7bba4a4e968fff"  # as ADSI Edit shows it
GUID_BASE64 = "MsNKjF+XF0ete7pKTpaP/w=="  # as ldapsearch prints ``objectGUID::``


def test_object_guid_bytes_read_as_the_text_windows_prints() -> None:
    raw = base64.b64decode(GUID_BASE64)
    assert raw.hex() == GUID_OCTETS
    assert guid_to_text(raw) == GUID_TEXT


def test_guid_text_back_to_the_bytes_ad_stores() -> None:
    assert guid_to_bytes(GUID_TEXT).hex() == GUID_OCTETS
    assert guid_to_bytes("{" + GUID_TEXT.upper() + "}").hex() == GUID_OCTETS


def test_mixed_endian_layout_first_three_fields_swapped() -> None:
    raw = bytes.fromhex("67452301ab89efcd0123456789abcdef")
    assert guid_to_text(raw) == "01234567-89ab-cdef-0123-456789abcdef"


def test_guid_filter_value_matches_the_documented_search_form() -> None:
    # (objectGUID=\74\E5\D2\BC\58\8D\36\41\A9\DF\8A\19\B1\45\DB\79) finds bcd2e574-8d58-4136-a9df-8a19b145db79
    escaped = "\\74\\E5\\D2\\BC\\58\\8D\\36\\41\\A9\\DF\\8A\\19\\B1\\45\\DB\\79"
    assert guid_filter_value("bcd2e574-8d58-4136-a9df-8a19b145db79") == escaped.lower()


@pytest.mark.parametrize("bad", [b"", b"\x01" * 15, b"\x01" * 17])
def test_object_guid_of_the_wrong_length_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        guid_to_text(bad)


def test_guid_text_that_is_not_a_guid_is_refused() -> None:
    with pytest.raises(ValueError, match="not a GUID"):
        guid_to_bytes("not-a-guid")


def test_codec_reads_object_guid_as_text_and_other_values_as_utf8() -> None:
    codec = ActiveDirectoryCodec(tls=True)
    assert codec.decode("objectGUID", base64.b64decode(GUID_BASE64)) == GUID_TEXT
    assert codec.decode("ObjectGuid", base64.b64decode(GUID_BASE64)) == GUID_TEXT
    assert codec.decode("cn", "Zoë".encode()) == "Zoë"
    # A value that is not 16 bytes is not a GUID: kept byte for byte.
    odd = codec.decode("objectGUID", b"\xff\x00")
    assert odd.encode("utf-8", "surrogateescape") == b"\xff\x00"


# ------------------------------------------------------------------ userAccountControl


@pytest.mark.parametrize(
    ("current", "disabled", "enabled"),
    [
        ("512", "514", "512"),
        ("514", "514", "512"),
        ("66048", "66050", "66048"),
        ("66050", "66050", "66048"),
        ("546", "546", "544"),
    ],
)
def test_account_control_sets_and_clears_only_the_disable_bit(current: str, disabled: str, enabled: str) -> None:
    assert disabled_value(current) == disabled
    assert enabled_value(current) == enabled
    assert is_disabled(disabled) and not is_disabled(enabled)
    other = parse_account_control(current) & ~AccountFlag.ACCOUNTDISABLE
    assert parse_account_control(disabled) & ~AccountFlag.ACCOUNTDISABLE == other


def test_flags_of_captured_values() -> None:
    assert AccountFlag(parse_account_control("66048")) == AccountFlag.NORMAL_ACCOUNT | AccountFlag.DONT_EXPIRE_PASSWORD
    assert AccountFlag(parse_account_control("546")) == (
        AccountFlag.NORMAL_ACCOUNT | AccountFlag.PASSWD_NOTREQD | AccountFlag.ACCOUNTDISABLE
    )


def test_missing_account_control_is_a_normal_account() -> None:
    assert parse_account_control(None) == 0x200
    assert disabled_value(None) == "514"


def test_negative_account_control_is_read_as_unsigned() -> None:
    assert parse_account_control("-2147483136") == 0x80000200


def test_non_integer_account_control_is_refused() -> None:
    with pytest.raises(ValueError, match="not an integer"):
        parse_account_control("enabled")


def test_account_control_strategy_disables_from_the_current_value() -> None:
    control = AccountControl()
    assert control.attributes == ("userAccountControl",)
    mod = control.disable(Attrs({"userAccountControl": ["66048"]}))
    assert mod is not None
    assert (mod.op, mod.attribute, mod.values, mod.before) == (ModOp.REPLACE, "userAccountControl", ("66050",), ("66048",))
    assert control.disable(Attrs({"userAccountControl": ["514"]})) is None


def test_account_control_strategy_reports_a_bad_value_as_a_record_error() -> None:
    with pytest.raises(RecordError, match="not an integer") as caught:
        AccountControl().disable(Attrs({"userAccountControl": ["x"]}))
    assert caught.value.attribute == "userAccountControl"


# ------------------------------------------------------------------ unicodePwd


@pytest.mark.parametrize(
    ("password", "ldif_base64"),
    [("password", "IgBwAGEAcwBzAHcAbwByAGQAIgA="), ("admin", "IgBhAGQAbQBpAG4AIgA=")],
)
def test_unicode_pwd_is_the_quoted_password_in_utf16le(password: str, ldif_base64: str) -> None:
    encoded = encode_password(password)
    assert base64.b64encode(encoded).decode() == ldif_base64
    assert decode_password(encoded) == password


def test_unicode_pwd_keeps_characters_outside_ascii_and_inner_quotes() -> None:
    encoded = encode_password('Pä"ss€')
    assert encoded[:2] == b'"\x00' and encoded[-2:] == b'"\x00'
    assert decode_password(encoded) == 'Pä"ss€'


def test_codec_writes_unicode_pwd_encoded_over_tls() -> None:
    codec = ActiveDirectoryCodec(tls=True)
    assert codec.encode("unicodePwd", "password") == base64.b64decode("IgBwAGEAcwBzAHcAbwByAGQAIgA=")
    assert codec.encode("mail", "a@x.org") == b"a@x.org"


def test_codec_refuses_unicode_pwd_without_tls_and_says_what_to_do() -> None:
    codec = ActiveDirectoryCodec(tls=False)
    with pytest.raises(RecordError, match=r"encrypted connection.*ldaps://.*start_tls") as caught:
        codec.encode("unicodePwd", "password")
    assert caught.value.attribute == "unicodePwd"
    assert "password" not in caught.value.message.replace("unicodePwd", "")


# ------------------------------------------------------------------ range retrieval

# What AD returns, part by part, for a group of 3,200 members (MaxValRange 1500).
RANGE_SEQUENCE = ["member;range=0-1499", "member;range=1500-2999", "member;range=3000-*"]


def test_parse_range_descriptions() -> None:
    assert parse_range("member;range=0-1499") == Range("member", 0, 1499)
    assert parse_range("member;Range=1500-*") == Range("member", 1500, None)
    assert parse_range("member") is None
    assert parse_range("cn;lang-en") is None
    assert parse_range("member;x-opt;range=0-9") == Range("member;x-opt", 0, 9)


def test_next_request_follows_each_returned_part() -> None:
    parts = [parse_range(d) for d in RANGE_SEQUENCE]
    assert [p.next_request() if p else None for p in parts] == [
        "member;range=1500-*",
        "member;range=3000-*",
        None,
    ]
    assert parts[-1] is not None and parts[-1].is_last


def test_an_impossible_range_is_a_connector_error() -> None:
    with pytest.raises(ConnectorError, match="impossible range"):
        parse_range("member;range=10-5")


def _members(low: int, high: int) -> list[bytes]:
    return [f"cn=u{i},ou=People,dc=example,dc=org".encode() for i in range(low, high + 1)]


def test_complete_ranges_reads_every_part_in_order() -> None:
    server = {
        "member;range=1500-*": {"member;range=1500-2999": _members(1500, 2999)},
        "member;range=3000-*": {"member;range=3000-*": _members(3000, 3199)},
    }
    requests: list[str] = []

    def fetch(description: str) -> dict[str, list[bytes]]:
        requests.append(description)
        return server[description]

    first = {"cn": [b"big"], "member;range=0-1499": _members(0, 1499)}
    complete = complete_ranges(first, fetch, dn="cn=big,dc=example,dc=org")
    assert requests == ["member;range=1500-*", "member;range=3000-*"]
    assert complete["cn"] == [b"big"]
    assert complete["member"] == _members(0, 3199)
    assert not any(";" in name for name in complete)


def test_complete_ranges_leaves_entries_without_ranges_alone() -> None:
    def fetch(description: str) -> dict[str, list[bytes]]:
        raise AssertionError("no follow-up request expected")

    attrs = {"member": _members(0, 2), "cn": [b"small"]}
    assert complete_ranges(attrs, fetch) == attrs
    assert complete_ranges({"member;range=0-*": _members(0, 2)}, fetch) == {"member": _members(0, 2)}


def test_complete_ranges_accepts_an_empty_last_part() -> None:
    answer: dict[str, list[bytes]] = {"member;range=1500-*": []}
    complete = complete_ranges({"member;range=0-1499": _members(0, 1499)}, lambda d: answer)
    assert len(complete["member"]) == 1500


@pytest.mark.parametrize(
    "answer",
    [{}, {"cn": [b"x"]}, {"member;range=1600-*": _members(1600, 1700)}],
    ids=["nothing", "other-attribute", "gap"],
)
def test_an_incomplete_range_answer_fails_instead_of_losing_members(answer: dict[str, list[bytes]]) -> None:
    with pytest.raises(ConnectorError, match="values were not all read"):
        complete_ranges({"member;range=0-1499": _members(0, 1499)}, lambda d: answer, dn="cn=g,dc=x")
