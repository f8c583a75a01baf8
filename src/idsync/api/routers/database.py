"""``/database``: the idsync database's schema revision (what ``idsync db current`` says), and
``/settings``: the settings in effect, secrets masked; admins only."""

from __future__ import annotations

from fastapi import APIRouter

from idsync.api.auth import Acting
from idsync.api.models import SchemaRevision, SettingItem
from idsync.domain.roles import Role
from idsync.services import authz, database, settings_view

router = APIRouter(tags=["admin"])


@router.get("/database", summary="The database's schema revision, and the one this idsync needs")
def current(ws: Acting) -> SchemaRevision:
    authz.require(ws, Role.ADMIN, "read the database's schema revision")
    status = database.schema_status(ws)
    return SchemaRevision(current=status.current, head=status.head, up_to_date=status.up_to_date)


@router.get("/settings", summary="The settings in effect, with their sources; secrets masked (admin)")
def current_settings(ws: Acting) -> list[SettingItem]:
    return [SettingItem(name=s.name, env_var=s.env_var, value=s.value, source=s.source, help=s.help)
            for s in settings_view.effective_settings(ws)]
