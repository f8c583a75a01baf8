"""Entries printed by ``idsync directory search``: binary values, markup and controls stay data."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from idsync.cli.entries_view import Format, write_entries
from idsync.domain.entry import Attrs, Entry
from idsync.errors import NotFoundError

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF"
ENTRY = Entry("uid=a,dc=example,dc=org", Attrs({
    "cn": ["[bold]Ada[/bold]", "Ada\x1b]52;c;ZXZpbA==\x07"],
    "jpegPhoto": [PHOTO.decode("utf-8", "surrogateescape")],
}))


def test_json_gives_binary_values_in_base64(capsys: pytest.CaptureFixture[str]) -> None:
    assert write_entries([ENTRY], Format.JSON, None) == 1
    (found,) = json.loads(capsys.readouterr().out)
    assert found["attributes"]["jpegPhoto"] == [{"base64": base64.b64encode(PHOTO).decode()}]
    assert found["attributes"]["cn"][0] == "[bold]Ada[/bold]"


def test_a_table_shows_markup_as_text_controls_escaped_and_binary_as_its_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_entries([ENTRY], Format.TABLE, ["cn", "jpegPhoto"])
    out = capsys.readouterr().out
    assert "[bold]Ada[/bold]" in out
    assert "\x1b" not in out and "\\x1b]52" in out
    assert f"(binary, {len(PHOTO)} bytes)" in out


def test_ldif_writes_binary_values_in_base64(capsys: pytest.CaptureFixture[str]) -> None:
    write_entries([ENTRY], Format.LDIF, None)
    assert f"jpegPhoto:: {base64.b64encode(PHOTO).decode()}\n" in capsys.readouterr().out


def test_an_error_before_the_first_entry_leaves_no_half_document(capsys: pytest.CaptureFixture[str]) -> None:
    def entries() -> Iterator[Entry]:
        yield from ()
        raise NotFoundError("search base 'ou=x' does not exist")  # as a lazy search says it

    with pytest.raises(NotFoundError):
        write_entries(entries(), Format.JSON, None)
    assert capsys.readouterr().out == ""
