"""The benchmark code works, on a CI-sized run. No timing is asserted here:
speed targets are ratios reported by `make bench`, never test assertions."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import report, run
from benchmarks.workloads import environment


def test_benchmarks_run_and_count_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    rows, figures = run(users=2000, scale=False, workdir=tmp_path, repeat=2)
    by_metric = {(r.workload, r.metric.split(" ")[0]): r for r in rows}
    assert by_metric[("W2", "writes")].idsync == 0
    assert figures["W3"]["ops"] == figures["W3"]["changes"] == 140  # type: ignore[index]
    assert figures["W5"]["ops"] == 1  # type: ignore[index]
    assert figures["W5"]["bytes_sent"] < figures["W5"]["full_replace_bytes"] / 10  # type: ignore[index]
    assert figures["W2"]["runs"] == figures["W4"]["runs"] == 2  # type: ignore[index]
    for workload in ("W1", "W2"):  # both sides' CPU is recorded, to show which bounds the run
        # (slapd's in clock ticks of 10 ms: a small no-change run may take none)
        assert figures[workload]["idsync_cpu_s"] > 0 and figures[workload]["slapd_cpu_s"] >= 0  # type: ignore[index]
    assert figures["W1"]["slapd_cpu_s"] > 0  # type: ignore[index]
    table = report(rows)
    assert all(r.workload in table for r in rows)
