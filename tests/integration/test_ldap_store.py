"""LdapDirectory against a real slapd: binding, reachability, timeouts and TLS."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.ldap import LdapDirectory
from idsync.domain.entry import Scope
from idsync.errors import AuthError, ConfigError, ConnectorError, NotFoundError, TransientError
from tests.servers.slapd import SlapdServer, free_port
from tests.servers.tls import make_ca

pytestmark = pytest.mark.slapd


def root(server: SlapdServer, **options: object) -> LdapDirectory:
    return LdapDirectory(url=server.url, bind_dn=server.root_dn, bind_password=server.root_pw, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that did not sign the server's certificate."""
    return str(make_ca(tmp_path_factory.mktemp("other-ca"), "Some other CA").cert_file)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel does) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def one_line(message: str) -> bool:
    return "\n" not in message and 0 < len(message) < 400


def test_test_describes_the_server_in_one_line(slapd: SlapdServer) -> None:
    with root(slapd) as directory:
        line = directory.test()
    assert one_line(line)
    assert line == (
        f"{slapd.url}: bound as {slapd.root_dn}; vendor OpenLDAP; naming contexts {slapd.base_dn}"
    )


def test_anonymous_bind_reads(slapd: SlapdServer) -> None:
    with LdapDirectory(url=slapd.url) as directory:
        assert "bound as anonymous" in directory.test()
        (entry,) = directory.search(slapd.base_dn, Scope.BASE)
    assert entry.attrs["dc"] == ("example",)


def test_wrong_password_is_an_auth_error(slapd: SlapdServer) -> None:
    directory = LdapDirectory(url=slapd.url, bind_dn=slapd.root_dn, bind_password="not-the-password")
    with pytest.raises(AuthError) as caught:
        directory.test()
    assert one_line(caught.value.message)
    assert "invalid credentials" in caught.value.message.lower()
    assert slapd.url in caught.value.message
    with pytest.raises(AuthError):
        list(directory.search(slapd.base_dn))
    with pytest.raises(AuthError):
        list(directory.apply([]))


def test_unknown_bind_dn_is_an_auth_error(slapd: SlapdServer) -> None:
    directory = LdapDirectory(url=slapd.url, bind_dn=f"cn=nobody,{slapd.base_dn}", bind_password="x")
    with pytest.raises(AuthError):
        directory.test()


def test_closed_port_is_transient() -> None:
    url = f"ldap://127.0.0.1:{free_port()}"
    with pytest.raises(TransientError) as caught:
        LdapDirectory(url=url, timeout=2.0).test()
    assert one_line(caught.value.message)
    assert url in caught.value.message and "cannot reach" in caught.value.message


@pytest.mark.timing
def test_closed_port_fails_without_waiting_for_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(TransientError):
        LdapDirectory(url=f"ldap://127.0.0.1:{free_port()}", timeout=2.0).test()
    assert time.monotonic() - started < 1.5


def test_closed_port_with_start_tls_is_transient(slapd: SlapdServer) -> None:
    with pytest.raises(TransientError):
        LdapDirectory(url=f"ldap://127.0.0.1:{free_port()}", start_tls=True, ca_file=slapd.ca_file).test()


def test_a_server_that_never_answers_times_out(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        LdapDirectory(url=f"ldap://127.0.0.1:{silent_server}", timeout=0.5).test()
    assert time.monotonic() - started > 0.4  # it waited for the answer (a hang fails by pytest's timeout)
    assert one_line(caught.value.message)


@pytest.mark.timing
def test_a_server_that_never_answers_times_out_after_the_timeout(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError):
        LdapDirectory(url=f"ldap://127.0.0.1:{silent_server}", timeout=0.5).test()
    assert time.monotonic() - started < 3.0


def test_start_tls_with_the_test_ca(slapd: SlapdServer) -> None:
    with root(slapd, start_tls=True, ca_file=slapd.ca_file) as directory:
        assert directory.test().startswith(slapd.url)
        assert list(directory.search(slapd.base_dn, Scope.BASE))


def test_ldaps_with_the_test_ca(slapd: SlapdServer) -> None:
    assert slapd.ldaps_url
    with LdapDirectory(
        url=slapd.ldaps_url, bind_dn=slapd.root_dn, bind_password=slapd.root_pw, ca_file=slapd.ca_file
    ) as directory:
        assert "vendor OpenLDAP" in directory.test()
        assert list(directory.search(slapd.base_dn, Scope.BASE))


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_a_certificate_from_another_ca_is_refused(slapd: SlapdServer, other_ca: str, mode: str) -> None:
    assert slapd.ldaps_url
    if mode == "ldaps":
        directory = LdapDirectory(url=slapd.ldaps_url, bind_dn=slapd.root_dn,
                                  bind_password=slapd.root_pw, ca_file=other_ca)
    else:
        directory = root(slapd, start_tls=True, ca_file=other_ca)
    with pytest.raises(ConnectorError) as caught:
        directory.test()
    assert not isinstance(caught.value, TransientError), "retrying will not fix a certificate"
    assert one_line(caught.value.message)
    assert "TLS" in caught.value.message


def test_an_unreadable_ca_file_is_a_config_error(slapd: SlapdServer, tmp_path: Path) -> None:
    assert slapd.ldaps_url
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ConfigError, match=r"missing-ca\.pem"):
        LdapDirectory(url=slapd.ldaps_url, ca_file=str(missing)).test()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConnectorError):
        LdapDirectory(url=slapd.ldaps_url, ca_file=str(garbage)).test()


