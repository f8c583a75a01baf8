"""Pure pieces of the portal's runs and directory pages: the date range of
the run history, how a directory value may be shown (text, binary by its
size, a secret never), and the path from a store's base to an entry."""

from __future__ import annotations

import datetime as dt

import pytest

from idsync.domain.entry import Attrs, Entry
from idsync.errors import ConfigError
from idsync.portal.directory import ancestors, link
from idsync.portal.runs import day_range
from idsync.services.directory_browse import MASKED, entry_view, is_binary, value_view


def test_a_day_range_covers_whole_days_and_refuses_what_is_not_a_day() -> None:
    since, before = day_range("2026-03-01", "2026-03-02")
    assert since == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert before == dt.datetime(2026, 3, 3, tzinfo=dt.UTC)  # the last day included
    assert day_range("", "") == (None, None)
    assert day_range(" 2026-03-01 ", "") == (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), None)
    with pytest.raises(ConfigError, match="is not a day") as refused:
        day_range("", "2026-02-30")
    assert refused.value.field == "to"


def test_values_are_shown_as_text_binary_by_size_and_secrets_never() -> None:
    assert value_view("cn", "Ada Lovelace").text == "Ada Lovelace"
    photo = bytes(range(256)).decode("utf-8", "surrogateescape")
    assert is_binary(photo) and not is_binary("line one\nline two")
    shown = value_view("jpegPhoto", photo)
    assert shown.binary and shown.text == "(binary, 256 bytes; 344 characters in base64)"
    for name in ("userPassword", "USERPASSWORD", "unicodePwd", "authPassword"):
        hidden = value_view(name, "{SSHA}c2VjcmV0")
        assert hidden.secret and hidden.text == MASKED

    view = entry_view(Entry("uid=1,ou=People,dc=example,dc=org", Attrs({
        "uid": ["1"], "userPassword": ["{SSHA}c2VjcmV0"], "cn": ["Ada"]})))
    assert [a.name for a in view.attributes] == ["cn", "uid", "userPassword"]
    assert "c2VjcmV0" not in repr(view)


def test_the_path_to_an_entry_runs_from_the_base_and_links_keep_their_query() -> None:
    base = "dc=example,dc=org"
    assert ancestors("uid=1,ou=People,dc=example,dc=org", base) == [base, "ou=People,dc=example,dc=org"]
    assert ancestors(base, base) == []
    assert ancestors("cn=elsewhere", base) == []  # not under the base: no path
    assert link("dir") == "/directory/dir"
    assert link("dir", "entry", dn="uid=1,ou=People") == "/directory/dir/entry?dn=uid%3D1%2Cou%3DPeople"
    assert link("dir", "search", filter="(uid=1)", base="") == "/directory/dir/search?filter=%28uid%3D1%29"
