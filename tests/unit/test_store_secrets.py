"""Secrets at rest: the key, encryption, env: references and redaction."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from idsync.errors import ConfigError
from idsync.store.secrets import (
    REDACTED,
    SecretBox,
    load_or_create_key_file,
    redact,
    resolve_secret,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return tmp_path / "home"


# ---------------------------------------------------------------- the key


def test_the_key_file_is_created_on_first_use_with_mode_0600(home: Path) -> None:
    box = SecretBox.from_settings()
    key_file = home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert box.decrypt(box.encrypt({"bind_password": "s3cret"})) == {"bind_password": "s3cret"}
    assert [p.name for p in home.iterdir()] == ["secret.key"]


def test_the_key_file_is_private_even_with_a_permissive_umask(home: Path) -> None:
    previous = os.umask(0)
    try:
        SecretBox.from_settings()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600


def test_the_key_file_is_reused(home: Path) -> None:
    token = SecretBox.from_settings().encrypt({"password": "x"})
    assert SecretBox.from_settings().decrypt(token) == {"password": "x"}


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    keys: list[bytes] = []
    start = threading.Barrier(8)  # all threads reach the file together

    def first_use() -> None:
        start.wait(timeout=30)
        keys.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert path.read_bytes().strip() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_can_read_is_refused(home: Path, mode: int) -> None:
    SecretBox.from_settings()
    key_file = home / "secret.key"
    key_file.chmod(mode)
    with pytest.raises(ConfigError, match=r"is open to other users$") as caught:
        SecretBox.from_settings()
    assert caught.value.hint == f"let only its owner read it (chmod 600 {key_file})"


def test_an_empty_key_file_is_refused(home: Path) -> None:
    home.mkdir(parents=True)
    key_file = home / "secret.key"
    key_file.touch(mode=0o600)
    with pytest.raises(ConfigError, match="is empty"):
        SecretBox.from_settings()


def test_the_key_from_the_environment_wins_and_no_file_is_created(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("IDSYNC_SECRET_KEY", key.decode())
    token = SecretBox.from_settings().encrypt({"password": "p"})
    assert SecretBox(key).decrypt(token) == {"password": "p"}
    assert not (home / "secret.key").exists()


def test_an_invalid_key_in_the_environment_is_a_config_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_SECRET_KEY", "not-a-key")
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        SecretBox.from_settings()


# ---------------------------------------------------------------- encryption


def test_an_empty_mapping_encrypts_to_none_and_none_decrypts_to_nothing() -> None:
    box = SecretBox(Fernet.generate_key())
    assert box.encrypt({}) is None
    assert box.decrypt(None) == {}


def test_the_token_does_not_contain_the_secret() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt({"bind_password": "correct horse"})
    assert token is not None
    assert "correct horse" not in token and "bind_password" not in token


def test_a_different_key_is_a_config_error_naming_where_the_key_comes_from() -> None:
    token = SecretBox(Fernet.generate_key()).encrypt({"password": "p"})
    with pytest.raises(ConfigError) as caught:
        SecretBox(Fernet.generate_key()).decrypt(token)
    assert caught.value.message == (
        "cannot decrypt stored secrets: the secret key differs from the one they were saved with "
        "(IDSYNC_SECRET_KEY or <home>/secret.key)"
    )


def test_a_corrupted_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot decrypt"):
        SecretBox(Fernet.generate_key()).decrypt("garbage")


def test_same_compares_the_secrets_not_the_tokens() -> None:
    box = SecretBox(Fernet.generate_key())
    first = box.encrypt({"a": "1", "b": "2"})
    second = box.encrypt({"b": "2", "a": "1"})
    assert first != second
    assert box.same(first, second)
    assert not box.same(first, box.encrypt({"a": "1", "b": "3"}))
    assert not box.same(first, None)
    assert box.same(None, None)


# ---------------------------------------------------------------- env: references


def test_an_env_reference_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_TEST_BIND_PW", "from-env")
    assert resolve_secret("env:IDSYNC_TEST_BIND_PW") == "from-env"


def test_a_missing_environment_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDSYNC_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError) as caught:
        resolve_secret("env:IDSYNC_TEST_MISSING")
    assert caught.value.message == (
        "environment variable IDSYNC_TEST_MISSING (referenced by a secret) is not set"
    )


def test_an_env_reference_without_a_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="names no environment variable"):
        resolve_secret("env:")


def test_a_plain_secret_is_returned_as_is() -> None:
    assert resolve_secret("p@ss env:X") == "p@ss env:X"
    assert resolve_secret("") == ""


# ---------------------------------------------------------------- redaction


def test_redact_keeps_references_and_masks_everything_else() -> None:
    assert redact("env:LDAP_PASSWORD") == "env:LDAP_PASSWORD"
    assert redact("hunter2") == REDACTED == "********"
    assert redact("ENV:not-a-reference") == REDACTED
    assert redact(None) is None
