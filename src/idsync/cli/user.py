"""``idsync user``: idsync users, their roles, and directory groups that grant roles; ``idsync whoami``.

Passwords are read from a hidden prompt or, with ``--password-stdin``, from
standard input; never from the command line, where other accounts could
read them in the process list.
"""

from __future__ import annotations

import os

import typer

from idsync.cli.common import TOKEN_VARIABLE, confirm, os_principal, read_secret, workspace
from idsync.cli.output import FormatOption, JsonOption, console, print_json, table, when
from idsync.domain.roles import ROLES, Role, parse_role
from idsync.services import authz, users

app = typer.Typer(help="Users of idsync, their roles, and directory groups that grant roles.", no_args_is_help=True)
group_app = typer.Typer(help="Roles granted to the members of a directory group.", no_args_is_help=True)
app.add_typer(group_app, name="group")

ROLE_HELP = f"A role: {', '.join(ROLES)} (repeat for several)."


def roles_of(texts: list[str], option: str = "--role") -> list[Role]:
    """The roles named, or a usage error (exit 2) listing the roles."""
    try:
        return [parse_role(text) for text in texts]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _detail_json(detail: users.UserDetail) -> dict[str, object]:
    user = detail.user
    return {
        "name": user.name, "display_name": user.display_name, "email": user.email, "os_user": user.os_user,
        "source": user.source, "store": user.store_name, "dn": user.dn, "disabled": user.disabled,
        "password": detail.has_password, "roles": detail.roles,
        "grants": [{"role": g.role.value, "granted_by": g.granted_by, "granted_at": g.granted_at} for g in detail.grants],
        "tokens": [
            {"name": t.name, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
            for t in detail.tokens
        ],
        "created_at": user.created_at, "updated_at": user.updated_at,
    }


def _signs_in(detail: users.UserDetail) -> str:
    user = detail.user
    if user.source == "directory":
        return f"bind to {user.store_name} as {user.dn}"
    return "password" if detail.has_password else "no password (OS account or token only)"


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The user's name (what runs and the audit log record)."),
    display_name: str = typer.Option("", "--display-name", help="The user's full name."),
    email: str | None = typer.Option(None, "--email", help="Where notifications to this user go."),
    os_user: str | None = typer.Option(None, "--os-user", help="The operating-system account the CLI acts for as this user."),
    role: list[str] = typer.Option([], "--role", help=ROLE_HELP),
    password: bool = typer.Option(False, "--password", help="Ask for a password (hidden prompt) to sign in with."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    store: str | None = typer.Option(None, "--store", help="A directory user: the LDAP identity store it signs in to."),
    dn: str | None = typer.Option(None, "--dn", help="A directory user: its DN in that store (it signs in by a bind as it)."),
    json: bool = JsonOption,
) -> None:
    """Add a user, with its roles. Needs the role admin; the first user must be an admin."""
    roles = roles_of(role)
    secret = read_secret("Password", password_stdin, confirm=True) if password or password_stdin else None
    detail = users.add_user(
        workspace(), name, display_name=display_name, email=email, os_user=os_user, password=secret, roles=roles,
        source="directory" if store or dn else "local", store=store, dn=dn,
    )
    if json:
        print_json(_detail_json(detail))
        return
    console.print(f"user {detail.user.name} added; roles: {', '.join(detail.roles) or 'none'}", markup=False)


@app.command("list")
def list_(fmt: str = FormatOption, json: bool = JsonOption) -> None:
    """List users, their roles and how they sign in."""
    found = users.list_users(workspace())
    if json:
        print_json([_detail_json(detail) for detail in found])
        return
    table(None, ["name", "display name", "email", "os user", "signs in by", "roles", "state"], [
        (d.user.name, d.user.display_name, d.user.email or "", d.user.os_user or "", _signs_in(d),
         ", ".join(d.roles), "disabled" if d.user.disabled else "enabled")
        for d in found
    ], fmt=fmt)


@app.command("show")
def show(name: str = typer.Argument(..., help="The user."), json: bool = JsonOption) -> None:
    """Show a user: roles (and who granted them), how it signs in, its tokens."""
    detail = users.show_user(workspace(), name)
    if json:
        print_json(_detail_json(detail))
        return
    user = detail.user
    rows = [
        ("name", user.name), ("display name", user.display_name), ("email", user.email or ""),
        ("os user", user.os_user or ""), ("signs in by", _signs_in(detail)),
        ("state", "disabled" if user.disabled else "enabled"), ("created", when(user.created_at)),
    ]
    rows += [(f"role {g.role}", f"granted by {g.granted_by}, {when(g.granted_at)}") for g in detail.grants]
    rows += [
        (f"token {t.name}", f"idsync_{t.prefix}_…" + (", revoked" if t.revoked_at else "")
         + (f", expires {when(t.expires_at)}" if t.expires_at else ""))
        for t in detail.tokens
    ]
    table(None, ["", ""], rows)


@app.command("passwd")
def passwd(
    name: str | None = typer.Argument(None, help="The user (default: the user you act as)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin",
        help="Read the passwords from standard input: the current one first (when changing your own), then the new one.",
    ),
) -> None:
    """Set a user's password. Your own needs the current one; another user's needs the role admin."""
    ws = workspace()
    me = authz.rights(ws).user
    target = name or (me.name if me is not None else ws.actor)
    old = None
    if me is not None and me.name == target and users.show_user(ws, target).has_password:
        old = read_secret("Current password", password_stdin)
    new = read_secret("New password", password_stdin, confirm=True)
    users.change_password(ws, target, new, old=old)
    console.print(f"password of user {target} changed", markup=False)


@app.command("disable")
def disable(name: str = typer.Argument(..., help="The user.")) -> None:
    """Disable a user: it keeps its roles but holds none, and its tokens stop working."""
    users.set_disabled(workspace(), name, True)
    console.print(f"user {name} disabled", markup=False)


@app.command("enable")
def enable(name: str = typer.Argument(..., help="The user.")) -> None:
    """Enable a disabled user again."""
    users.set_disabled(workspace(), name, False)
    console.print(f"user {name} enabled", markup=False)


@app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The user."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a user with its roles and tokens; what it did stays in the history."""
    confirm(f"Remove user {name} and its tokens?", yes)
    users.remove_user(workspace(), name)
    console.print(f"user {name} removed", markup=False)


@app.command("grant")
def grant(
    name: str = typer.Argument(..., help="The user."),
    role: list[str] = typer.Argument(..., help=ROLE_HELP),
) -> None:
    """Grant roles to a user (admin does not include approver: grant both if meant)."""
    added = users.grant(workspace(), name, roles_of(role, "ROLE"))
    console.print(f"granted to {name}: {', '.join(added)}" if added else f"{name} held those roles already",
                  markup=False)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The user."),
    role: list[str] = typer.Argument(..., help=ROLE_HELP),
) -> None:
    """Take roles from a user."""
    removed = users.revoke(workspace(), name, roles_of(role, "ROLE"))
    console.print(f"revoked from {name}: {', '.join(removed)}" if removed else f"{name} held none of those roles",
                  markup=False)


