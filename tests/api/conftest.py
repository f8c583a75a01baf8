"""An installation served by the REST API in-process (FastAPI's TestClient):
the scheduler world (embedded directory ``dir``, jobs ``ou`` and ``people``,
collection ``c``) and one user per role, each with an API token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from idsync.api import create_app
from idsync.api.state import ApiConfig
from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.services import tokens, users
from idsync.services.workspace import Workspace
from tests.scheduler_world import World, make_world

PASSWORD = "correct horse battery"
PEOPLE_ROLES: dict[str, tuple[Role, ...]] = {
    "olivia": (Role.ADMIN, Role.OPERATOR),
    "otto": (Role.OPERATOR,),
    "alice": (Role.APPROVER,),
    "bob": (Role.APPROVER,),
    "audrey": (Role.AUDITOR,),
}


@dataclass
class Api:
    """The app under test, with a bearer token per user."""

    client: TestClient
    world: World
    tokens: dict[str, str] = field(default_factory=dict)

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, method: str, path: str, user: str = "olivia", expect: int | None = 200, **kwargs: Any) -> Any:
        """*method* on */api/v1 + path* as *user*; the response, checked for status *expect*."""
        headers = {**self.as_(user), **kwargs.pop("headers", {})}
        response = self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.text)
        return response

    def until(self, path: str, done: Any, user: str = "olivia", timeout: float = 30.0) -> Any:
        """GET *path* until *done(body)* holds; the body."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.call("GET", path, user).json()
            if done(body):
                return body
            assert time.monotonic() < deadline, f"{path} never got there: {body}"
            time.sleep(0.1)


def add_people(ws: Workspace) -> dict[str, str]:
    """The users of :data:`PEOPLE_ROLES` (password :data:`PASSWORD`) and a token for each."""
    ws = ws.acting_as(Principal.system("tests"))
    for name, roles in PEOPLE_ROLES.items():
        users.add_user(ws, name, password=PASSWORD, roles=roles, email=f"{name}@example.org")
    admin = ws.acting_as(Principal("olivia", "user"))
    return {name: tokens.create(admin, "tests", user=name).token for name in PEOPLE_ROLES}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    world = make_world(tmp_path)
    world.collection("c", ["people"])
    made = add_people(world.ws)
    served = Workspace(principal=Principal.system("api tests"), database_url=world.ws.database_url)
    app = create_app(served, ApiConfig(shutdown_timeout=5))
    with TestClient(app) as client:
        yield Api(client, world, made)
    served.close()
    world.ws.close()
