"""``idsync store``: identity stores (directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from idsync.cli.common import (
    confirm,
    print_document,
    print_test_result,
    read_secret,
    refuse_options_of_other_kinds,
    workspace,
)
from idsync.cli.output import JsonOption, console, print_json, table
from idsync.services import definitions

app = typer.Typer(help="Identity stores: the directories idsync writes (and reads).", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Name of the store."),
    kind: str = typer.Option(..., "--kind", help="ldap (any LDAPv3 server) or local (the embedded directory)."),
    url: str | None = typer.Option(None, help="ldap:// or ldaps:// URL (ldap)."),
    bind_dn: str | None = typer.Option(None, help="DN to bind as (ldap)."),
    password_env: str | None = typer.Option(None, help="Name of an environment variable holding the bind password."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the bind password from standard input."),
    ask_password: bool = typer.Option(False, "--ask-password", help="Prompt for the bind password (hidden)."),
    start_tls: bool = typer.Option(False, "--start-tls", help="Upgrade ldap:// with StartTLS."),
    ca_file: Path | None = typer.Option(None, help="CA certificates (PEM) to verify the server with."),
    no_tls_verify: bool = typer.Option(False, "--no-tls-verify", help="Do not verify the server certificate (unsafe; tests only)."),
    active_directory: bool = typer.Option(
        False, "--active-directory", help="The server is Active Directory: objectGUID anchor, userAccountControl, unicodePwd (ldap)."
    ),
    base_dn: str | None = typer.Option(None, help="Default base DN (ldap)."),
    path: Path | None = typer.Option(None, help="File of the embedded directory (local)."),
    suffix: str | None = typer.Option(None, help="Suffix of the embedded directory (local; default dc=example,dc=org)."),
    description: str = typer.Option("", help="What this store is for."),
    update: bool = typer.Option(False, "--update", help="Replace an existing store of that name."),
) -> None:
    """Add an identity store. Passwords are never taken as arguments: use
    --password-env, --password-stdin or --ask-password."""
    ldap, local = ("ldap",), ("local",)
    refuse_options_of_other_kinds(kind, {
        "--url": (url, ldap), "--bind-dn": (bind_dn, ldap), "--password-env": (password_env, ldap),
        "--password-stdin": (password_stdin, ldap), "--ask-password": (ask_password, ldap),
        "--start-tls": (start_tls, ldap), "--ca-file": (ca_file, ldap), "--no-tls-verify": (no_tls_verify, ldap),
        "--active-directory": (active_directory, ldap), "--base-dn": (base_dn, ldap),
        "--path": (path, local), "--suffix": (suffix, local),
    })
    data: dict[str, Any] = {"name": name, "kind": kind, "description": description}
    if kind == "ldap":
        data.update(url=url, bind_dn=bind_dn, start_tls=start_tls, base_dn=base_dn, tls_verify=not no_tls_verify)
        if active_directory:
            data["flavor"] = "active_directory"
        if ca_file:
            data["ca_file"] = str(ca_file.resolve())
        if password_env:
            data["bind_password"] = f"env:{password_env}"
        elif password_stdin or ask_password:
            data["bind_password"] = read_secret("Bind password", password_stdin)
    elif kind == "local":
        data.update(path=str(path.expanduser().resolve()) if path else f"{name}.directory", suffix=suffix)
    data = {k: v for k, v in data.items() if v is not None}
    definition = definitions.parse("store", data)
    ws = workspace()
    if not update and any(s.name == name for s in definitions.list_definitions(ws, "store")):
        raise typer.BadParameter(f"a store named {name!r} exists; pass --update to replace it")
    outcome = definitions.save(ws, "store", definition)
    console.print(f"store {name!r} {outcome}")


@app.command("list")
def list_(json: bool = JsonOption) -> None:
    """List identity stores."""
    stores = definitions.list_definitions(workspace(), "store")
    if json:
        print_json(stores)
        return
    table(None, ["name", "kind", "where", "description"], [
        (s.name, s.kind, getattr(s, "url", None) or getattr(s, "path", ""), s.description) for s in stores
    ])


@app.command("show")
def show(name: str, json: bool = JsonOption) -> None:
    """Show a store's definition (secrets left out)."""
    print_document(definitions.exportable(workspace(), "store", name), json)


@app.command("test")
def test(name: str, json: bool = JsonOption) -> None:
    """Connect and bind; print one line describing the server, or the cause of failure."""
    from idsync.services import connections

    print_test_result("store", name, connections.test_store(workspace(), name), json)


@app.command("notify-test")
def notify_test(
    name: str = typer.Argument(..., help="Name of the store whose notification server is tested."),
    to: list[str] = typer.Option([], "--to", help="Recipient (repeat, or comma-separated); default: default_to."),
    json: bool = JsonOption,
) -> None:
    """Send a test message through the store's notification server; print the server's answer in one line."""
    from idsync.services import notifications

    line = notifications.send_test(workspace(), name, to)
    if json:
        print_json({"store": name, "ok": True, "detail": line})
    else:
        console.print(line, markup=False)


@app.command("remove")
def remove(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove a store definition (the directory itself is not touched)."""
    confirm(f"Remove identity store {name!r}?", yes)
    definitions.remove(workspace(), "store", name)
    console.print(f"store {name!r} removed")
