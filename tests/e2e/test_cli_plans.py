"""Stored plans from the command line: the record errors a preview found are
shown with the plan, and reported (exit code 3) by the run that applies it."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import Cli, cli, setup_job

__all__ = ["cli"]

ROWS = "1,Ada,Lovelace\n,No,Key\n2,Alan,Turing\n,Also,Keyless\n3,Grace,Hopper\n,Third,Keyless\n"


def test_a_plans_record_errors_are_shown_and_carried_into_its_run(cli: Cli, tmp_path: Path) -> None:
    csv_path = setup_job(cli, tmp_path, rows=ROWS)
    preview = cli.json("job", "preview", "people")
    plan_id = preview["plan"]["id"]
    assert len(preview["errors"]) == 3

    shown = cli("plan", "show", str(plan_id))
    assert shown.stdout.count("error ") == 3 and "line 3" in shown.stdout
    as_json = cli.json("plan", "show", str(plan_id))
    assert as_json["error_total"] == 3 and len(as_json["errors"]) == 3

    csv_path.unlink()  # applying the plan does not read the source
    applied = cli("job", "run", "people", "--plan", str(plan_id), ok=False)
    assert applied.returncode == 3, applied.stdout + applied.stderr
    assert applied.stdout.count("error ") == 3 and "completed_with_errors" in applied.stdout
    runs = cli.json("run", "list", "--job", "people")
    assert runs[0]["counts"]["errors"] == 3 and runs[0]["counts"]["created"] == 3
