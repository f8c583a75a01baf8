"""The portal served for real: the app of ``idsync serve`` (the API with
the portal mounted) under uvicorn on a free loopback port, in a thread; and
one headless Debian chromium for the whole test session, driven by
Playwright (never a downloaded browser: a missing chromium fails the tests).

The installation is the API tests' world (embedded directory ``dir``, job
``people`` of two people, collection ``c``) and their users, one per role,
and :meth:`Portal.raise_request` makes the store's workflow ask alice or
bob to approve a run of it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from idsync.api.state import ApiConfig
from idsync.domain.principals import Principal
from idsync.portal import create_site
from idsync.services import collection_runs, jobs, requests
from idsync.services.workspace import Workspace
from tests.api.conftest import PASSWORD, add_people
from tests.scheduler_world import SUFFIX, World, make_world

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@dataclass
class Portal:
    """The served installation: its address and its world."""

    url: str
    world: World

    def raise_request(self) -> tuple[int, int]:
        """People 1 and 2 are in the directory; then the source renames
        Ada (an update) and adds Grace (a create), the store starts asking
        for approval, and otto runs collection c: the run awaits approval.
        (run id, request id)."""
        otto = self.world.ws.acting_as(Principal("otto", "user"))
        jobs.run_job(otto, "people")
        (self.world.root / "people.csv").write_text(
            "id,first,last\n1,Ada,Byron\n2,Alan,Turing\n3,Grace,Hopper\n", encoding="utf-8"
        )
        require_approval(World(self.world.ws.acting_as(Principal("olivia", "user")), self.world.root))
        run = collection_runs.run_collection(otto, "c").run
        found = requests.of_run(otto, run.id)
        assert found is not None and found.state == "pending"
        return run.id, found.id


def require_approval(world: World) -> None:
    """The store ``dir`` as make_world defines it, with a workflow: alice or bob approves."""
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {"host": "127.0.0.1", "port": 9, "tls": "none", "sender": "idsync@example.org"},
        "workflow": {"manual": True, "approvers": ["alice", "bob"]},
    })


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot; the test stops it
        pass


@pytest.fixture
def portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Portal]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    world = make_world(tmp_path)
    world.collection("c", ["people"])
    add_people(world.ws)
    served = Workspace(principal=Principal.system("portal tests"), database_url=world.ws.database_url)
    app = create_site(served, ApiConfig(shutdown_timeout=5))
    listener = socket.create_server(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.02)
    try:
        yield Portal(f"http://127.0.0.1:{listener.getsockname()[1]}", world)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        served.close()
        world.ws.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()  # its own cookies: each test signs in afresh
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    """Fill in and send the sign-in form the page shows."""
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_in_form(client: httpx.Client, **fields: str) -> httpx.Response:
    """Over plain HTTP: open the sign-in page (it sets the form's cookie), then
    send its form with its token, ``next=/`` and *fields*."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)
    assert found is not None, "the sign-in page has no token"
    return client.post("/signin", data={"csrf_token": found.group(1), "next": "/", **fields})


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of a key page for review (build/screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