def test_tls_verification_is_on_by_default(slapd: SlapdServer) -> None:
    assert slapd.ldaps_url
    directory = LdapDirectory(url=slapd.ldaps_url, bind_dn=slapd.root_dn, bind_password=slapd.root_pw)
    assert directory.tls_verify is True
    with pytest.raises(ConnectorError, match="TLS"):
        directory.test()
    unverified = LdapDirectory(url=slapd.ldaps_url, bind_dn=slapd.root_dn,
                               bind_password=slapd.root_pw, tls_verify=False)
    assert "vendor OpenLDAP" in unverified.test()
    unverified.close()


def test_the_password_never_appears_in_errors_or_logs(
    slapd: SlapdServer, other_ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-Secret-Value"
    messages: list[str] = []
    attempts = [
        LdapDirectory(url=slapd.url, bind_dn=slapd.root_dn, bind_password=secret),
        LdapDirectory(url=f"ldap://127.0.0.1:{free_port()}", bind_dn=slapd.root_dn, bind_password=secret),
        LdapDirectory(url=slapd.url, bind_dn=slapd.root_dn, bind_password=secret,
                      start_tls=True, ca_file=other_ca),
    ]
    for directory in attempts:
        messages.append(repr(directory))
        with pytest.raises(ConnectorError) as caught:
            directory.test()
        messages.append(str(caught.value))
        messages.append(repr(caught.value))
    with root(slapd) as good:
        messages.append(good.test())
        messages.append(repr(good))
    records = [r.getMessage() for r in caplog.records]
    assert records, "connecting logs at debug level"
    for text in messages + records:
        assert secret not in text
        assert slapd.root_pw not in text


def test_search_errors(slapd: SlapdServer) -> None:
    with root(slapd) as directory:
        with pytest.raises(NotFoundError) as missing:
            list(directory.search(f"ou=missing,{slapd.base_dn}"))
        assert one_line(missing.value.message) and "ou=missing" in missing.value.message
        with pytest.raises(ConfigError):
            list(directory.search(slapd.base_dn, Scope.SUB, "(uid=x"))
        with pytest.raises(ConfigError):
            list(directory.search("not a dn", Scope.SUB))


def test_pages_are_read_ahead_and_a_search_stopped_early_leaves_the_connection_usable(slapd: SlapdServer) -> None:
    base = slapd.new_container()
    conn = slapd.connect()
    for i in range(23):
        conn.add_s(f"uid=p{i},{base}", [("objectClass", [b"inetOrgPerson"]), ("uid", [f"p{i}".encode()]),
                                        ("cn", [b"x"]), ("sn", [f"s{i}".encode()])])
    conn.unbind_s()
    with root(slapd, page_size=5) as directory:
        everyone = [e.attrs["uid"][0] for e in directory.search(base, Scope.ONE, "(uid=*)", ["uid"])]
        assert sorted(everyone) == sorted(f"p{i}" for i in range(23))
        entries = directory.search(base, Scope.ONE, "(uid=*)", ["uid", "sn"])
        first = [next(entries) for _ in range(7)]  # into the second page: the third is asked for
        entries.close()  # ...and abandoned
        assert len({e.dn for e in first}) == 7
        again = [e.attrs["sn"][0] for e in directory.search(base, Scope.ONE, "(uid=p1*)", ["sn"])]
        assert sorted(again) == sorted(["s1", *(f"s{i}" for i in range(10, 20))])
        assert directory.test().startswith(slapd.url)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        LdapDirectory(url="http://127.0.0.1")
    with pytest.raises(ConfigError):
        LdapDirectory(url="ldap://127.0.0.1", window=0)
    with pytest.raises(ConfigError, match="start_tls"):
        LdapDirectory(url="ldaps://127.0.0.1", start_tls=True)
