"""Who acts: the principal every use case is carried out for.

A front end resolves its principal (the CLI: the operating-system account
running it; the REST API and the portal: the signed-in user or token) and
hands it to the services in the :class:`~idsync.services.workspace.Workspace`
it works through. No service finds out for itself who acts, so nothing a
caller can set, such as an environment variable, decides whose rights apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["os-user", "user", "system"]


@dataclass(frozen=True)
class Principal:
    """An acting identity: its name as recorded on runs, plans and the audit log.

    *kind* tells where the name comes from: ``os-user`` an operating-system
    account (the CLI), ``user`` an idsync user (API, portal), ``system`` idsync
    itself acting on its own (a schedule firing, the demo).
    """

    name: str
    kind: PrincipalKind = "user"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a principal needs a name")

    @classmethod
    def system(cls, name: str) -> Principal:
        return cls(name, "system")

    def __str__(self) -> str:
        return self.name
