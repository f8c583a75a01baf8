"""``idsync serve``: the REST API, the scheduler and the outbox sender in one process.

It binds to 127.0.0.1:8080 unless told otherwise and prints its address.
On first start, with no user yet, it creates the administrator ``admin``
(roles admin and operator, mapped to the operating-system account running
it) and prints its password once: a random one, or the one given by
``IDSYNC_ADMIN_PASSWORD`` or ``--admin-password-stdin``. SIGTERM or Ctrl-C
stops it cleanly: no new request is taken, runs stop at their next batch,
and what still runs after the shutdown timeout is marked terminated.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import typer

from idsync.cli.common import os_principal, workspace
from idsync.cli.output import console, err_console

ADMIN = "admin"
PASSWORD_VARIABLE = "IDSYNC_ADMIN_PASSWORD"  # noqa: S105 (the variable's name)
DEMO_FOLDER = Path("idsync-demo")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Do not run the scheduler here (the outbox sender still runs)."
    ),
    admin_password_stdin: bool = typer.Option(
        False, "--admin-password-stdin", help="Read the first administrator's password from standard input."
    ),
    demo: bool = typer.Option(False, "--demo", help="Serve the workspace `make demo` leaves (./idsync-demo)."),
    shutdown_timeout: float = typer.Option(
        30.0, "--shutdown-timeout", min=0, help="Seconds to let running runs stop by themselves on shutdown."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print what the scheduler does."),
    workers: str | None = typer.Option(
        None, "--workers", metavar="in-process|external",
        help="Where collection runs execute (scheduled, started from the API or the portal, and approved "
        "requests'): in this process, or deferred to `idsync worker` processes "
        "(PostgreSQL; default: setting IDSYNC_WORKERS, else in-process).",
    ),
) -> None:
    """Serve the REST API with the scheduler and the outbox sender, in one process, until SIGTERM or Ctrl-C."""
    import uvicorn

    from idsync.api.state import ApiConfig
    from idsync.domain.roles import Role
    from idsync.portal import create_site
    from idsync.runtime.node import (
        SchedulerNode,
        acting_node,
        log_line,
        run_scheduler,
        run_sender,
        stop_on_signals,
        workers_mode,
    )
    from idsync.services import authz, users

    def say(message: str) -> None:
        if not quiet:
            err_console.print(log_line(message), markup=False, soft_wrap=True)

    mode = workers_mode(workers)
    database_url = None
    if demo:
        folder = DEMO_FOLDER.resolve()
        if not (folder / ".idsync-demo").exists():
            raise typer.BadParameter(f"{folder} holds no demo workspace: run `make demo` (or `idsync demo`) first")
        os.environ["IDSYNC_HOME"] = str(folder)
        os.environ.pop("IDSYNC_SECRET_KEY", None)
        database_url = f"sqlite:///{folder / 'idsync.db'}"
    ws = workspace(database_url)
    node_ws = acting_node(ws, "server", "serve idsync")  # whoever starts it must be an operator
    if mode == "external":
        from idsync.services import job_queue

        job_queue.require_workers(ws)  # refused now, in one line, not later in a thread of the server
    if authz.rights(ws).bootstrap:
        given = _given_password(admin_password_stdin)
        password = given or secrets.token_urlsafe(15)
        users.add_user(
            ws, ADMIN, display_name="Administrator", os_user=os_principal().name, password=password,
            roles=(Role.ADMIN, Role.OPERATOR),
        )
        if given:  # a password the operator chose is never echoed
            console.print(f"first administrator: {ADMIN}, with the password given", markup=False)
        else:
            console.print(f"first administrator: {ADMIN}, one-time password: {password}", markup=False)
            console.print("  it is shown only now: sign in and change it", markup=False)
    elif admin_password_stdin:
        raise typer.BadParameter("users exist already: --admin-password-stdin is for the first start only")
    if demo:
        _demo_passwords(ws)

    app = create_site(node_ws, ApiConfig(shutdown_timeout=shutdown_timeout, runs=mode))
    background = app.state.idsync.background
    listener = socket.create_server((host, port))
    address = _address(host, listener.getsockname()[1])

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            background.stopping.set()  # runs and event streams stop now, not after the last request
            stop.set()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            console.print(f"idsync serving on {address} (portal: {address}/, API documentation: {address}/api/docs)", markup=False)
            sys.stdout.flush()

    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=max(1, int(shutdown_timeout)),
        proxy_headers=True, **_uvicorn_logging(),
    )
    server = Server(config)
    with stop_on_signals() as stop:
        if no_scheduler:
            worker = threading.Thread(target=run_sender, args=(node_ws, stop, say), name="outbox-sender")
        else:
            options = SchedulerNode(shutdown_timeout=shutdown_timeout, workers=mode)
            worker = threading.Thread(target=run_scheduler, args=(node_ws, options, stop, say), name="scheduler")
        worker.start()
        try:
            server.run(sockets=[listener])
        finally:
            stop.set()
            worker.join(timeout=shutdown_timeout + 30)
            ws.close()
    console.print("idsync stopped", markup=False)


def _uvicorn_logging() -> dict[str, Any]:
    """With JSON logs, uvicorn's loggers write through idsync's (one JSON object a line)."""
    from idsync import logcontext

    return {"log_config": None} if logcontext.json_logs() else {}


def _demo_passwords(ws: Any) -> None:
    """Give each local demo user without a password a one-time one, printed
    once, so that people can sign in to the demo (the demo made none)."""
    from idsync.services import users

    for detail in users.list_users(ws):
        user = detail.user
        if user.source == "local" and not detail.has_password and not user.disabled:
            password = secrets.token_urlsafe(15)
            users.change_password(ws, user.name, password)
            console.print(f"demo user {user.name}: one-time password: {password}", markup=False)


def _given_password(from_stdin: bool) -> str | None:
    """The first administrator's password from standard input or the
    environment; None: make one up."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise typer.BadParameter("the password read from standard input is empty")
        return value
    return os.environ.get(PASSWORD_VARIABLE) or None


def _address(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
