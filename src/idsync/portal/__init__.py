"""The web portal [S9.3]: server-rendered pages over the service layer.

A front end beside the REST API, served by the same app (``install`` is
called by :func:`idsync.api.app.create_app`) and sharing its signed session
cookie. Pages are Jinja2 templates (autoescaped); every form is a plain
HTML form that works without JavaScript and carries the session's CSRF
token; a GET never changes anything. Roles are enforced by the services:
a refusal is a 403 page, never a hidden button alone.
"""

from __future__ import annotations

from idsync.portal.mount import install

__all__ = ["install"]
