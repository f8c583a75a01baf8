"""The REST API [S9.2]: FastAPI routers over the service layer, one error shape.

A front end at the CLI's level: it reads requests, resolves who acts (a
session cookie or a bearer token), hands the services a workspace acting
for that principal, and renders what they return as JSON. Roles are
enforced by the services; errors become RFC 9457 problem documents chosen
by their class alone.
"""

from __future__ import annotations

from idsync.api.app import create_app

__all__ = ["create_app"]
