"""JSON log lines and the context ids they carry: bound by whoever executes a
run or serves a request, per thread and per task."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idsync import logcontext
from idsync.api import request_ids
from idsync.errors import ConfigError
from idsync.runtime.node import log_line


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logcontext.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("idsync.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)


def test_a_json_line_carries_time_level_logger_message_and_the_ids_bound(captured: Captured) -> None:
    with logcontext.bound(run_id=7, collection="nightly", node="host:1"):
        logging.getLogger("idsync.test").warning("two\nlines %s", "here")
    [line] = captured.lines
    item = json.loads(line)
    assert "\n" not in line
    assert set(item) == {"time", "level", "logger", "message", "run_id", "collection", "node"}
    assert (item["level"], item["logger"], item["message"]) == ("warning", "idsync.test", "two\nlines here")
    assert (item["run_id"], item["collection"], item["node"]) == (7, "nightly", "host:1")
    assert item["time"].endswith("Z")


def test_a_traceback_goes_in_its_own_field(captured: Captured) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("idsync.test").exception("failed")
    item = json.loads(captured.lines[0])
    assert item["message"] == "failed"
    assert "RuntimeError: boom" in item["exception"]


def test_bound_ids_nest_and_come_back_and_none_leaves_one_as_it_was() -> None:
    with logcontext.bound(run_id=1, node="n"):
        with logcontext.bound(run_id=2, job="people", node=None):
            assert logcontext.current() == {"run_id": 2, "node": "n", "job": "people"}
        assert logcontext.current() == {"run_id": 1, "node": "n"}
    assert logcontext.current() == {}
    with pytest.raises(ValueError, match="unknown log context: password"), logcontext.bound(password="x"):
        pass


def test_another_thread_does_not_see_this_threads_ids() -> None:
    seen: list[dict[str, object]] = []
    with logcontext.bound(run_id=1):
        thread = threading.Thread(target=lambda: seen.append(logcontext.current()))
        thread.start()
        thread.join()
    assert seen == [{}]


def test_the_format_setting_is_checked_and_node_lines_follow_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not logcontext.json_logs()
    assert " UTC info    started" in log_line("started")
    monkeypatch.setenv("IDSYNC_LOG_FORMAT", "JSON")
    with logcontext.bound(node="host:2"):
        item = json.loads(log_line("started"))
    assert (item["message"], item["level"], item["node"], item["logger"]) == ("started", "info", "host:2", "idsync.node")
    monkeypatch.setenv("IDSYNC_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match=r"^IDSYNC_LOG_FORMAT='xml' is not one of: text, json$"):
        logcontext.json_logs()


def _app(seen: list[dict[str, object]]) -> FastAPI:
    app = FastAPI()

    @app.get("/sync")
    def in_a_thread() -> dict[str, str]:
        seen.append(logcontext.current())
        return {}

    @app.get("/async")
    async def in_the_loop() -> dict[str, str]:
        seen.append(logcontext.current())
        return {}

    request_ids.install(app)
    return app


def test_each_request_has_an_id_in_its_logs_and_its_answer() -> None:
    seen: list[dict[str, object]] = []
    with TestClient(_app(seen)) as client:
        made = client.get("/sync")
        kept = client.get("/async", headers={"X-Request-ID": "proxy-42"})
        forged = client.get("/async", headers={"X-Request-ID": 'x" "level": "error'})
    assert made.headers["x-request-id"] == seen[0]["request_id"]
    assert len(made.headers["x-request-id"]) == 32
    assert (kept.headers["x-request-id"], seen[1]["request_id"]) == ("proxy-42", "proxy-42")
    assert forged.headers["x-request-id"] == seen[2]["request_id"] != 'x" "level": "error'
    assert logcontext.current() == {}
