"""The settings in effect, as an administrator reviews them: each setting's
value, where it comes from (its ``IDSYNC_*`` environment variable or the
default), and what it does. Secret values are masked as everywhere else
(:meth:`idsync.settings.Setting.shown`): a secret key only as ``(set)``, a
URL's password as ``***``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from idsync import settings
from idsync.domain.roles import Role
from idsync.services import authz
from idsync.services.workspace import Workspace

FROM_ENVIRONMENT = "environment"
FROM_DEFAULT = "default"


@dataclass(frozen=True)
class SettingView:
    """One setting as shown: never a secret value."""

    name: str
    env_var: str
    value: str
    source: str
    help: str


def effective_settings(ws: Workspace) -> list[SettingView]:
    """Every setting with its effective value (masked) and source; administrators only."""
    authz.require(ws, Role.ADMIN, "read the settings")
    return [
        SettingView(s.name, s.env_var, s.shown(), FROM_ENVIRONMENT if os.environ.get(s.env_var) else FROM_DEFAULT, s.help)
        for s in settings.SETTINGS
    ]
