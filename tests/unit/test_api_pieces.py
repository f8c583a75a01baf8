"""Pure pieces of the REST API: cursors, ETags and If-Match, problem statuses by class."""

from __future__ import annotations

import pytest

from idsync.api.errors import status_of
from idsync.api.pagination import decode, encode
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
