"""W6 (smart groups in `make bench`) works and counts exactly, on a CI-sized run.
No timing is asserted: speed targets are ratios reported by `make bench`."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import report, run_w6


def test_w6_runs_and_counts_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IDSYNC_HOME", "IDSYNC_DATABASE_URL"):  # run_w6 sets its own: undone after the test
        monkeypatch.setenv(name, "")
    rows, figures = run_w6(tmp_path, users=500, groups=10)
    w6 = figures["W6"]
    assert w6["first"]["writes"] == w6["first"]["bare_writes"] == 11  # type: ignore[index]
    assert w6["no_change"]["writes"] == 0 == w6["no_change"]["bare_writes"]  # type: ignore[index]
    assert w6["moved"]["writes"] == w6["moved"]["bare_writes"] > 0  # type: ignore[index]
    assert w6["one_member_ops"] == 1  # type: ignore[index]
    assert w6["embedded"]["idsync_s"] > 0  # type: ignore[index]
    assert all(r.workload == "W6" for r in rows) and "W6" in report(rows)
