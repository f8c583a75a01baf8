"""The private slapd of the test session: isolation helpers and the write counter."""

from __future__ import annotations

import pytest

from tests.servers.slapd import SlapdServer, SlapdUnavailable, find_program, write_count

pytestmark = pytest.mark.slapd


def test_a_missing_program_fails_with_the_install_command() -> None:
    with pytest.raises(SlapdUnavailable, match="apt-get install -y slapd ldap-utils"):
        find_program("slapd-that-does-not-exist")


def test_containers_are_fresh_and_writes_are_counted(slapd: SlapdServer) -> None:
    before = write_count(slapd)
    first, second = slapd.new_container(), slapd.new_container()
    assert first != second
    assert write_count(slapd) == before + 2
    conn = slapd.connect()
    try:
        assert conn.search_s(first, 1, "(objectClass=*)") == []
        conn.modify_s(first, [(2, "description", [b"x"])])
        conn.delete_s(second)
    finally:
        conn.unbind_s()
    assert write_count(slapd) == before + 4
    assert write_count(slapd) == before + 4, "reading the counter is not a write"
