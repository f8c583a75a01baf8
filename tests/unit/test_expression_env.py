"""Jobs read only the environment variables they list (or the setting
IDSYNC_EXPRESSION_ENV lists), never an IDSYNC_* one: a reference seen when
the job is saved is refused then, any other fails its record naming the variable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from idsync.domain.entry import Record
from idsync.engine.context import RunContext
from idsync.engine.expressions import compile_expression
from idsync.engine.mapping import Mapper
from idsync.errors import ConfigError, RecordError
from idsync.services import definitions, jobs
from tests.jobs import job_definition
from tests.scheduler_world import PEOPLE, World, make_world

LABEL = "mapping 'mail'"
NOW = datetime(2024, 5, 1, tzinfo=UTC)
ENVIRON = {"DEPT_CODE": "42", "HR_PASSWORD": "s3cret", "IDSYNC_SECRET_KEY": "k" * 44, "SHARED": "yes"}


@pytest.fixture(autouse=True)
def shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_EXPRESSION_ENV", "SHARED, IDSYNC_SECRET_KEY")


def context(*listed: str) -> RunContext:
    return RunContext.create("people", now=NOW, environ=ENVIRON, readable=listed)


def value(code: str, ctx: RunContext) -> object:
    return compile_expression(code, LABEL).evaluate({"v": "HR_PASSWORD"}, ctx)


def test_listed_variables_and_the_settings_are_readable() -> None:
    ctx = context("DEPT_CODE")
    assert value("context.env['DEPT_CODE'] + context.env['SHARED']", ctx) == "42yes"
    assert dict(ctx.environ) == {"DEPT_CODE": "42", "SHARED": "yes"}
    assert value("sorted(context.env)", ctx) == ["DEPT_CODE", "SHARED"]


@pytest.mark.parametrize(
    "code",
    ["context.env[source['v']]", "context.env.get(source['v'])", "source['v'] in context.env"],
)
def test_an_unlisted_variable_fails_the_record_naming_it(code: str) -> None:
    with pytest.raises(RecordError) as info:
        value(code, context("DEPT_CODE"))
    assert info.value.message == (
        f"{LABEL}: environment variable 'HR_PASSWORD' is not readable by this job: "
        "list it in the job's environment (or in the IDSYNC_EXPRESSION_ENV setting)"
    )


def test_idsync_variables_are_never_readable_even_when_listed() -> None:
    ctx = RunContext.create("people", now=NOW, environ=ENVIRON, readable=["IDSYNC_SECRET_KEY"])
    assert "IDSYNC_SECRET_KEY" not in ctx.environ
    with pytest.raises(RecordError, match="'IDSYNC_SECRET_KEY' cannot be read: IDSYNC_\\* variables never are"):
        compile_expression("context.env.get('IDSYNC_' + 'SECRET_KEY')", LABEL).evaluate({}, ctx)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"attribute": "mail", "value": "%ENV:HR_PASSWORD%"}, "environment variable 'HR_PASSWORD' is not readable by this job"),
        ({"attribute": "mail", "expression": "context.env['HR_PASSWORD']"}, "environment variable 'HR_PASSWORD' is not readable"),
        ({"attribute": "mail", "expression": "context.env.get('HR_PASSWORD', '')"}, "environment variable 'HR_PASSWORD' is not readable"),
        ({"attribute": "mail", "value": "%ENV:IDSYNC_SECRET_KEY%"}, "environment variable 'IDSYNC_SECRET_KEY' cannot be read"),
    ],
)
def test_a_reference_seen_in_the_definition_is_refused_when_compiled(mapping: dict[str, str], message: str) -> None:
    job = job_definition([{"attribute": "uid", "from": "id", "key": True}, mapping], environment=["DEPT_CODE"])
    with pytest.raises(ConfigError) as info:
        Mapper(job, context(*job.environment))
    assert info.value.message.startswith(f"{LABEL}: {message}")


def test_a_listed_variable_is_expanded_in_static_values() -> None:
    job = job_definition(
        [{"attribute": "uid", "from": "id", "key": True}, {"attribute": "ou", "value": "dept-%ENV:DEPT_CODE%"}],
        environment=["DEPT_CODE"],
    )
    mapped = Mapper(job, context(*job.environment)).map(Record({"id": "1"}, line=2))
    assert mapped.values["ou"] == ("dept-42",)


@pytest.mark.parametrize(
    ("names", "message"),
    [(["IDSYNC_SECRET_KEY"], "IDSYNC_* variables are never readable"), (["NOT A NAME"], "not an environment variable name")],
)
def test_the_job_lists_only_plain_variable_names(names: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        job_definition([{"attribute": "uid", "from": "id", "key": True}], environment=names)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def test_saving_a_job_reading_an_unlisted_variable_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HR_PASSWORD", "s3cret")
    data = {
        "name": "mailer",
        "source": "people",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [{"attribute": "uid", "from": "id", "key": True}, {"attribute": "sn", "value": "%ENV:HR_PASSWORD%"}],
    }
    with pytest.raises(ConfigError, match="environment variable 'HR_PASSWORD' is not readable by this job"):
        jobs.save_job(world.ws, definitions.parse("job", data))  # type: ignore[arg-type]
    jobs.save_job(world.ws, definitions.parse("job", {**data, "environment": ["HR_PASSWORD"]}))  # type: ignore[arg-type]
