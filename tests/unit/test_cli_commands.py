"""The root command lists its sub-commands without importing them; each line
it shows must be the command's own help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from idsync.cli.app import COMMANDS, load_command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    own = " ".join((command.help or "").split("\n\n")[0].split())
    assert own == COMMANDS[name][2]
    assert command.name == name


def test_listing_the_commands_imports_no_database_code() -> None:
    code = (
        "import sys\n"
        "from idsync.cli.app import app\n"
        "import typer.main\nfrom typer.core import _click as click\n"
        "group = typer.main.get_command(app)\n"
        "ctx = click.Context(group)\n"
        "print([group.get_command(ctx, n).name for n in group.list_commands(ctx)])\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'alembic', 'idsync.store', 'idsync.services')))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schedulers_default_lease_is_the_services() -> None:
    from idsync.cli.scheduler import DEFAULT_LEASE_SECONDS
    from idsync.services.collection_runs import DEFAULT_LEASE

    # Kept as a number in the CLI so that `idsync --help` need not import the services.
    assert DEFAULT_LEASE.total_seconds() == DEFAULT_LEASE_SECONDS


def test_finding_who_acts_loads_neither_password_hashing_nor_ldap() -> None:
    # Every command resolves its principal first; hashing a dummy password or
    # loading python-ldap there would cost each command a good part of a second.
    code = (
        "import sys\n"
        "import idsync.cli.common\n"
        "print(sorted(m for m in sys.modules if m.startswith(('argon2', 'ldap', 'idsync.connectors', 'idsync.services.signin'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
