"""``idsync smartgroup`` as a user runs it: create with the review of the
membership, preview, update, explain, update jobs, a collection linking one,
and the one-line errors.

Most commands run in this process (``InProcess``); what only a real process
shows (the error line and exit code) runs as a subprocess. The starting
point (the embedded directory ``dir`` with two people, uid 1 and 2, and a
group entry) is made through the services.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs
from idsync.services import connections, jobs
from tests.e2e.test_cli import Cli
from tests.e2e.test_cli_collections import InProcess, one_line_error, write
from tests.scheduler_world import PEOPLE, SUFFIX, make_world

GROUPS = f"ou=Groups,{SUFFIX}"
GROUP = f"cn=staff,{GROUPS}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(folder))
    world = make_world(folder)
    jobs.run_job(world.ws, "people")
    with connections.directory(world.ws, "dir") as directory:
        outcomes = list(directory.apply([
            Change(ChangeOp.CREATE, GROUPS, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["Groups"]})),
            Change(ChangeOp.CREATE, GROUP, attrs=Attrs({"objectClass": ["groupOfNames"], "cn": ["staff"],
                                                        "member": [f"uid=1,{PEOPLE}"]})),
        ]))
    assert all(o.error is None for o in outcomes)
    world.ws.close()
    yield folder


@pytest.fixture
def run(home: Path) -> InProcess:
    return InProcess(home)


def _create(run: InProcess, *extra: str) -> dict:
    return run.json("smartgroup", "create", "staff", "--store", "dir", "--dn", GROUP, "--base", PEOPLE,
                    "--filter", "(sn=Turing)", *extra, "--yes")[0]


def test_create_reviews_the_membership_then_update_writes_it(run: InProcess) -> None:
    created = _create(run, "--include", f"uid=1,{PEOPLE}")
    assert created["outcome"] == "created"
    membership = created["membership"]
    assert (membership["add"], membership["remove"], membership["members"]) == ([f"uid=2,{PEOPLE}"], [], 2)

    text = run("smartgroup", "preview", "staff").stdout
    assert "membership: 2 member(s) (now 1): 1 to add, 0 to remove" in text and f"+ uid=2,{PEOPLE}" in text
    updated = run("smartgroup", "update", "staff")
    assert "updated" in updated.stdout
    assert run.json("smartgroup", "preview", "staff")["add"] == []

    listed = run.json("smartgroup", "list")
    assert [g["name"] for g in listed] == ["staff"]
    assert run.json("smartgroup", "show", "staff")["dn"] == GROUP


def test_edit_shows_the_members_it_would_remove(run: InProcess) -> None:
    _create(run)
    run("smartgroup", "update", "staff")
    result = run("smartgroup", "edit", "staff", "--add-exclude", f"uid=2,{PEOPLE}", "--allow-empty", "--yes")
    assert f"now: uid=2,{PEOPLE}" in result.stdout  # the difference from the stored version
    assert "membership: 0 member(s) (now 1): 0 to add, 1 to remove" in result.stdout
    assert f"- uid=2,{PEOPLE}" in result.stdout
    assert "smart group 'staff' updated" in result.stdout


def test_explain_says_which_term_failed(run: InProcess) -> None:
    _create(run)
    out = run("smartgroup", "explain", "staff", f"uid=1,{PEOPLE}").stdout
    assert "is not a member" in out
    assert "(sn=Turing) failed: the entry's sn is 'Lovelace'" in out
    assert "the group entry lists it now; the next update removes it" in out
    data = run.json("smartgroup", "explain", "staff", f"uid=2,{PEOPLE}")
    assert data["member"] is True and data["in_group_now"] is False


def test_update_jobs_run_and_collections_link_them(run: InProcess) -> None:
    _create(run)
    made = run.json("smartgroup", "job", "create", "groups", "--store", "dir", "--container", GROUPS, "--yes")
    assert made[0]["outcome"] == "created"
    assert run.json("smartgroup", "job", "show", "groups")["targets"] == ["staff"]
    report = run.json("smartgroup", "job", "run", "groups")
    assert report["run"]["kind"] == "smartgroup" and report["groups"][0]["added"] == 1

    shown = run("run", "show", str(report["run"]["id"])).stdout
    assert "group 'staff'" in shown and "1 added, 1 removed" in shown

    run("collection", "create", "nightly", "--job", "people", "--yes")
    collection = write(run_home(run) / "nightly.yaml", "name: nightly\njobs: [people]\nsmart_group_jobs: [groups]\n")
    run("collection", "edit", "nightly", "--from", str(collection), "--yes")
    result = run.json("collection", "run", "nightly", "--no-send")
    assert [(j["kind"], j["job_name"]) for j in result["jobs"]] == [("job", "people"), ("smartgroup", "groups")]


def run_home(run: InProcess) -> Path:
    return Path(run.env["IDSYNC_HOME"])


def test_apply_takes_smart_group_sections(run: InProcess) -> None:
    path = write(run_home(run) / "defs.yaml", f"""\
smart_groups:
  - name: turing
    store: dir
    dn: "{GROUP}"
    queries: [{{base: "{PEOPLE}", filter: "(sn=Turing)"}}]
smart_group_jobs:
  - {{name: groups, store: dir, groups: [turing]}}
""")
    run("apply", "-f", str(path))
    assert [j["name"] for j in run.json("smartgroup", "job", "list")] == ["groups"]


def test_errors_are_one_line_with_the_filter_position(home: Path) -> None:
    cli = Cli(home)
    proc = cli("smartgroup", "create", "bad", "--store", "dir", "--dn", GROUP, "--base", PEOPLE,
               "--filter", "(sn=Turing", "--yes", ok=False)
    one_line_error(proc, "queries.0.filter", "at position 10")
    missing = cli("smartgroup", "show", "nope", ok=False)
    assert missing.returncode == 6
    one_line_error(missing, "no smart group named 'nope'")
