"""W6: smart group updates against slapd, beside a bare python-ldap loop doing the same work.

*groups* smart groups over *users* people, their queries drawn from *queries*
distinct filters (``(departmentNumber=dK)``, one level under the people), plus
one group of every person (``(employeeType=staff)``). idsync's update job
recomputes them in a process of its own (peak RSS is its own); the baseline
is a bare python-ldap loop that runs the same distinct searches, reads each
group's members, compares them as sets of lower-cased DNs and writes the same
differences (value adds and deletes, pipelined), on a twin set of group
entries. Three updates are measured: from placeholders (every member
added), with nothing changed, and after 1 % of the people changed
department; then one person leaves the big group (one small modify). The
same first update is timed on the embedded directory.

The issue's size is 1,000 groups over 100,000 people; the default here is
reduced (``--w6-users``, ``--w6-groups``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap

from benchmarks import baselines
from benchmarks.workloads import Row
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs
from idsync.domain.principals import Principal
from idsync.services import connections, definitions
from idsync.services.workspace import Workspace
from tests.servers.slapd import SlapdServer, write_count

PLACEHOLDER = "cn=placeholder"
BIG = "everyone"


def department(i: int, queries: int, moved: bool = False) -> str:
    return f"d{(i + (1 if moved else 0)) % queries}"


def moved(i: int, users: int) -> bool:
    """The 1 % of people who change department before the third update."""
    return i < users // 100


@dataclass
class W6:
    server: SlapdServer
    workdir: Path
    users: int
    groups: int
    queries: int
    env: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = self.server.base_dn
        self.people, self.mine, self.raw = (f"ou={n},{base}" for n in ("w6people", "w6idsync", "w6raw"))
        self.ws = Workspace(database_url=self.env["IDSYNC_DATABASE_URL"], principal=Principal("benchmark"))

    def save(self, kind: str, data: dict[str, Any]) -> None:
        definitions.save(self.ws, kind, definitions.parse(kind, data))  # type: ignore[arg-type]

    def connect(self) -> ldap.ldapobject.LDAPObject:
        return baselines.connect(self.server.url, self.server.root_dn, self.server.root_pw)

    def filters(self) -> list[tuple[str, str]]:
        """(group cn, filter) of every group."""
        out = [(f"g{j:05d}", f"(departmentNumber=d{j % self.queries})") for j in range(self.groups)]
        return [*out, (BIG, "(employeeType=staff)")]

    # ------------------------------------------------------------ setup

    def load(self) -> None:
        conn = self.connect()
        for dn in (self.people, self.mine, self.raw):
            name = dn.split(",", 1)[0][3:]
            conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])])
        baselines.pipelined(conn, (
            ("add", f"uid=u{i:07d},{self.people}", [
                ("objectClass", [b"inetOrgPerson"]), ("uid", [f"u{i:07d}".encode()]), ("cn", [f"U {i}".encode()]),
                ("sn", [f"U{i}".encode()]), ("departmentNumber", [department(i, self.queries).encode()]),
                ("employeeType", [b"staff"]),
            ]) for i in range(self.users)
        ))
        for container in (self.mine, self.raw):
            baselines.pipelined(conn, (
                ("add", f"cn={cn},{container}", [("objectClass", [b"groupOfNames"]), ("cn", [cn.encode()]),
                                                 ("member", [PLACEHOLDER.encode()])])
                for cn, _flt in self.filters()
            ))
        conn.unbind_s()
        save = self.save
        save("store", {"name": "w6", "kind": "ldap", "url": self.server.url, "bind_dn": self.server.root_dn,
                       "bind_password": self.server.root_pw, "base_dn": self.server.base_dn})
        for cn, flt in self.filters():
            save("smart_group", {"name": f"w6-{cn}", "store": "w6", "dn": f"cn={cn},{self.mine}",
                                 "queries": [{"base": self.people, "scope": "one", "filter": flt}]})
        save("smart_group_job", {"name": "w6", "store": "w6", "containers": [self.mine]})

    def move(self, *, back: bool = False) -> None:
        """1 % of the people change department (or one person stops being staff)."""
        conn = self.connect()
        baselines.pipelined(conn, (
            ("modify", f"uid=u{i:07d},{self.people}",
             [(ldap.MOD_REPLACE, "departmentNumber", [department(i, self.queries, moved=not back).encode()])])
            for i in range(self.users) if moved(i, self.users)
        ))
        conn.unbind_s()

    # ------------------------------------------------------------ the two sides

    def idsync(self, job: str = "w6") -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.step", "smartgroups", job],
                              env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"W6 update failed: {proc.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["state"] != "succeeded":
            raise RuntimeError(f"W6 update ended {result['state']}: {result['error']}")
        return result

    def bare(self) -> tuple[float, int]:
        """The bare python-ldap loop on the twin groups: seconds, modifies written."""
        conn = self.connect()
        started = time.perf_counter()
        found: dict[str, dict[str, str]] = {}
        operations = []
        for cn, flt in self.filters():
            if flt not in found:
                hits = conn.search_s(self.people, ldap.SCOPE_ONELEVEL, flt, ["1.1"])
                found[flt] = {dn.lower(): dn for dn, _attrs in hits}
            dn = f"cn={cn},{self.raw}"
            [(_dn, attrs)] = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["member"])
            current = {v.decode().lower(): v for v in attrs.get("member", [])}
            target = found[flt]
            add = [target[k].encode() for k in target.keys() - current.keys()]
            remove = [current[k] for k in current.keys() - target.keys()]
            mods = ([(ldap.MOD_ADD, "member", add)] if add else []) + ([(ldap.MOD_DELETE, "member", remove)] if remove else [])
            if mods:
                operations.append(("modify", dn, mods))
        baselines.pipelined(conn, operations)
        seconds = time.perf_counter() - started
        conn.unbind_s()
        return seconds, len(operations)

    def measure(self, label: str, check: Callable[[dict[str, Any], int], None]) -> dict[str, Any]:
        before = write_count(self.server)
        result = self.idsync()
        writes = write_count(self.server) - before
        bare_s, bare_ops = self.bare()
        check(result, writes)
        ratio = result["seconds"] / bare_s
        self.rows.append(Row("W6", f"{label}: seconds vs bare python-ldap", result["seconds"], bare_s, ratio,
                             "≤ 1.5", ratio <= 1.5, digits=2))
        return {"idsync_s": result["seconds"], "bare_s": bare_s, "writes": writes, "bare_writes": bare_ops,
                "peak_rss_mb": result["peak_rss_mb"], "counts": result["counts"]}

    def run(self) -> None:
        self.load()
        n = self.groups + 1
        first = self.measure("first update", lambda r, w: _expect(r["counts"]["updated"] == n == w, r, w))
        same = self.measure("nothing changed", lambda r, w: _expect(w == 0 and r["counts"]["unchanged"] == n, r, w))
        self.move()
        delta = self.measure("1 % moved", lambda r, w: _expect(r["counts"]["updated"] == w > 0, r, w))
        self.rows.append(Row("W6", "writes with nothing changed", same["writes"], None, None, "= 0", same["writes"] == 0, digits=0))
        one = self.one_leaves()
        self.rows.append(Row("W6", f"operations for 1 member out of {self.users:,}", one, 1, one, "= 1", one == 1, digits=0))
        peak = max(f["peak_rss_mb"] for f in (first, same, delta))
        self.rows.append(Row("W6", "peak RSS (MB)", peak, None, None, "≤ 400", peak <= 400))
        self.figures = {"users": self.users, "groups": n, "distinct_queries": self.queries + 1,
                        "first": first, "no_change": same, "moved": delta, "one_member_ops": one, "peak_rss_mb": peak}

    def one_leaves(self) -> int:
        conn = self.connect()
        conn.modify_s(f"uid=u{self.users - 1:07d},{self.people}", [(ldap.MOD_REPLACE, "employeeType", [b"former"])])
        conn.unbind_s()
        before = write_count(self.server)
        self.idsync()
        return write_count(self.server) - before

    def embedded(self, path: Path) -> None:
        """The first update on the embedded directory, with the same people and groups."""
        suffix = self.server.base_dn
        save = self.save
        save("store", {"name": "w6e", "kind": "local", "path": str(path), "suffix": suffix})
        for cn, flt in self.filters():
            save("smart_group", {"name": f"w6e-{cn}", "store": "w6e", "dn": f"cn={cn},{self.mine}",
                                 "queries": [{"base": self.people, "scope": "one", "filter": flt}]})
        save("smart_group_job", {"name": "w6e", "store": "w6e", "containers": [self.mine]})
        with connections.directory(self.ws, "w6e") as directory:
            changes = [_ou(dn) for dn in (self.people, self.mine)]
            changes += [Change(ChangeOp.CREATE, f"uid=u{i:07d},{self.people}", attrs=Attrs({
                "objectClass": ["inetOrgPerson"], "uid": [f"u{i:07d}"], "cn": [f"U {i}"], "sn": [f"U{i}"],
                "departmentNumber": [department(i, self.queries)], "employeeType": ["staff"]})) for i in range(self.users)]
            changes += [Change(ChangeOp.CREATE, f"cn={cn},{self.mine}", attrs=Attrs({
                "objectClass": ["groupOfNames"], "cn": [cn], "member": [PLACEHOLDER]})) for cn, _f in self.filters()]
            errors = [o.error for o in directory.apply(changes) if o.error is not None]
            assert not errors, errors[0]
        result = self.idsync("w6e")
        _expect(result["counts"]["updated"] == self.groups + 1, result, 0)
        self.rows.append(Row("W6", "embedded directory: first update seconds", result["seconds"], None, None, "reported",
                             None, digits=2))
        self.figures["embedded"] = {"idsync_s": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}


def _ou(dn: str) -> Change:
    name = dn.split(",", 1)[0][3:]
    return Change(ChangeOp.CREATE, dn, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [name]}))


def _expect(ok: bool, result: dict[str, Any], writes: int) -> None:
    if not ok:
        raise AssertionError(f"W6: unexpected outcome {result['counts']} with {writes} write(s)")


def w6(server: SlapdServer, workdir: Path, env: dict[str, str], *, users: int, groups: int,
       queries: int | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Run W6 on *server* (and the embedded directory); its rows and figures."""
    bench = W6(server, workdir, users, groups, queries or max(2, groups // 10), env)
    bench.run()
    bench.embedded(workdir / "w6-embedded.db")
    return bench.rows, {"W6": bench.figures}
