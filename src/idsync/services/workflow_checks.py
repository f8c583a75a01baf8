"""A workflow is refused when saved unless enough people could approve its requests [S7.5].

The definition alone says only that approvers are named (see
:class:`~idsync.domain.workflow.WorkflowSettings`); whether they exist, are
enabled and hold the approver role only the database knows, and a group's
members only the directory. A workflow that no one could satisfy would
leave every run of the store waiting until it expires, or tempt someone to
switch approval off: it is refused before it is saved, with who is missing.
"""

from __future__ import annotations

from typing import Any

from idsync.domain.dn import normalize_dn
from idsync.domain.roles import Role
from idsync.domain.workflow import WorkflowSettings
from idsync.errors import ConfigError, IdsyncError
from idsync.services.workspace import Workspace
from idsync.store.users_repo import UserRepository


def check(ws: Workspace, store: Any) -> None:
    """ConfigError when *store*'s workflow requires approval and fewer people
    can approve than it requires."""
    workflow: WorkflowSettings | None = getattr(store, "workflow", None)
    if workflow is None or not workflow.enabled:
        return
    label = f"identity store {store.name!r}: workflow"
    eligible, problems = named_approvers(ws, workflow.approvers)
    if len(eligible) < workflow.required_approvals and workflow.approver_group:
        eligible |= _group_approvers(ws, store.name, workflow.approver_group, label)
    if len(eligible) >= workflow.required_approvals:
        return
    why = "; ".join(problems) if problems else "nobody named holds the approver role"
    raise ConfigError(
        f"{label} needs {workflow.required_approvals} approval(s) but only {len(eligible)} "
        f"person(s) could give one ({why})",
        field="workflow.approvers",
        hint="name enabled users who hold the approver role (or a directory group of them), or lower required_approvals",
    )


def named_approvers(ws: Workspace, names: list[str]) -> tuple[set[str], list[str]]:
    """The names among *names* that may approve, and why each other may not."""
    eligible: set[str] = set()
    problems: list[str] = []
    with ws.db.session() as session:
        repo = UserRepository(session)
        for name in names:
            user = repo.by_name(name)
            if user is None:
                problems.append(f"{name!r} is not an idsync user")
            elif user.disabled:
                problems.append(f"{name!r} is disabled")
            elif Role.APPROVER not in repo.roles(user.id):
                problems.append(f"{name!r} does not hold the approver role")
            else:
                eligible.add(user.name)
    return eligible, problems


def _group_approvers(ws: Workspace, store: str, group_dn: str, label: str) -> set[str]:
    """The idsync users listed in *group_dn* who hold the approver role."""
    # Reading a group opens connections, which need the definitions module
    # this check is part of: imported here, when a group is read.
    from idsync.services import directory_groups

    try:
        members = directory_groups.member_dns(ws, store, group_dn)
    except IdsyncError as exc:
        raise ConfigError(
            f"{label}: approver_group {group_dn!r} could not be read: {exc.message}",
            field="workflow.approver_group",
            hint="check the group's DN, or save the workflow when the directory answers",
        ) from exc
    eligible: set[str] = set()
    with ws.db.session() as session:
        repo = UserRepository(session)
        for user in repo.with_dn():
            if user.dn and not user.disabled and normalize_dn(user.dn) in members and Role.APPROVER in repo.roles(user.id):
                eligible.add(user.name)
    return eligible
