"""schemathesis against the OpenAPI document, in-process: every operation,
with generated parameters and bodies, as an administrator. No answer is a
server error (5xx), and every answer conforms to the schema the document
gives for its status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from idsync.api import create_app
from idsync.api.state import ApiConfig
from idsync.domain.principals import Principal
from idsync.services.workspace import Workspace
from tests.api.conftest import add_people
from tests.scheduler_world import make_world

EXAMPLES = 6
"""Examples per operation: the whole document stays under a minute."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    """One installation for every operation (the scheduler world, a user per role)."""
    root = tmp_path_factory.mktemp("schema")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDSYNC_HOME", str(root / "home"))
        world = make_world(root)
        world.collection("c", ["people"])
        made = add_people(world.ws)
        ws = Workspace(principal=Principal.system("api tests"), database_url=world.ws.database_url)
        app = create_app(ws, ApiConfig(shutdown_timeout=5))
        yield app, {"Authorization": f"Bearer {made['olivia']}"}
        app.state.idsync.background.shutdown()
        ws.close()
        world.ws.close()


@pytest.fixture(scope="module")
def api_schema(served: tuple[Any, dict[str, str]]) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", served[0])


def test_no_server_error_and_answers_match_the_document(api_schema: Any, served: tuple[Any, dict[str, str]]) -> None:
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=served[1], checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:  # every operation is tried; the failures are listed together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations > 80
    assert not failures, "\n\n".join(failures)
