"""The benchmark code works, on a CI-sized run. No timing is asserted here:
speed targets are ratios reported by `make bench`, never test assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main, report, run
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
    # The embedded directory's twins ran on the same data (each checks its counts as it goes).
    assert figures["W1L"]["users"] == 2000 and figures["W1L"]["vs"] == "W1"  # type: ignore[index]
    assert figures["W2L"]["runs"] == 2 and figures["W3L"]["idsync_s"] > 0  # type: ignore[index]
    assert {("W1L", "objects/s"), ("W2L", "seconds"), ("W3L", "seconds")} <= set(by_metric)
    table = report(rows)
    assert all(r.workload in table for r in rows)


def test_the_scale_workloads_run_on_both_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    rows, figures = run(users=2000, scale=True, workdir=tmp_path, repeat=1)
    assert [r.workload for r in rows].count("W9L") == 3
    assert figures["W9L"]["users"] == 2000 and figures["W9L"]["tenth"]["users"] == 200  # type: ignore[index]
    per_object = next(r for r in rows if r.workload == "W9L" and r.metric.startswith("µs per object"))
    assert per_object.baseline is not None and per_object.baseline > 0


def test_the_startup_workload_alone_reports_its_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m benchmarks --only startup``: S1 only (no slapd), each command timed, medians beside the targets."""
    out = tmp_path / "s1.json"
    assert main(["--only", "startup", "--startup-runs", "2", "--json", str(out)]) == 0
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["workload"], r["target"]) for r in saved["rows"]] == [("S1", "≤ 0.3 s"), ("S1", "≤ 0.5 s")]
    s1 = saved["figures"]["S1"]
    assert set(saved["figures"]) == {"S1"} and s1["runs"] == 2
    assert {name: len(times) for name, times in s1["all_s"].items()} == {
        "python -c pass": 2, "idsync --help": 2, "idsync store list": 2,
    }
    for row in saved["rows"]:
        assert row["idsync"] > 0 and row["baseline"] > 0 and row["ratio"] == row["idsync"] / row["baseline"]
    table = capsys.readouterr().out
    assert "idsync --help seconds vs python -c pass" in table and "idsync store list seconds" in table
