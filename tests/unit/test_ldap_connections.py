"""How many connections a run writes to an LDAP server over, by default and when set."""

import pytest

from idsync.connectors.ldap import write_connections
from idsync.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "cpus", "expected"),
    [
        ("ldap://127.0.0.1:389", 2, 1),
        ("ldap://localhost", 1, 1),
        ("ldaps://[::1]:636", 2, 1),
        ("ldap://127.0.0.1:389", 4, 2),  # cores enough for client and server
        ("ldap://ldap.example.org", 2, 2),  # a server elsewhere: its CPU is not ours
        ("ldap://10.0.0.5", 1, 2),
        ("ldap://127.0.0.1", None, 1),
    ],
)
def test_auto_writes_over_one_connection_when_client_and_server_share_two_cores(
    url: str, cpus: int | None, expected: int
) -> None:
    assert write_connections(url, "auto", cpus) == expected
    assert write_connections(url, "", cpus) == expected


def test_a_number_is_taken_as_it_is() -> None:
    assert write_connections("ldap://127.0.0.1", "2", 2) == 2
    assert write_connections("ldap://ldap.example.org", " 1 ", 8) == 1
    with pytest.raises(ConfigError, match="IDSYNC_LDAP_CONNECTIONS='two' is not a whole number or auto"):
        write_connections("ldap://127.0.0.1", "two", 2)
