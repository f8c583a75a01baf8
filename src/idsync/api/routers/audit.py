"""``/audit``: the audit log, and the check that nobody tampered with it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from idsync.api.auth import Acting
from idsync.api.models import AuditCheck, AuditPage
from idsync.api.pagination import Page
from idsync.domain.plain import to_plain
from idsync.services import audit as audit_service
from idsync.services import history

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditPage, summary="Configuration changes, decisions and runs started, newest first")
def list_audit(
    ws: Acting, page: Annotated[Page, Depends()],
    kind: Annotated[str | None, Query(description="Only entries about this kind of object (store, job, run...).")] = None,
    name: Annotated[str | None, Query(description="Only entries about the object of this name.")] = None,
) -> dict[str, Any]:
    found = history.list_audit(ws, kind=kind, name=name, limit=page.ask, after=page.position)
    return page.keyed(found, lambda entry: (entry.at, entry.id))


@router.post("/audit/verify", response_model=AuditCheck, summary="Check the audit trail's hash chain (auditor)")
def verify(
    ws: Acting, head: Annotated[list[str] | None, Query(description="Heads recorded earlier, to check as well.")] = None,
) -> dict[str, Any]:
    return to_plain(audit_service.verify(ws, heads=head or ()))  # type: ignore[no-any-return]