# ------------------------------------------------------------------ role groups


@group_app.command("add")
def group_add(
    store: str = typer.Argument(..., help="The identity store holding the group."),
    group_dn: str = typer.Argument(..., help="The group's DN (groupOfNames, groupOfUniqueNames, AD group)."),
    role: str = typer.Option(..., "--role", help=f"The role its members hold: {', '.join(ROLES)}."),
) -> None:
    """Grant a role to the members of a directory group (directory users, from their next sign-in)."""
    found = users.add_role_group(workspace(), store, group_dn, roles_of([role])[0])
    console.print(f"members of {found.group_dn} in {found.store_name} hold the role {found.role}", markup=False)


@group_app.command("list")
def group_list(
    store: str | None = typer.Option(None, "--store", help="Only the groups of this store."),
    json: bool = JsonOption,
) -> None:
    """List the directory groups whose members hold a role."""
    found = users.list_role_groups(workspace(), store)
    if json:
        print_json(found)
        return
    table(None, ["store", "group", "role", "added by", "added"], [
        (g.store_name, g.group_dn, g.role, g.created_by, when(g.created_at)) for g in found
    ])


@group_app.command("remove")
def group_remove(
    store: str = typer.Argument(..., help="The identity store holding the group."),
    group_dn: str = typer.Argument(..., help="The group's DN."),
    role: str | None = typer.Option(None, "--role", help="Only this role (default: every role of the group)."),
) -> None:
    """Stop granting roles to the members of a directory group (from their next sign-in)."""
    removed = users.remove_role_group(workspace(), store, group_dn, roles_of([role])[0] if role else None)
    console.print(f"members of {group_dn} in {store} no longer hold: {', '.join(g.role for g in removed)}",
                  markup=False)


# ------------------------------------------------------------------ whoami


def whoami(json: bool = JsonOption) -> None:
    """Show who the CLI acts as (an API token's user, the user mapped to your account, or the account) and its roles."""
    ws = workspace()
    found = authz.rights(ws)
    account = os_principal().name
    if os.environ.get(TOKEN_VARIABLE):
        how = f"the API token in {TOKEN_VARIABLE}"
    elif found.user is not None:
        how = f"the operating-system account {account}"
    else:
        how = "no idsync user (the operating-system account itself)"
    roles = sorted(role.value for role in found.roles)
    if json:
        print_json({
            "user": found.user.name if found.user else None, "account": account, "through": how,
            "roles": roles, "bootstrap": found.bootstrap, "disabled": bool(found.user and found.user.disabled),
        })
        return
    who = f"user {found.user.name}" if found.user is not None else f"account {account}"
    console.print(f"{who}, through {how}", markup=False)
    if found.bootstrap:
        console.print("bootstrap administrator: no idsync user exists yet", markup=False)
    if found.user is not None and found.user.disabled:
        console.print("the user is disabled", markup=False)
    console.print(f"roles: {', '.join(roles) or 'none'}", markup=False)
