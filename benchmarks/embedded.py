"""W1L, W2L, W3L and W9L: the sync workloads into the embedded directory.

The same people, the same source and the same job as W1, W2, W3 and W9
against slapd, in the same run, so each is reported as a ratio to its slapd
twin: the embedded directory has no protocol and no socket to pay for, so it
should beat any server the client talks to.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.data import Delta, job_definition, person, write_csv
from benchmarks.workloads import Bench, Row
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs
from idsync.services import connections

STORE = "bench-local"
JOB = "people-local"


class Embedded:
    """The embedded directory's twin of each sync workload of *bench*."""

    def __init__(self, bench: Bench, name: str = "embedded.db", store: str = STORE, job: str = JOB) -> None:
        self.bench = bench
        self.store, self.job = store, job
        self.path = bench.workdir / name
        self.container = bench.containers["idsync"]
        bench._save("store", {"name": store, "kind": "local", "path": str(self.path), "suffix": bench.server.base_dn})
        with connections.directory(bench.ws, store) as directory:
            name_ = self.container.split(",", 1)[0].removeprefix("ou=")
            add = Change(ChangeOp.CREATE, self.container,
                         attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [name_]}))
            errors = [o.error for o in directory.apply([add]) if o.error is not None]
            assert not errors, errors[0]

    def save_job(self, source: str) -> None:
        self.bench._save("job", {**job_definition(self.container, source, store=self.store), "name": self.job})

    def w1(self, label: str = "W1L", twin: str = "W1", source: str = "hr") -> dict[str, Any]:
        """The full load; needs the twin's figures (its CSV is the source)."""
        bench, n = self.bench, self.bench.users
        self.save_job(source)
        result = bench.step("run", self.job)
        assert result["counts"]["created"] == n, result
        rate = n / result["seconds"]
        slapd = bench.figures[twin]
        slapd_rate = slapd["users"] / slapd["idsync_s"]
        ratio = rate / slapd_rate
        bench.add(Row(label, f"objects/s vs {twin} (slapd)", rate, slapd_rate, ratio, "≥ 2.0", ratio >= 2.0))
        limit = 300 if n <= 100_000 else 1536
        bench.add(Row(label, "peak RSS (MB)", result["peak_rss_mb"], None, None, f"≤ {limit}", result["peak_rss_mb"] <= limit))
        bench.figures[label] = {"users": n, "idsync_s": result["seconds"], "idsync_cpu_s": result["cpu_seconds"],
                                "peak_rss_mb": result["peak_rss_mb"], "vs": twin, "ratio": ratio}
        return result

    def w2(self) -> None:
        bench = self.bench
        runs = [bench.step("run", self.job) for _ in range(bench.repeat)]
        for result in runs:
            changed = sum(result["counts"][k] for k in ("created", "updated", "deleted", "moved", "disabled"))
            assert changed == 0 and result["counts"]["unchanged"] == bench.users, result
        seconds = statistics.median(r["seconds"] for r in runs)
        slapd = bench.figures["W2"]["idsync_s"]
        ratio = seconds / slapd
        bench.add(Row("W2L", "seconds vs W2 (slapd)", seconds, slapd, ratio, "≤ 0.7", ratio <= 0.7, digits=2))
        peak = max(r["peak_rss_mb"] for r in runs)
        limit = 300 if bench.users <= 100_000 else 1536
        bench.add(Row("W2L", "peak RSS (MB)", peak, None, None, f"≤ {limit}", peak <= limit))
        bench.figures["W2L"] = {"idsync_s": seconds, "idsync_cpu_s": runs[0]["cpu_seconds"], "peak_rss_mb": peak,
                                "runs": bench.repeat, "ratio": ratio}

    def w3(self) -> None:
        """The delta (the source now holds it: W4 and W3 have switched it)."""
        bench = self.bench
        delta = Delta(bench.users)
        result = bench.step("run", self.job)
        counts = result["counts"]
        assert counts["created"] + counts["updated"] + counts["deleted"] == delta.changes, result
        slapd = bench.figures["W3"]["idsync_s"]
        ratio = result["seconds"] / slapd
        bench.add(Row("W3L", "seconds vs W3 (slapd)", result["seconds"], slapd, ratio, "≤ 1.0", ratio <= 1.0, digits=2))
        bench.figures["W3L"] = {"idsync_s": result["seconds"], "idsync_cpu_s": result["cpu_seconds"], "ratio": ratio}


def w9l(bench: Bench) -> None:
    """W9L: the full load of W9's people, and of a tenth of them into another
    file, to show the time per object does not grow with the directory."""
    Embedded(bench).w1("W9L", "W9")
    n = bench.users
    small = bench.workdir / "people-tenth.csv"
    write_csv(small, (person(i) for i in range(n // 10)))
    bench._save("source", {"name": "hr-tenth", "kind": "csv", "path": str(small)})
    tenth = Embedded(bench, "embedded-tenth.db", "bench-local-tenth", "people-local-tenth")
    tenth.save_job("hr-tenth")
    result = bench.step("run", tenth.job)
    assert result["counts"]["created"] == n // 10, result
    per_object = bench.figures["W9L"]["idsync_s"] / n
    per_object_tenth = result["seconds"] / (n // 10)
    ratio = per_object / per_object_tenth
    bench.add(Row("W9L", f"µs per object vs at {n // 10:,} people", per_object * 1e6, per_object_tenth * 1e6, ratio,
                  "≤ 1.2", ratio <= 1.2, digits=1))
    bench.figures["W9L"]["tenth"] = {"users": n // 10, "idsync_s": result["seconds"]}
