"""``/status`` (what ``idsync status`` shows) and ``/whoami``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from idsync.api.auth import Acting
from idsync.api.models import Status, WhoAmI
from idsync.domain.plain import to_plain
from idsync.services import authz
from idsync.services import status as status_service

router = APIRouter(tags=["status"])


@router.get("/status", response_model=Status, summary="Runs active and failed, requests awaiting me, next scheduled runs, the outbox")
def status(ws: Acting) -> dict[str, Any]:
    return to_plain(status_service.status(ws))  # type: ignore[no-any-return]


@router.get("/whoami", response_model=WhoAmI, summary="Who the request acts as, and its roles")
def whoami(ws: Acting) -> dict[str, Any]:
    found = authz.rights(ws)
    return {
        "name": ws.principal.name,
        "kind": ws.principal.kind,
        "user": found.user.name if found.user else None,
        "roles": sorted(role.value for role in found.roles),
        "disabled": bool(found.user and found.user.disabled),
    }
