"""``/metrics`` of ``idsync serve`` as a real process: behind its token when
one is set, parsed by Prometheus's own parser, its counters moving as runs
happen; and with JSON logs every line it writes is one JSON object."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_serve import Served, define_people, follow, poster

TOKEN = "metrics-token-4f1c2a"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    home.mkdir()
    server = Served(home, {"IDSYNC_METRICS_TOKEN": TOKEN, "IDSYNC_LOG_FORMAT": "json", "IDSYNC_LOG_LEVEL": "INFO"})
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def scrape(client: httpx.Client) -> Samples:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


CREATED = ("idsync_objects_changed_total", (("operation", "created"),))
SUCCEEDED = ("idsync_runs", (("kind", "collection"), ("state", "succeeded")))
DURATIONS = ("idsync_run_duration_seconds_count", (("kind", "job"),))


def test_metrics_need_the_token_parse_and_move_as_runs_happen(served: Served, tmp_path: Path) -> None:
    client = httpx.Client(base_url=served.address, timeout=30)
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    before = scrape(client)
    assert before[("idsync_database_up", ())] == 1

    signed = client.post("/api/v1/session", json={"name": "admin", "password": served.password})
    assert signed.status_code == 200, signed.text
    assert len(signed.headers["x-request-id"]) == 32
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]

    post = poster(client)
    define_people(post, tmp_path)
    run = follow(client, post("/collections/all/run", {}).headers["Location"])
    assert run["run"]["state"] == "succeeded", run
    middle = scrape(client)

    (tmp_path / "people.csv").write_text("id,first,last\n1,Ada,Lovelace\n3,Grace,Hopper\n", encoding="utf-8")
    run = follow(client, post("/collections/all/run", {}).headers["Location"])
    assert run["run"]["state"] == "succeeded", run
    after = scrape(client)

    assert (before[CREATED], middle[CREATED], after[CREATED]) == (0, 3, 4)
    deleted = ("idsync_objects_changed_total", (("operation", "deleted"),))
    assert after[deleted] - middle[deleted] in (0, 1)  # as the job's deletion rule says; never counted twice
    assert (before.get(SUCCEEDED, 0), middle[SUCCEEDED], after[SUCCEEDED]) == (0, 1, 2)
    assert (before.get(DURATIONS, 0), middle[DURATIONS], after[DURATIONS]) == (0, 2, 4)
    assert after[("idsync_record_errors_total", ())] == 0

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=60) == 0
    assert served.proc.stderr is not None
    lines = [line for line in served.proc.stderr.read().splitlines() if line.strip()]
    items = [json.loads(line) for line in lines]  # every line is one JSON object
    assert items, "serve logged nothing at level INFO (its migrations at least are logged)"
    assert all({"time", "level", "logger", "message"} <= set(item) for item in items), lines
