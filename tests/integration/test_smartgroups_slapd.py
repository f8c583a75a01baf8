"""Smart groups against slapd and against the embedded directory, through the services.

Each scenario runs on both: the same store definitions, the same people job,
the same group entries. Users are written by a real sync job from a CSV
file, so "membership follows the query after a sync" is what it says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import (
    collection_runs,
    collections,
    connections,
    definitions,
    jobs,
    smartgroup_runs,
    smartgroups,
)
from idsync.services.workspace import Workspace

BASE = "dc=example,dc=org"


@dataclass
class Env:
    ws: Workspace
    people: str  # container of the users
    groups: str  # container of the group entries
    csv: Path
    kind: str
    store: dict[str, object] = field(default_factory=dict)  # the store definition as saved

    def write_people(self, rows: list[tuple[str, str]]) -> None:
        """(uid, department) rows; the people job syncs them."""
        self.csv.write_text("id,last,dept\n" + "".join(f"{u},Last{u},{d}\n" for u, d in rows), encoding="utf-8")

    def sync(self) -> None:
        run = jobs.run_job(self.ws, "people")
        assert run.state is RunState.SUCCEEDED, run.error

    def dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def add_group(self, cn: str, object_class: str = "groupOfNames") -> str:
        dn = f"cn={cn},{self.groups}"
        attribute = "member" if object_class == "groupOfNames" else "uniqueMember"
        _apply(self.ws, Change(ChangeOp.CREATE, dn, attrs=Attrs({
            "objectClass": [object_class], "cn": [cn], attribute: [self.groups],
        })))
        return dn

    def members(self, dn: str, attribute: str = "member") -> set[str]:
        with connections.directory(self.ws, "dir") as directory:
            entry = next(iter(directory.search(dn, Scope.BASE, "(objectClass=*)", [attribute])))
        return {normalize_dn(v) for v in entry.attrs.get_values(attribute)}

    def uids(self, dn: str, attribute: str = "member") -> set[str]:
        return {m.split(",", 1)[0].removeprefix("uid=") for m in self.members(dn, attribute) if m.startswith("uid=")}


def _apply(ws: Workspace, *changes: Change) -> None:
    with connections.directory(ws, "dir") as directory:
        for outcome in directory.apply(changes):
            assert outcome.error is None, outcome.error


def _ou(dn: str) -> Change:
    return Change(ChangeOp.CREATE, dn, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]}))


@pytest.fixture(params=["embedded", "slapd"])
def env(request: pytest.FixtureRequest, tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    ws = Workspace(principal=Principal("tester"))
    if request.param == "slapd":
        slapd = request.getfixturevalue("slapd")
        top = slapd.new_container("sg")
        store = {"name": "dir", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn,
                 "bind_password": slapd.root_pw, "base_dn": slapd.base_dn}
    else:
        top = f"ou=sg,{BASE}"
        store = {"name": "dir", "kind": "local", "path": str(tmp_path / "dir.db"), "suffix": BASE}
    definitions.save(ws, "store", definitions.parse("store", store))
    people, groups = f"ou=people,{top}", f"ou=groups,{top}"
    _apply(ws, *([_ou(top)] if request.param == "embedded" else []), _ou(people), _ou(groups))
    csv = tmp_path / "people.csv"
    definitions.save(ws, "source", definitions.parse("source", {"name": "hr", "kind": "csv", "path": str(csv)}))
    jobs.save_job(ws, offline=True, job=definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "dir", "container": people},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "from": "id"},
            {"attribute": "sn", "from": "last"},
            {"attribute": "departmentNumber", "from": "dept"},
        ],
        "actions": {"on_missing": "delete"},
    }))
    made = Env(ws, people, groups, csv, request.param, store)
    yield made
    ws.close()


def _group(env: Env, name: str, dn: str, **extra: object) -> None:
    data: dict[str, object] = {"name": name, "store": "dir", "dn": dn, **extra}
    smartgroups.save_group(env.ws, definitions.parse("smart_group", data))


def _query(env: Env, flt: str) -> list[dict[str, str]]:
    return [{"base": env.people, "filter": flt}]


def test_membership_follows_the_query_after_a_sync(env: Env) -> None:
    env.write_people([("ann", "IT"), ("bob", "IT"), ("cid", "Sales")])
    env.sync()
    dn = env.add_group("it")
    _group(env, "it", dn, queries=_query(env, "(departmentNumber=IT)"))

    first = smartgroup_runs.update_group(env.ws, "it")
    assert first.run.state is RunState.SUCCEEDED, first.run.error
    assert env.uids(dn) == {"ann", "bob"}
    assert (first.groups[0].outcome, first.groups[0].added, first.groups[0].removed) == ("updated", 2, 1)

    env.write_people([("ann", "IT"), ("cid", "IT"), ("dee", "Sales")])  # bob leaves, cid moves to IT
    env.sync()
    plan = smartgroups.preview_group(env.ws, "it")
    assert ([a.split(",")[0] for a in plan.add], [r.split(",")[0].lower() for r in plan.remove]) == (["uid=cid"], ["uid=bob"])
    second = smartgroup_runs.update_group(env.ws, "it")
    assert env.uids(dn) == {"ann", "cid"}
    result = second.groups[0]
    assert (result.added, result.removed, result.members) == (1, 1, 2)

    third = smartgroup_runs.update_group(env.ws, "it")  # nothing changed: nothing written
    assert third.groups[0].outcome == "unchanged"
    assert smartgroup_runs.results_of(env.ws, third.run.id)[0].outcome == "unchanged"


def test_include_wins_over_queries_and_exclude_wins_over_everything(env: Env) -> None:
    env.write_people([("ann", "IT"), ("bob", "IT"), ("cid", "Sales")])
    env.sync()
    dn = env.add_group("lists", "groupOfUniqueNames")
    _group(env, "lists", dn, object_class="groupOfUniqueNames", queries=_query(env, "(departmentNumber=IT)"),
           include=[env.dn("cid"), env.dn("bob")], exclude=[env.dn("bob")])
    report = smartgroup_runs.update_group(env.ws, "lists")
    assert report.run.state is RunState.SUCCEEDED, report.run.error
    assert env.uids(dn, "uniqueMember") == {"ann", "cid"}


def test_the_percentage_guard_leaves_the_group_untouched_and_reports_it(env: Env) -> None:
    env.write_people([(f"u{i}", "IT") for i in range(5)])
    env.sync()
    dn = env.add_group("guarded")
    _group(env, "guarded", dn, queries=_query(env, "(departmentNumber=IT)"),
           guard={"percent": 30, "min_size": 3})
    assert smartgroup_runs.update_group(env.ws, "guarded").run.state is RunState.SUCCEEDED  # from 1 placeholder: not guarded
    env.write_people([("u0", "IT"), ("u1", "IT"), ("u2", "IT"), ("u3", "Sales"), ("u4", "Sales")])
    env.sync()

    report = smartgroup_runs.update_group(env.ws, "guarded")
    assert report.run.state is RunState.COMPLETED_WITH_ERRORS
    assert report.groups[0].outcome == "refused"
    assert "2 of 5 members (40.0 %)" in (report.groups[0].error or "")
    assert env.uids(dn) == {f"u{i}" for i in range(5)}
    assert report.run.counts.skipped == 1


def test_an_empty_result_never_empties_a_group_unless_allowed(env: Env) -> None:
    env.write_people([("ann", "IT")])
    env.sync()
    dn = env.add_group("empty", "groupOfUniqueNames")
    _group(env, "empty", dn, object_class="groupOfUniqueNames", queries=_query(env, "(departmentNumber=Nobody)"))
    report = smartgroup_runs.update_group(env.ws, "empty")
    assert report.groups[0].outcome == "refused" and "empty" in (report.groups[0].error or "")
    assert env.members(dn, "uniqueMember") == {normalize_dn(env.groups)}


def test_members_from_a_data_source_join(env: Env, tmp_path: Path) -> None:
    env.write_people([("ann", "IT"), ("bob", "Sales"), ("cid", "Sales")])
    env.sync()
    staff = tmp_path / "staff.csv"
    staff.write_text("login,project\nANN,apollo\ncid,apollo\nzed,apollo\n", encoding="utf-8")
    definitions.save(env.ws, "source", definitions.parse("source", {"name": "staff", "kind": "csv", "path": str(staff)}))
    dn = env.add_group("apollo")
    _group(env, "apollo", dn, join={"source": "staff", "column": "login", "attribute": "uid", "base": env.people})
    smartgroup_runs.update_group(env.ws, "apollo")
    assert env.uids(dn) == {"ann", "cid"}


def test_explain_gives_each_reason(env: Env, tmp_path: Path) -> None:
    env.write_people([("ann", "IT"), ("bob", "Sales"), ("cid", "IT"), ("dee", "Sales"), ("eve", "HR")])
    env.sync()
    staff = tmp_path / "staff.csv"
    staff.write_text("login\neve\n", encoding="utf-8")
    definitions.save(env.ws, "source", definitions.parse("source", {"name": "staff", "kind": "csv", "path": str(staff)}))
    dn = env.add_group("why")
    _group(env, "why", dn, queries=_query(env, "(&(objectClass=inetOrgPerson)(departmentNumber=IT))"),
           include=[env.dn("dee")], exclude=[env.dn("cid")],
           join={"source": "staff", "column": "login", "attribute": "uid", "base": env.people})

    def why(uid: str) -> smartgroups.MemberExplanation:
        return smartgroups.explain_member(env.ws, "why", env.dn(uid))

    ann = why("ann")
    assert ann.explanation.member and "query 1" in ann.explanation.summary and "matched" in ann.explanation.summary
    bob = why("bob")
    assert not bob.explanation.member
    query = next(r for r in bob.explanation.reasons if r.kind == "query")
    assert "(departmentNumber=IT) failed: the entry's departmentNumber is 'Sales'" in query.text
    cid = why("cid")
    assert not cid.explanation.member and "exclude list" in cid.explanation.summary
    dee = why("dee")
    assert dee.explanation.member and "include list" in dee.explanation.summary
    eve = why("eve")
    assert eve.explanation.member and "join" in eve.explanation.summary and "'eve'" in eve.explanation.summary
    assert eve.in_group_now is False and eve.pending_change == "the next update adds it"
    smartgroup_runs.update_group(env.ws, "why")
    assert why("eve").in_group_now is True


def test_a_collection_runs_its_linked_update_job_after_its_jobs(env: Env) -> None:
    env.write_people([("ann", "IT")])
    dn = env.add_group("linked")
    _group(env, "linked", dn, queries=_query(env, "(departmentNumber=IT)"))
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {
        "name": "groups", "store": "dir", "containers": [env.groups],
    }))
    collections.save_collection(env.ws, definitions.parse("collection", {
        "name": "nightly", "jobs": ["people"], "smart_group_jobs": ["groups"],
    }))
    report = collection_runs.run_collection(env.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED, report.run.error
    assert [(c.kind, c.job_name) for c in report.jobs] == [("job", "people"), ("smartgroup", "groups")]
    assert env.uids(dn) == {"ann"}  # the user the job created is a member at once
    update = report.jobs[1]
    assert [(r.group, r.added) for r in smartgroup_runs.results_of(env.ws, update.id)] == [("linked", 1)]

    env.write_people([("ann", "IT"), ("bob", "IT")])
    scheduled = collection_runs.run_collection(env.ws, "nightly", trigger="schedule")
    assert [(c.kind, c.trigger, c.state) for c in scheduled.jobs][1] == ("smartgroup", "schedule", RunState.SUCCEEDED)
    assert env.uids(dn) == {"ann", "bob"}


def test_linking_an_update_job_of_another_store_is_refused(env: Env, tmp_path: Path) -> None:
    definitions.save(env.ws, "store", definitions.parse("store", {
        "name": "other", "kind": "local", "path": str(tmp_path / "other.db"), "suffix": "dc=other,dc=org",
    }))
    smartgroups.save_group(env.ws, definitions.parse("smart_group", {
        "name": "elsewhere", "store": "other", "dn": "cn=g,dc=other,dc=org", "include": ["uid=x,dc=other,dc=org"],
    }))
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {
        "name": "other-groups", "store": "other", "groups": ["elsewhere"],
    }))
    with pytest.raises(ConfigError, match="updates identity store 'other', which no job of the collection writes to"):
        collections.save_collection(env.ws, definitions.parse("collection", {
            "name": "nightly", "jobs": ["people"], "smart_group_jobs": ["other-groups"],
        }))


def test_a_query_outside_the_store_is_refused_at_save(env: Env) -> None:
    with pytest.raises(ConfigError, match=r"queries\.1\.base 'ou=x,dc=elsewhere' lies outside identity store 'dir'"):
        _group(env, "outside", f"cn=g,{env.groups}", queries=[{"base": "ou=x,dc=elsewhere", "filter": "(uid=*)"}])


def test_groups_sharing_a_query_cost_one_search_per_run(env: Env) -> None:
    env.write_people([("ann", "IT"), ("bob", "IT")])
    env.sync()
    for cn in ("a", "b", "c"):
        _group(env, cn, env.add_group(cn), queries=_query(env, "(departmentNumber=IT)"))
    definition, directory = smartgroups.open_store(env.ws, "dir")
    try:
        searcher = smartgroups.Searcher(env.ws, directory, smartgroups.store_base(definition))
        plans = [smartgroups.plan_group(searcher, smartgroups.load_group(env.ws, cn)) for cn in ("a", "b", "c")]
    finally:
        directory.close()
    assert searcher.searches == 1  # the group entries are read by DN, the query is asked once
    assert [len(p.add) for p in plans] == [2, 2, 2]


def test_a_collection_preview_shows_the_members_its_jobs_would_make(env: Env) -> None:
    env.write_people([("ann", "IT"), ("bob", "IT"), ("cid", "Sales")])
    env.sync()
    dn = env.add_group("after")
    _group(env, "after", dn, queries=_query(env, "(departmentNumber=IT)"))
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {"name": "groups", "store": "dir", "groups": ["after"]}))
    collections.save_collection(env.ws, definitions.parse("collection", {
        "name": "nightly", "jobs": ["people"], "smart_group_jobs": ["groups"],
    }))
    smartgroup_runs.update_group(env.ws, "after")
    assert env.uids(dn) == {"ann", "bob"}
    # The job would create dee (IT), delete bob, and move cid to IT; nothing is written by the preview.
    env.write_people([("ann", "IT"), ("cid", "IT"), ("dee", "IT"), ("eve", "Sales")])

    preview = collections.preview_collection(env.ws, "nightly")
    assert [item.plan.counts.created if item.plan else None for item in preview.jobs] == [2]
    [linked] = preview.groups
    assert linked.error is None and linked.job == "groups"
    [plan] = linked.groups
    assert plan.error is None and plan.refused is None
    uid = lambda dns: sorted(d.split(",")[0].lower() for d in dns)  # noqa: E731
    assert (uid(plan.add), uid(plan.remove)) == (["uid=cid", "uid=dee"], ["uid=bob"])
    assert (plan.current, plan.members) == (2, 3)
    assert any("+ uid=dee" in line for line in linked.lines())
    assert env.uids(dn) == {"ann", "bob"}  # nothing changed
    with connections.directory(env.ws, "dir") as directory:
        assert not list(directory.search(env.people, Scope.SUB, "(uid=dee)", ["1.1"]))


def test_groups_of_one_container_are_read_together_and_a_missing_entry_is_told_alone(env: Env) -> None:
    env.write_people([("ann", "IT"), ("bob", "Sales")])
    env.sync()
    x, z = env.add_group("x"), env.add_group("z", "groupOfUniqueNames")
    _group(env, "x", x, queries=_query(env, "(departmentNumber=IT)"))
    _group(env, "y", f"cn=y,{env.groups}", queries=_query(env, "(departmentNumber=IT)"))  # no such entry
    _group(env, "z", z, queries=_query(env, "(departmentNumber=Sales)"), object_class="groupOfUniqueNames")
    smartgroups.save_job(env.ws, definitions.parse("smart_group_job", {"name": "three", "store": "dir", "groups": ["x", "y", "z"]}))
    report = smartgroup_runs.run_update_job(env.ws, "three")
    outcomes = {r.group: (r.outcome, r.added, r.removed) for r in report.groups}
    assert outcomes["x"] == ("updated", 1, 1) and outcomes["z"] == ("updated", 1, 1)
    assert outcomes["y"][0] == "failed" and "does not exist" in (next(r for r in report.groups if r.group == "y").error or "")
    assert env.uids(x) == {"ann"} and env.uids(z, "uniqueMember") == {"bob"}
