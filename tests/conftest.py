"""Fixtures shared by every test folder: the private slapd and a private IDSYNC_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scheduler_world import World, make_world
from tests.servers.slapd import SlapdServer, start_slapd


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """One private slapd per test session (ldap:// with StartTLS, and ldaps://).

    Tests isolate themselves with ``slapd.new_container()`` instead of
    restarting the server. A missing slapd fails the tests, it never skips them.
    """
    server = start_slapd(tls=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def slapd_tls(slapd: SlapdServer) -> SlapdServer:
    """The session's slapd, named for tests about TLS (``ldaps_url`` and ``ca_file`` are set)."""
    assert slapd.ldaps_url and slapd.ca_file
    return slapd


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh IDSYNC_HOME for one test, so no test sees another's database or keys."""
    home = tmp_path / "idsync-home"
    home.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(home))
    return home


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A scheduler world (database, embedded directory, the people job) in its own home."""
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """argon2id with the lowest cost in this process: tests hash and check many
    passwords, and the production cost (tens of milliseconds each, on purpose)
    would make them slow. The algorithm and the code paths are the same;
    commands run as subprocesses keep the real cost."""
    from argon2 import PasswordHasher

    from idsync.services import users

    real = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    users._hasher = real
