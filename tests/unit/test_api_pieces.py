"""Pure pieces of the REST API: cursors, ETags and If-Match, problem statuses by class."""

from __future__ import annotations

import datetime as dt

import pytest

from idsync.api.errors import status_of
from idsync.api.pagination import Page, decode, decode_id, decode_position, encode, encode_position
from idsync.api.routers.definitions import etag_of, versions_of
from idsync.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFoundError,
    StateConflictError,
    TransientError,
    VersionConflictError,
)


def test_a_cursor_goes_round_and_a_foreign_one_is_refused() -> None:
    assert decode(encode(40)) == 40
    assert decode(None) == 0 and decode("") == 0
    for bad in ("garbage", encode(-1), "eyJ4IjogMX0"):
        with pytest.raises(ConfigError, match="the cursor is not one this API gave"):
            decode(bad)


def test_a_keyset_cursor_holds_the_last_position_and_a_foreign_one_is_refused() -> None:
    at = dt.datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=dt.UTC)
    assert decode_position(encode_position(at, 7)) == (at, 7)
    assert decode_position(None) is None and decode_id("") is None
    for bad in (encode(3), "garbage", encode_position(at, 7).replace("A", "B")):
        with pytest.raises(ConfigError, match="the cursor is not one this API gave"):
            decode_position(bad)
    with pytest.raises(ConfigError):
        decode_id(encode_position(at, 7))


def test_a_keyset_page_gives_a_cursor_only_when_more_follow() -> None:
    page = Page(limit=2, cursor=None)
    rows = [(dt.datetime(2026, 1, 3, tzinfo=dt.UTC), 3), (dt.datetime(2026, 1, 2, tzinfo=dt.UTC), 2),
            (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1)]
    first = page.keyed(rows, key=lambda row: row, render=lambda row: row[1])
    assert first["items"] == [3, 2] and decode_position(first["next_cursor"]) == rows[1]
    assert page.keyed(rows[:2], key=lambda row: row)["next_cursor"] is None
    assert decode_id(page.keyed([5, 4, 3], key=lambda i: i)["next_cursor"]) == 4


def test_an_etag_follows_the_body_not_its_key_order() -> None:
    assert etag_of({"a": 1, "b": 2}) == etag_of({"b": 2, "a": 1})
    assert etag_of({"a": 1}) != etag_of({"a": 2})
    tag = etag_of({"a": 1})
    assert versions_of(tag) == [tag.strip('"')]
    assert versions_of("*") is None
    assert versions_of(f'"x", W/{tag}') == ["x", tag.strip('"')]


def test_statuses_come_from_the_class() -> None:
    assert status_of(TransientError("x"))[0] == 503
    assert status_of(AuthError("x"))[0] == 502
    assert status_of(ConnectorError("x"))[0] == 502
    assert status_of(NotFoundError("x"))[0] == 404
    assert status_of(VersionConflictError("x"))[0] == 412
    assert status_of(StateConflictError("x"))[0] == 409
