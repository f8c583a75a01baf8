"""The workloads W1–W5 and W9, each measured with its baseline in the same run.

Workloads that change nothing (W2, its paged-search baseline, W4) are
measured ``repeat`` times and their median kept, the same for idsync and the
baseline: on a machine shared with other work one measurement is noisy.
Workloads that change the directory (W1, W3, W5) are measured once. CPU
seconds of idsync and of slapd are recorded with W1 and W2, to show which of
the two bounds the run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap

from benchmarks import baselines
from benchmarks.data import (
    COLUMNS,
    Delta,
    group_job_definition,
    job_definition,
    person,
    write_csv,
    write_ldif,
)
from benchmarks.proxy import CountingProxy
from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.servers.slapd import SlapdServer, write_count

GROUP_SIZE = 50_000


@dataclass
class Row:
    """One line of the report: a figure of idsync, its baseline, and the target."""

    workload: str
    metric: str
    idsync: float
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    digits: int = 1  # decimals shown of the idsync and baseline figures


def environment(workdir: Path) -> dict[str, str]:
    """The IDSYNC_* variables of a benchmark run: its own home and SQLite database."""
    home = workdir / "home"
    return {"IDSYNC_HOME": str(home), "IDSYNC_DATABASE_URL": f"sqlite:///{home / 'idsync.db'}"}


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process *pid* has used so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle() -> None:
    """Have the kernel write out the files earlier steps left dirty (a slapd's
    memory map of 1,000,000 entries, an embedded directory's file), so that
    this is not done, on the same cores, while the next one is measured."""
    os.sync()


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


@dataclass
class Bench:
    """The workloads against one slapd; the caller has set :func:`environment`.

    *start_server* starts another slapd like *server* (for the W1 baselines);
    :meth:`close` stops the ones still running.
    """

    server: SlapdServer
    start_server: Callable[[], SlapdServer]
    workdir: Path
    users: int
    repeat: int = 3
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        own = environment(self.workdir)
        Path(own["IDSYNC_HOME"]).mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **own, "LDAPNOINIT": "1"}
        self.ws = Workspace(database_url=own["IDSYNC_DATABASE_URL"], principal=Principal("benchmark"))
        base = self.server.base_dn
        self.containers = {name: f"ou={name},{base}" for name in ("ldapadd", "raw", "idsync", "groups")}
        self.raw_server = self.server  # where the bare loop's people are (W3 writes to them)
        self._extra: list[SlapdServer] = []
        self._add_containers(self.server, self.containers.values())
        self._save("store", {"name": "bench", "kind": "ldap", "url": self.server.url,
                             "bind_dn": self.server.root_dn, "bind_password": self.server.root_pw})

    # ------------------------------------------------------------ helpers

    def connect(self, server: SlapdServer | None = None) -> ldap.ldapobject.LDAPObject:
        server = server or self.server
        return baselines.connect(server.url, server.root_dn, server.root_pw)

    def _add_containers(self, server: SlapdServer, dns: Iterable[str]) -> None:
        conn = self.connect(server)
        for dn in dns:
            name = dn.split(",", 1)[0].removeprefix("ou=")
            conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])])
        conn.unbind_s()

    @contextmanager
    def empty_server(self, container: str, keep: bool = False) -> Iterator[SlapdServer]:
        """A server of its own holding only *container*; stopped after the block unless *keep*."""
        server = self.start_server()
        self._extra.append(server)
        self._add_containers(server, [container])
        try:
            yield server
        finally:
            if not keep:
                self._extra.remove(server)
                server.stop()

    def close(self) -> None:
        for server in self._extra:
            server.stop()
        self._extra.clear()

    def _save(self, kind: str, data: dict[str, Any]) -> None:
        definitions.save(self.ws, kind, definitions.parse(kind, data))  # type: ignore[arg-type]

    def _source(self, name: str, path: Path) -> None:
        self._save("source", {"name": name, "kind": "csv", "path": str(path)})

    def step(self, action: str, job: str) -> dict[str, Any]:
        settle()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.step", action, job],
            env=self.env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"idsync {action} {job} failed: {proc.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["state"] not in ("succeeded", "ready"):
            raise RuntimeError(f"idsync {action} {job} ended {result['state']}: {result['error']}")
        return result

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def slapd_cpu(self) -> float | None:
        return process_cpu_seconds(self.server.pid)

    def timed_step(self, action: str, job: str) -> tuple[dict[str, Any], float | None]:
        """:meth:`step`, and the CPU seconds slapd used meanwhile."""
        before = self.slapd_cpu()
        result = self.step(action, job)
        after = self.slapd_cpu()
        return result, (after - before if after is not None and before is not None else None)

    # ------------------------------------------------------------ workloads

    def w1_full_sync(self, label: str = "W1") -> dict[str, Any]:
        n = self.users
        people_csv = self.workdir / "people.csv"
        write_csv(people_csv, (person(i) for i in range(n)))
        ldif = self.workdir / "people.ldif"
        write_ldif(ldif, (person(i) for i in range(n)), self.containers["ldapadd"])
        with self.empty_server(self.containers["ldapadd"]) as server:
            settle()
            ldapadd_s = baselines.ldapadd(server.url, server.root_dn, server.root_pw, ldif)
        with self.empty_server(self.containers["raw"], keep=True) as server:
            self.raw_server = server
            conn = self.connect(server)
            settle()
            raw_s = baselines.pipelined(conn, baselines.add_operations((person(i) for i in range(n)), self.containers["raw"]))
            conn.unbind_s()
        self._source("hr", people_csv)
        self._save("job", job_definition(self.containers["idsync"], "hr"))
        result, slapd_cpu = self.timed_step("run", "people")
        assert result["counts"]["created"] == n, result
        rate = n / result["seconds"]
        self.add(Row(label, "objects/s vs ldapadd -c", rate, n / ldapadd_s, rate / (n / ldapadd_s), "≥ 1.5", rate / (n / ldapadd_s) >= 1.5))
        self.add(Row(label, "objects/s vs bare async python-ldap", rate, n / raw_s, rate / (n / raw_s), "≥ 0.8", rate / (n / raw_s) >= 0.8))
        limit = 300 if n <= 100_000 else 1536
        self.add(Row(label, "peak RSS (MB)", result["peak_rss_mb"], None, None, f"≤ {limit}", result["peak_rss_mb"] <= limit))
        self.figures[label] = {
            "users": n, "idsync_s": result["seconds"], "ldapadd_s": ldapadd_s, "raw_s": raw_s,
            "peak_rss_mb": result["peak_rss_mb"], "idsync_cpu_s": result["cpu_seconds"], "slapd_cpu_s": slapd_cpu,
        }
        return result

    def w2_no_change(self) -> float:
        before = write_count(self.server)
        runs = [self.timed_step("run", "people") for _ in range(self.repeat)]
        writes = write_count(self.server) - before
        seconds = statistics.median(result["seconds"] for result, _ in runs)

        def search() -> float:
            settle()
            conn = self.connect()
            search_s, found = baselines.paged_search(conn, self.containers["idsync"], [*COLUMNS, "entryUUID"])
            conn.unbind_s()
            assert found == self.users
            return search_s

        search_s = median_of(self.repeat, search)
        self.add(Row("W2", "writes issued", writes, None, None, "= 0", writes == 0))
        ratio = seconds / search_s
        self.add(Row("W2", "seconds vs bare paged search", seconds, search_s, ratio, "≤ 1.5", ratio <= 1.5))
        result, slapd_cpu = runs[0]
        self.figures["W2"] = {
            "idsync_s": seconds, "search_s": search_s, "writes": writes, "runs": self.repeat,
            "idsync_cpu_s": result["cpu_seconds"], "slapd_cpu_s": slapd_cpu,
        }
        return float(seconds)

    def w4_preview(self, w2_seconds: float) -> None:
        delta = Delta(self.users)
        delta_csv = self.workdir / "delta.csv"
        write_csv(delta_csv, delta.people())
        self._source("hr", delta_csv)
        before = write_count(self.server)
        previews = [self.step("preview", "people") for _ in range(self.repeat)]
        writes = write_count(self.server) - before
        for result in previews:
            planned = sum(result["counts"][k] for k in ("created", "updated", "deleted"))
            assert planned == delta.changes and writes == 0, (result, writes)
        seconds = statistics.median(result["seconds"] for result in previews)
        ratio = seconds / w2_seconds
        self.add(Row("W4", "preview seconds vs W2", seconds, w2_seconds, ratio, "≤ 1.2", ratio <= 1.2))
        self.figures["W4"] = {"idsync_s": seconds, "w2_s": w2_seconds, "planned": planned, "runs": self.repeat}

    def w3_delta(self, w2_seconds: float) -> None:
        delta = Delta(self.users)
        before = write_count(self.server)
        result = self.step("run", "people")
        ops = write_count(self.server) - before
        self.add(Row("W3", "operations issued vs changes", ops, delta.changes, ops / delta.changes, "= 1.0", ops == delta.changes))
        raw = self.containers["raw"]
        ops_iter = [
            *baselines.add_operations((person(i) for i in delta.created), raw),
            *(("delete", f"uid={person(i)['uid']},{raw}", None) for i in delta.deleted),
            *(("modify", f"uid={person(i)['uid']},{raw}",
               [(ldap.MOD_REPLACE, "title", [person(i, title_shift=1)["title"].encode()])]) for i in delta.modified),
        ]
        conn = self.connect(self.raw_server)
        settle()
        raw_s = baselines.pipelined(conn, ops_iter)
        conn.unbind_s()
        budget = 1.5 * w2_seconds + raw_s
        self.add(Row("W3", "seconds vs 1.5×W2 + bare writes", result["seconds"], budget, result["seconds"] / budget, "≤ 1.0", result["seconds"] <= budget))
        self.figures["W3"] = {"idsync_s": result["seconds"], "ops": ops, "changes": delta.changes, "raw_writes_s": raw_s}

    def w5_membership(self) -> None:
        size = min(GROUP_SIZE, self.users)
        people = self.containers["idsync"]
        # The delta removed the first 1 %; members are taken from those still there.
        first = Delta(self.users).deleted.stop
        members = [person(i)["uid"] for i in range(first, first + size - 1)]
        groups_csv = self.workdir / "groups.csv"
        groups_csv.write_text("name,members\nstaff," + ";".join(members) + "\n", encoding="utf-8")
        self._source("groups", groups_csv)
        host, port = self.server.url.removeprefix("ldap://").split(":")
        with CountingProxy(host, int(port)) as proxy:
            self._save("store", {"name": "bench-proxied", "kind": "ldap", "url": f"ldap://127.0.0.1:{proxy.port}",
                                 "bind_dn": self.server.root_dn, "bind_password": self.server.root_pw})
            self._save("job", group_job_definition(self.containers["groups"], people, store="bench-proxied"))
            created = self.step("run", "groups")
            assert created["counts"]["created"] == 1, created
            changed = [*members[1:], person(first + size - 1)["uid"]]  # one member out, one in
            groups_csv.write_text("name,members\nstaff," + ";".join(changed) + "\n", encoding="utf-8")
            proxy.reset()
            before = write_count(self.server)
            result = self.step("run", "groups")
            ops = write_count(self.server) - before
            sent = proxy.sent
        full_replace = sum(len(f"uid={m},{people}") + 2 for m in changed)
        self.add(Row("W5", f"operations for 1 member changed in {size:,}", ops, 1, ops, "= 1", ops == 1 and result["counts"]["updated"] == 1))
        self.add(Row("W5", "bytes sent by idsync vs one full replace", sent, full_replace, sent / full_replace, "≪ 1", sent < full_replace / 10))
        self.figures["W5"] = {"group_size": size, "ops": ops, "bytes_sent": sent, "full_replace_bytes": full_replace}
