"""``idsync store``: identity stores (directories)."""

from __future__ import annotations

import sys
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
from idsync.cli.output import FormatOption, JsonOption, console, print_json, table
from idsync.cli.review_view import confirmed
from idsync.services import definitions, store_edits
from idsync.services.workspace import Workspace

app = typer.Typer(help="Identity stores: the directories idsync writes (and reads).", no_args_is_help=True)

YesOption = typer.Option(False, "--yes", "-y", help="Save without asking (for scripts).")
SmtpHost = typer.Option(None, "--smtp-host", help="Notification server (SMTP) host name.")
SmtpPort = typer.Option(None, "--smtp-port", help="Its port (default: 25, 587 for starttls, 465 for implicit).")
SmtpTls = typer.Option(None, "--smtp-tls", help="none, starttls (the default) or implicit.")
SmtpCaFile = typer.Option(None, "--smtp-ca-file", help="CA certificates (PEM) to verify the notification server with.")
SmtpSender = typer.Option(None, "--smtp-sender", help="From address of the notifications.")
SmtpUsername = typer.Option(None, "--smtp-username", help="Login name at the notification server (empty for none).")
SmtpPasswordEnv = typer.Option(
    None, "--smtp-password-env", help="Name of an environment variable holding the notification server password."
)
SmtpPasswordStdin = typer.Option(
    False, "--smtp-password-stdin", help="Read the notification server password from standard input.", show_default=False
)
SmtpTo = typer.Option(None, "--smtp-to", help="Default recipient (repeat, or comma-separated; replaces the list).")
SmtpCc = typer.Option(None, "--smtp-cc", help="Default copy recipient (repeat, or comma-separated; replaces the list).")
SmtpTimeout = typer.Option(None, "--smtp-timeout", help="Seconds to wait for the notification server.")
SmtpPlaintextLogin = typer.Option(
    None, "--smtp-allow-plaintext-login/--smtp-refuse-plaintext-login",
    help="Allow a login over --smtp-tls none, which sends the password in clear.", show_default=False,
)
WebhookUrl = typer.Option(None, "--webhook-url", help="http(s) URL that also receives each notification (empty for none).")
WebhookSecretEnv = typer.Option(
    None, "--webhook-secret-env", help="Name of an environment variable holding the webhook's signing key."
)


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
    smtp_host: str | None = SmtpHost,
    smtp_port: int | None = SmtpPort,
    smtp_tls: str | None = SmtpTls,
    smtp_ca_file: Path | None = SmtpCaFile,
    smtp_sender: str | None = SmtpSender,
    smtp_username: str | None = SmtpUsername,
    smtp_password_env: str | None = SmtpPasswordEnv,
    smtp_password_stdin: bool = SmtpPasswordStdin,
    smtp_to: list[str] | None = SmtpTo,
    smtp_cc: list[str] | None = SmtpCc,
    smtp_timeout: float | None = SmtpTimeout,
    smtp_plaintext_login: bool | None = SmtpPlaintextLogin,
    webhook_url: str | None = WebhookUrl,
    webhook_secret_env: str | None = WebhookSecretEnv,
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Add an identity store, and its notification server; review it, then save."""
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
    data = {k: v for k, v in data.items() if v is not None and k not in ("name", "kind")}
    if smtp_password_env and smtp_password_stdin and (password_stdin or ask_password):
        raise typer.BadParameter("standard input gives one secret: pass the bind password another way")
    server = _server_fields(
        smtp_host=smtp_host, smtp_port=smtp_port, smtp_tls=smtp_tls, smtp_ca_file=smtp_ca_file,
        smtp_sender=smtp_sender, smtp_username=smtp_username, smtp_password_env=smtp_password_env,
        smtp_password_stdin=smtp_password_stdin, smtp_to=smtp_to, smtp_cc=smtp_cc, smtp_timeout=smtp_timeout,
        smtp_plaintext_login=smtp_plaintext_login, webhook_url=webhook_url, webhook_secret_env=webhook_secret_env,
    )
    definition = store_edits.new_store(name, kind, store_edits.StoreEdit(fields=data, notification=server))
    ws = workspace()
    if not update and store_edits.find_store(ws, name) is not None:
        raise typer.BadParameter(f"a store named {name!r} exists; pass --update to replace it")
    _review_save(ws, definition, yes=yes or not sys.stdin.isatty(), json=json)


@app.command("edit")
def edit(
    name: str = typer.Argument(..., help="The store to change."),
    description: str | None = typer.Option(None, help="New description."),
    url: str | None = typer.Option(None, help="ldap:// or ldaps:// URL (ldap)."),
    bind_dn: str | None = typer.Option(None, help="DN to bind as (ldap; empty for an anonymous bind)."),
    password_env: str | None = typer.Option(None, help="Name of an environment variable holding the bind password."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the bind password from standard input.", show_default=False
    ),
    ask_password: bool = typer.Option(False, "--ask-password", help="Prompt for the bind password (hidden).", show_default=False),
    start_tls: bool | None = typer.Option(None, "--start-tls/--no-start-tls", help="Upgrade ldap:// with StartTLS, or not.", show_default=False),
    ca_file: Path | None = typer.Option(None, help="CA certificates (PEM) to verify the server with."),
    tls_verify: bool | None = typer.Option(
        None, "--verify-tls/--skip-tls-verify", help="Verify the server certificate, or not (unsafe; tests only).", show_default=False
    ),
    flavor: str | None = typer.Option(None, "--flavor", help="generic or active_directory (ldap)."),
    base_dn: str | None = typer.Option(None, help="Default base DN (ldap; empty for none)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds to wait for the server (ldap)."),
    page_size: int | None = typer.Option(None, "--page-size", help="Entries per page of a search (ldap)."),
    path: Path | None = typer.Option(None, help="File of the embedded directory (local)."),
    suffix: str | None = typer.Option(None, help="Suffix of the embedded directory (local)."),
    smtp_host: str | None = SmtpHost,
    smtp_port: int | None = SmtpPort,
    smtp_tls: str | None = SmtpTls,
    smtp_ca_file: Path | None = SmtpCaFile,
    smtp_sender: str | None = SmtpSender,
    smtp_username: str | None = SmtpUsername,
    smtp_password_env: str | None = SmtpPasswordEnv,
    smtp_password_stdin: bool = SmtpPasswordStdin,
    smtp_to: list[str] | None = SmtpTo,
    smtp_cc: list[str] | None = SmtpCc,
    smtp_timeout: float | None = SmtpTimeout,
    smtp_plaintext_login: bool | None = SmtpPlaintextLogin,
    webhook_url: str | None = WebhookUrl,
    webhook_secret_env: str | None = WebhookSecretEnv,
    remove_notification_server: bool = typer.Option(
        False, "--remove-notification-server", help="The store sends no notifications any more."
    ),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Change some fields of a store or of its notification server; review the differences, then save."""
    if sum(bool(x) for x in (password_env, password_stdin, ask_password)) > 1:
        raise typer.BadParameter("give one of --password-env, --password-stdin and --ask-password")
    if password_stdin and smtp_password_stdin:
        raise typer.BadParameter("standard input gives one secret: pass the bind password another way")
    ws = workspace()
    current = store_edits.load_store(ws, name)
    fields: dict[str, Any] = {
        "description": description, "url": url, "bind_dn": bind_dn, "start_tls": start_tls, "tls_verify": tls_verify,
        "flavor": flavor, "base_dn": base_dn, "timeout": timeout, "page_size": page_size, "suffix": suffix,
        "ca_file": str(ca_file.expanduser().resolve()) if ca_file else None,
        "path": str(path.expanduser().resolve()) if path else None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if password_env:
        fields["bind_password"] = f"env:{password_env}"
    elif password_stdin or ask_password:
        fields["bind_password"] = read_secret("Bind password", password_stdin)
    server = _server_fields(
        smtp_host=smtp_host, smtp_port=smtp_port, smtp_tls=smtp_tls, smtp_ca_file=smtp_ca_file,
        smtp_sender=smtp_sender, smtp_username=smtp_username, smtp_password_env=smtp_password_env,
        smtp_password_stdin=smtp_password_stdin, smtp_to=smtp_to, smtp_cc=smtp_cc, smtp_timeout=smtp_timeout,
        smtp_plaintext_login=smtp_plaintext_login, webhook_url=webhook_url, webhook_secret_env=webhook_secret_env,
    )
    updated = store_edits.edit_store(current, store_edits.StoreEdit(
        fields=fields, notification=server, remove_notification=remove_notification_server,
    ))
    _review_save(ws, updated, yes=yes, json=json)


def _server_fields(
    *, smtp_host: str | None, smtp_port: int | None, smtp_tls: str | None, smtp_ca_file: Path | None,
    smtp_sender: str | None, smtp_username: str | None, smtp_password_env: str | None, smtp_password_stdin: bool,
    smtp_to: list[str] | None, smtp_cc: list[str] | None, smtp_timeout: float | None,
    smtp_plaintext_login: bool | None, webhook_url: str | None, webhook_secret_env: str | None,
) -> dict[str, Any]:
    """The notification server fields given as options (secrets from the
    environment or standard input, never from the command line)."""
    if smtp_password_env and smtp_password_stdin:
        raise typer.BadParameter("give --smtp-password-env or --smtp-password-stdin, not both")
    fields: dict[str, Any] = {
        "host": smtp_host, "port": smtp_port, "tls": smtp_tls, "sender": smtp_sender, "username": smtp_username,
        "timeout": smtp_timeout, "allow_plaintext_login": smtp_plaintext_login, "webhook_url": webhook_url,
        "ca_file": str(smtp_ca_file.expanduser().resolve()) if smtp_ca_file else None,
        "default_to": _addresses(smtp_to), "default_cc": _addresses(smtp_cc),
    }
    if smtp_password_env:
        fields["password"] = f"env:{smtp_password_env}"
    elif smtp_password_stdin:
        fields["password"] = read_secret("Notification server password", True)
    if webhook_secret_env:
        fields["webhook_secret"] = f"env:{webhook_secret_env}"
    return {k: v for k, v in fields.items() if v is not None}


def _addresses(values: list[str] | None) -> list[str] | None:
    """Repeated or comma-separated addresses; None when the option was not given."""
    if not values:
        return None
    return [a.strip() for v in values for a in v.split(",") if a.strip()]


def _review_save(ws: Workspace, store: Any, *, yes: bool, json: bool) -> None:
    """Show what saving *store* would do (secrets masked), confirm, save."""
    review = store_edits.review_changes(ws, store)
    outcome = store_edits.save_store(ws, store) if confirmed(review, yes=yes, json=json) else "unchanged"
    if json:
        print_json({"store": store.name, "outcome": outcome, "review": review})
    else:
        console.print(f"store {store.name!r} {outcome}", markup=False)


@app.command("list")
def list_(fmt: str = FormatOption, json: bool = JsonOption) -> None:
    """List identity stores."""
    stores = definitions.list_definitions(workspace(), "store")
    if json:
        print_json(stores)
        return
    table(None, ["name", "kind", "where", "description"], [
        (s.name, s.kind, getattr(s, "url", None) or getattr(s, "path", ""), s.description) for s in stores
    ], fmt=fmt)


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



@app.command("workflow")
def workflow(
    name: str = typer.Argument(..., help="The identity store whose workflow to set."),
    manual: bool | None = typer.Option(None, "--manual/--no-manual", help="Manual runs need approval, or not.", show_default=False),
    scheduled: bool | None = typer.Option(
        None, "--scheduled/--no-scheduled", help="Scheduled runs need approval, or not.", show_default=False
    ),
    held: bool | None = typer.Option(
        None, "--held/--no-held", help="Runs held by a safety limit become requests, or not.", show_default=False
    ),
    approver: list[str] | None = typer.Option(
        None, "--approver", help="An idsync user who may approve (repeat, or separate with commas); replaces the list."
    ),
    approver_group: str | None = typer.Option(
        None, "--approver-group", help="DN of a directory group of this store whose members may approve (empty: none)."
    ),
    required: int | None = typer.Option(None, "--required", min=1, help="Approvals needed, from distinct people."),
    expires_after: str | None = typer.Option(
        None, "--expires-after", help="A request not decided by then expires and never runs (e.g. 7d, 36h)."
    ),
    stale_after: str | None = typer.Option(None, "--stale-after", help="Plans older than this are flagged stale (e.g. 1d)."),
    escalate_after: str | None = typer.Option(
        None, "--escalate-after", help="Time without a decision before the request is escalated (e.g. 2d)."
    ),
    escalate_to: list[str] | None = typer.Option(
        None, "--escalate-to", help="An idsync user the request is escalated to (repeat, or separate with commas)."
    ),
    escalate_group: str | None = typer.Option(
        None, "--escalate-group", help="DN of a directory group whose members the request is escalated to."
    ),
    no_escalation: bool = typer.Option(False, "--no-escalation", help="Remove the escalation."),
    off: bool = typer.Option(False, "--off", help="Remove the workflow: no run of this store needs approval."),
    yes: bool = YesOption,
    json: bool = JsonOption,
) -> None:
    """Set which runs of the collections writing to a store need approval, who approves, how many, for how long; review the differences, then save.

    A workflow that requires approval is refused unless enough enabled users
    holding the approver role could approve (named, or members of the group).
    """
    fields: dict[str, Any] = {
        "manual": manual, "scheduled": scheduled, "held": held, "approvers": _names(approver),
        "approver_group": approver_group, "required_approvals": required, "expires_after": expires_after,
        "stale_after": stale_after,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    escalation = {"after": escalate_after, "approvers": _names(escalate_to), "approver_group": escalate_group}
    escalation = {k: v for k, v in escalation.items() if v is not None}
    if no_escalation and escalation:
        raise typer.BadParameter("give escalation settings or --no-escalation, not both")
    if escalation:
        fields["escalation"] = escalation
    elif no_escalation:
        fields["escalation"] = ""
    ws = workspace()
    current = store_edits.load_store(ws, name)
    updated = store_edits.edit_store(current, store_edits.StoreEdit(workflow=fields, remove_workflow=off))
    _review_save(ws, updated, yes=yes, json=json)


def _names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]
