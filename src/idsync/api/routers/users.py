"""``/users`` (administrators; a user may read itself and change its own
password), ``/tokens`` (one's own; administrators anyone's) and role groups."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from idsync.api import models as out
from idsync.api.auth import Acting
from idsync.domain.durations import parse_duration
from idsync.domain.plain import to_plain
from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.services import tokens, users

router = APIRouter(tags=["users"])


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    display_name: str = ""
    email: str | None = None
    os_user: str | None = None
    password: str | None = Field(default=None, description="A local user's password (write-only).")
    roles: list[Role] = Field(default_factory=list)
    source: Literal["local", "directory"] = "local"
    store: str | None = Field(default=None, description="A directory user's identity store.")
    dn: str | None = Field(default=None, description="A directory user's DN.")


class Roles(BaseModel):
    roles: list[Role] = Field(min_length=1)


class Password(BaseModel):
    new: str = Field(min_length=1, max_length=4096)
    old: str | None = Field(default=None, max_length=4096, description="One's own current password, when changing it.")


class Enabled(BaseModel):
    disabled: bool


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    user: str | None = Field(default=None, description="Whose token (default: mine; another's needs admin).")
    expires: str | None = Field(default=None, description="Valid for this long (90d, 12h); default: until revoked.")


class RoleGroup(BaseModel):
    store: str
    group_dn: str
    role: Role


def _detail(detail: users.UserDetail) -> dict[str, Any]:
    found = to_plain(detail)
    found["roles"] = sorted({g["role"] for g in found["grants"]})
    return found  # type: ignore[no-any-return]


@router.get("/users", response_model=list[out.User], summary="Users with their roles (admin)")
def list_users(ws: Acting) -> list[Any]:
    return [_detail(d) for d in users.list_users(ws)]


@router.post("/users", response_model=out.User, status_code=201, summary="Add a user (admin)")
def add_user(body: NewUser, ws: Acting, response: Response) -> dict[str, Any]:
    detail = users.add_user(
        ws, body.name, display_name=body.display_name, email=body.email, os_user=body.os_user,
        password=body.password, roles=body.roles, source=body.source, store=body.store, dn=body.dn,
    )
    response.headers["Location"] = f"/api/v1/users/{detail.user.name}"
    return _detail(detail)


@router.get("/users/{name}", response_model=out.User, summary="A user (itself, or admin)")
def show_user(name: str, ws: Acting) -> dict[str, Any]:
    return _detail(users.show_user(ws, name))


@router.delete("/users/{name}", status_code=204, summary="Remove a user (admin)")
def remove_user(name: str, ws: Acting) -> Response:
    users.remove_user(ws, name)
    return Response(status_code=204)


@router.post("/users/{name}/disabled", response_model=out.UserRow, summary="Disable or enable a user (admin)")
def set_disabled(name: str, body: Enabled, ws: Acting) -> dict[str, Any]:
    return to_plain(users.set_disabled(ws, name, body.disabled))  # type: ignore[no-any-return]


@router.post("/users/{name}/grant", response_model=out.RolesChanged, summary="Grant roles (admin)")
def grant(name: str, body: Roles, ws: Acting) -> dict[str, Any]:
    return {"user": name, "granted": to_plain(users.grant(ws, name, body.roles))}


@router.post("/users/{name}/revoke", response_model=out.RolesChanged, summary="Revoke roles (admin)")
def revoke(name: str, body: Roles, ws: Acting) -> dict[str, Any]:
    return {"user": name, "revoked": to_plain(users.revoke(ws, name, body.roles))}


@router.post("/users/{name}/password", status_code=204, summary="Set a password (one's own with the old one; admin: anyone's)")
def change_password(name: str, body: Password, ws: Acting) -> Response:
    users.change_password(ws, name, body.new, old=body.old)
    return Response(status_code=204)


@router.get("/role-groups", response_model=list[out.RoleGroup], tags=["users"], summary="Directory groups granting roles (admin)")
def list_role_groups(ws: Acting, store: str | None = None) -> list[Any]:
    return to_plain(users.list_role_groups(ws, store))  # type: ignore[no-any-return]


@router.post("/role-groups", response_model=out.RoleGroup, tags=["users"], status_code=201, summary="Grant a role to a directory group's members (admin)")
def add_role_group(body: RoleGroup, ws: Acting) -> dict[str, Any]:
    return to_plain(users.add_role_group(ws, body.store, body.group_dn, body.role))  # type: ignore[no-any-return]


@router.delete("/role-groups", response_model=list[out.RoleGroup], tags=["users"], summary="Stop granting roles to a directory group (admin)")
def remove_role_group(
    ws: Acting, store: str, group_dn: str, role: Annotated[Role | None, Query()] = None,
) -> list[Any]:
    return to_plain(users.remove_role_group(ws, store, group_dn, role))  # type: ignore[no-any-return]


@router.get("/tokens", response_model=list[out.Token], tags=["tokens"], summary="API tokens (mine; another user's or every user's: admin); never a secret")
def list_tokens(
    ws: Acting, user: str | None = None,
    all_users: Annotated[bool, Query(alias="all", description="Every user's tokens (admin).")] = False,
) -> list[Any]:
    return to_plain(tokens.list_tokens(ws, user=user, every_user=all_users))  # type: ignore[no-any-return]


@router.post("/tokens", response_model=out.NewToken, tags=["tokens"], status_code=201, summary="Create an API token: the answer holds it, once")
def create_token(body: NewToken, ws: Acting) -> dict[str, Any]:
    try:
        lifetime = parse_duration(body.expires) if body.expires is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc), field="expires") from exc
    made = tokens.create(ws, body.name, user=body.user, expires=lifetime)
    return {**to_plain(made.row), "token": made.token}


@router.delete("/tokens/{name}", response_model=out.Token, tags=["tokens"], summary="Revoke a token (by name or prefix)")
def revoke_token(name: str, ws: Acting, user: str | None = None) -> dict[str, Any]:
    return to_plain(tokens.revoke(ws, name, user=user))  # type: ignore[no-any-return]
