"""``idsync user``, ``idsync token`` and ``idsync whoami`` as a user runs them, and refusals by role."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import ME, Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_whoami_before_any_user_is_the_bootstrap_administrator(cli: Cli) -> None:
    shown = cli.json("whoami")
    assert shown["user"] is None and shown["account"] == ME and shown["bootstrap"]
    assert shown["roles"] == ["admin", "auditor", "operator"]


def test_users_are_added_with_a_password_from_stdin_and_listed(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", ME, "--role", "admin", "--password-stdin", input="the boss password\n")
    cli("user", "add", "alice", "--email", "a@example.org", "--os-user", "alice", "--role", "approver")
    listed = cli.json("user", "list")
    assert [(u["name"], u["roles"], u["password"]) for u in listed] == [
        ("alice", ["approver"], False), ("boss", ["admin"], True),
    ]
    assert "the boss password" not in cli("user", "show", "boss").stdout
    whoami = cli("whoami").stdout
    assert f"user boss, through the operating-system account {ME}" in whoami
    audit = cli.json("audit", "list", "--kind", "user")
    assert [(e["actor"], e["action"], e["object_name"]) for e in reversed(audit)] == [
        (ME, "user.add", "boss"), ("boss", "user.add", "alice"),
    ]


def test_a_bad_role_is_a_usage_error_listing_the_roles(cli: Cli) -> None:
    bad = cli("user", "add", "boss", "--role", "god", ok=False)
    assert bad.returncode == 2 and "the roles are admin, operator, approver, auditor" in bad.stderr


def test_an_auditor_is_refused_a_change_with_exit_8_naming_the_role(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", ME, "--role", "admin")
    cli("user", "add", "audrey", "--role", "auditor")
    token = cli("token", "create", "reports", "--user", "audrey").stdout.strip()
    cli.env["IDSYNC_TOKEN"] = token
    assert cli.json("whoami")["user"] == "audrey"
    assert cli.json("store", "list") == []
    refused = cli("store", "add", "corp", "--kind", "local", ok=False)
    assert refused.returncode == 8
    assert refused.stderr.splitlines() == [
        "idsync: error: user 'audrey' may not save identity stores: that needs the role operator "
        "(user 'audrey' has auditor)",
        "hint: ask an administrator to grant the role",
    ]
    assert cli("user", "list", ok=False).returncode == 8


def test_an_unmapped_os_account_is_refused_once_users_exist(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", "someone-else", "--role", "admin")
    refused = cli("job", "list", ok=False)
    assert refused.returncode == 8
    assert refused.stderr.splitlines() == [
        f"idsync: error: account '{ME}' may not read sync jobs: that needs any of the roles admin, operator, "
        f"approver, auditor (account '{ME}' has no role)",
        "hint: this operating-system account is not mapped to an idsync user: ask an administrator to map it "
        "and grant a role",
    ]
    assert cli.json("whoami")["roles"] == []


def test_a_token_is_printed_once_and_a_bad_token_is_one_line_exit_8(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", ME, "--role", "admin")
    made = cli("token", "create", "ci", "--expires", "30d")
    token = made.stdout.strip()
    assert token.startswith("idsync_") and "it is not shown again" in made.stderr
    listed = cli("token", "list")
    assert token not in listed.stdout and token.split("_")[1] in listed.stdout
    cli.env["IDSYNC_TOKEN"] = token
    assert cli.json("whoami")["user"] == "boss"
    cli.env["IDSYNC_TOKEN"] = token + "x"
    bad = cli("whoami", ok=False)
    assert bad.returncode == 8 and len(bad.stderr.splitlines()) == 2 and token not in bad.stderr
    assert bad.stderr.startswith("idsync: error: IDSYNC_TOKEN: the API token is not valid")
    del cli.env["IDSYNC_TOKEN"]
    cli("token", "revoke", "ci")
    cli.env["IDSYNC_TOKEN"] = token
    assert cli("store", "list", ok=False).returncode == 8


def test_passwd_disable_and_the_last_admin(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", ME, "--role", "admin", "--password-stdin", input="first password\n")
    wrong = cli("user", "passwd", "--password-stdin", input="not it\nsecond password\n", ok=False)
    assert wrong.returncode == 8 and "current password" in wrong.stderr
    cli("user", "passwd", "--password-stdin", input="first password\nsecond password\n")
    last = cli("user", "disable", "boss", ok=False)
    assert last.returncode == 7 and "last enabled administrator" in last.stderr
    cli("user", "add", "olga", "--role", "operator")
    cli("user", "disable", "olga")
    assert cli.json("user", "show", "olga")["disabled"] is True
    cli("user", "grant", "olga", "auditor", "approver")
    assert cli.json("user", "show", "olga")["roles"] == ["approver", "auditor", "operator"]
    cli("user", "revoke", "olga", "approver")
    cli("user", "remove", "olga", "--yes")
    assert cli("user", "show", "olga", ok=False).returncode == 6


def test_role_groups_from_the_cli(cli: Cli) -> None:
    cli("user", "add", "boss", "--os-user", ME, "--role", "admin")
    cli("store", "add", "corp", "--kind", "ldap", "--url", "ldap://127.0.0.1:9")
    cli("user", "group", "add", "corp", "cn=sync-approvers,dc=example,dc=org", "--role", "approver")
    listed = cli.json("user", "group", "list")
    assert [(g["store_name"], g["group_dn"], g["role"]) for g in listed] == [
        ("corp", "cn=sync-approvers,dc=example,dc=org", "approver"),
    ]
    cli("user", "group", "remove", "corp", "cn=sync-approvers,dc=example,dc=org")
    assert cli.json("user", "group", "list") == []
