"""The web portal [S9.3]: server-rendered pages over the service layer.

A front end over the REST API's app: :func:`create_site` builds the API
(:func:`idsync.api.create_app`) and mounts the pages on it, sharing its
signed session cookie; the API knows nothing of the portal. Pages are Jinja2 templates (autoescaped); every form is a plain
HTML form that works without JavaScript and carries the session's CSRF
token; a GET never changes anything. Roles are enforced by the services:
a refusal is a 403 page, never a hidden button alone.
"""

from __future__ import annotations

from fastapi import FastAPI

from idsync.api import create_app
from idsync.api.state import ApiConfig
from idsync.portal.mount import install
from idsync.services.workspace import Workspace

__all__ = ["create_site", "install"]


def create_site(ws: Workspace, config: ApiConfig | None = None) -> FastAPI:
    """The app ``idsync serve`` serves: the REST API with the portal's pages."""
    app = create_app(ws, config)
    install(app)
    return app
