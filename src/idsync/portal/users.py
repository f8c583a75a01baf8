"""Users and their roles (admins): the list with the add form and the
directory groups that grant roles; a user's page to disable or enable it,
grant or revoke roles, and set its password. Every form goes through
:mod:`idsync.services.users`, which checks the role and audits the change;
a refused form shows its page again with the reason."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.domain.roles import ROLES, Role
from idsync.errors import ConfigError, NotFoundError, StateConflictError
from idsync.portal.admin import refusal
from idsync.portal.web import Form, PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import users

router = APIRouter(route_class=PortalRoute)

REFUSED = (ConfigError, StateConflictError, NotFoundError)
DONE = {
    "added": "The user is added.",
    "disabled": "The user is disabled.",
    "enabled": "The user is enabled.",
    "granted": "The roles are granted.",
    "revoked": "The roles are revoked.",
    "password": "The password is set.",
    "group-added": "The group now grants its role.",
    "group-removed": "The group no longer grants the role.",
}


def _roles(form: Form) -> list[Role]:
    return [Role(value) for value in form.all("roles") if value in ROLES]


def _list(request: Request, who: Viewer, *, status: int = 200, message: str | None = None,
          done: str = "") -> Response:
    return render(request, "admin_users.html", who, status=status, found=users.list_users(who.ws),
                  groups=users.list_role_groups(who.ws), roles=[r.value for r in ROLES], message=message,
                  done=DONE.get(done))


@router.get("/admin/users")
def list_users(request: Request, who: Viewing, done: str = "") -> Response:
    return _list(request, who, done=done)


@router.post("/admin/users")
def add_user(request: Request, who: Viewing, form: Posted) -> Response:
    source = form.get("source", "local")
    try:
        added = users.add_user(
            who.ws, form.get("name"), display_name=form.get("display_name").strip(),
            email=form.get("email").strip() or None, password=form.get("password") or None,
            roles=_roles(form), source=source, store=form.get("store").strip() or None,
            dn=form.get("dn").strip() or None,
        )
    except REFUSED as exc:
        return _list(request, who, status=422, message=refusal(exc))
    return see_other(f"/admin/users/{added.user.name}?done=added")


def _user(request: Request, who: Viewer, name: str, *, status: int = 200, message: str | None = None,
          done: str = "") -> Response:
    return render(request, "admin_user.html", who, status=status, detail=users.show_user(who.ws, name),
                  roles=[r.value for r in ROLES], message=message, done=DONE.get(done))


@router.get("/admin/users/{name}")
def show_user(request: Request, who: Viewing, name: str, done: str = "") -> Response:
    return _user(request, who, name, done=done)


@router.post("/admin/users/{name}/disabled")
def set_disabled(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    disabled = form.get("disabled") == "true"
    try:
        users.set_disabled(who.ws, name, disabled)
    except REFUSED as exc:
        return _user(request, who, name, status=409, message=refusal(exc))
    return see_other(f"/admin/users/{name}?done={'disabled' if disabled else 'enabled'}")


@router.post("/admin/users/{name}/roles")
def change_roles(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    roles = _roles(form)
    revoking = form.get("action") == "revoke"
    if not roles:
        return _user(request, who, name, status=422, message="tick at least one role")
    try:
        (users.revoke if revoking else users.grant)(who.ws, name, roles)
    except REFUSED as exc:
        return _user(request, who, name, status=409, message=refusal(exc))
    return see_other(f"/admin/users/{name}?done={'revoked' if revoking else 'granted'}")


@router.post("/admin/users/{name}/password")
def set_password(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    try:
        users.change_password(who.ws, name, form.get("password"), old=form.get("old") or None)
    except REFUSED as exc:
        return _user(request, who, name, status=422, message=refusal(exc))
    return see_other(f"/admin/users/{name}?done=password")


@router.post("/admin/role-groups")
def add_role_group(request: Request, who: Viewing, form: Posted) -> Response:
    try:
        role = Role(form.get("role"))
        users.add_role_group(who.ws, form.get("store").strip(), form.get("group_dn").strip(), role)
    except ValueError:
        return _list(request, who, status=422, message="choose the role the group grants")
    except REFUSED as exc:
        return _list(request, who, status=422, message=refusal(exc))
    return see_other("/admin/users?done=group-added")


@router.post("/admin/role-groups/remove")
def remove_role_group(request: Request, who: Viewing, form: Posted) -> Response:
    try:
        users.remove_role_group(who.ws, form.get("store"), form.get("group_dn"), Role(form.get("role")))
    except ValueError:
        return _list(request, who, status=422, message="choose the role the group grants")
    except REFUSED as exc:
        return _list(request, who, status=422, message=refusal(exc))
    return see_other("/admin/users?done=group-removed")
