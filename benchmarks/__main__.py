"""``python -m benchmarks``: run the workloads and print the table of ratios."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from benchmarks.embedded import Embedded, w9l
from benchmarks.portal import portal
from benchmarks.scheduler import ScaleResult
from benchmarks.scheduler import w10 as scheduler_scale
from benchmarks.smartgroups import w6
from benchmarks.startup import startup
from benchmarks.workloads import Bench, Row, environment
from tests.servers.slapd import SlapdServer, start_slapd


def report(rows: list[Row]) -> str:
    head = f"{'workload':8} {'metric':46} {'idsync':>12} {'baseline':>12} {'ratio':>7}  {'target':8} met"
    lines = [head, "-" * len(head)]
    for r in rows:
        base = f"{r.baseline:12.{r.digits}f}" if r.baseline is not None else " " * 12
        ratio = f"{r.ratio:7.2f}" if r.ratio is not None else " " * 7
        met = {True: "yes", False: "NO", None: ""}[r.met]
        lines.append(f"{r.workload:8} {r.metric:46} {r.idsync:12.{r.digits}f} {base} {ratio}  {r.target:8} {met}")
    return "\n".join(lines)


def run(users: int, scale: bool, workdir: Path, repeat: int = 3) -> tuple[list[Row], dict[str, object]]:
    """Every workload on a fresh private slapd, and its embedded directory twin
    (W1L–W3L); W9 and W9L (--scale) replace W1–W5."""
    os.environ.update(environment(workdir))

    def start() -> SlapdServer:
        return start_slapd(tls=False, maxsize=(8 << 30) if scale else (2 << 30))

    server = start()
    bench: Bench | None = None
    try:
        bench = Bench(server, start, workdir, users, repeat)
        if scale:
            bench.w1_full_sync("W9")
            w9l(bench)
        else:
            bench.w1_full_sync()
            embedded = Embedded(bench)
            embedded.w1()
            w2 = bench.w2_no_change()
            embedded.w2()
            bench.w4_preview(w2)
            bench.w3_delta(w2)
            embedded.w3()
            bench.w5_membership()
        return bench.rows, bench.figures
    finally:
        if bench is not None:
            bench.close()
        server.stop()


WORKLOADS = ("startup", "sync", "smartgroups", "scheduler", "portal")
"""What ``--only`` can choose: S1 (the command's start-up), the sync workloads W1–W5 (or W9), W6,
W10 (schedulers and workers on PostgreSQL, over five minutes; run only when chosen), and P1–P3 (the
portal's pages over 100,000 runs and 10,000 requests)."""


def run_w6(workdir: Path, users: int, groups: int) -> tuple[list[Row], dict[str, object]]:
    """W6 (smart groups) on a fresh private slapd of its own."""
    own = environment(workdir)
    os.environ.update(own)  # this process's workspace too: its own home, key and database
    Path(own["IDSYNC_HOME"]).mkdir(parents=True, exist_ok=True)
    server = start_slapd(tls=False, maxsize=2 << 30)
    try:
        return w6(server, workdir, {**os.environ, **own, "LDAPNOINIT": "1"}, users=users, groups=groups)
    finally:
        server.stop()


def w10_rows(result: ScaleResult) -> list[Row]:
    """W10's lines of the report: the scheduler lag, and whether nothing was lost or doubled."""
    p95 = result.percentile(95)
    return [
        Row("W10", "scheduler lag p50 (s, due to run deferred)", result.percentile(50), digits=2),
        Row("W10", "scheduler lag p95 (s, due to run deferred)", p95, target="< 2 s", met=p95 < 2, digits=2),
        Row("W10", "wait for a worker p95 (s, due to run start)", result.percentile(95, result.pickup), digits=2),
        Row("W10", "occurrences, each run once", float(result.occurrences), target="no problem",
            met=not result.problems(), digits=0),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=WORKLOADS, action="append",
                        help="run only this part (startup: S1, no slapd; sync: W1–W5 or W9); may be repeated")
    parser.add_argument("--startup-runs", type=int, default=10, help="timed runs of each S1 command; the median is kept (default 10)")
    parser.add_argument("--users", type=int, default=100_000, help="people in W1–W4 (default 100,000)")
    parser.add_argument("--scale", action="store_true", help="W9: 1,000,000 people into slapd (takes a while)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of W2, W4 and the paged search; the median is kept (default 3)")
    parser.add_argument("--w6-users", type=int, default=10_000, help="people in W6 (default 10,000; the issue's size is 100,000)")
    parser.add_argument("--w6-groups", type=int, default=100, help="smart groups in W6 (default 100; the issue's size is 1,000)")
    parser.add_argument("--pg-url", default=os.environ.get("IDSYNC_TEST_POSTGRES_URL", ""),
                        help="PostgreSQL server for W10 (default: IDSYNC_TEST_POSTGRES_URL); W10 makes a database of its own")
    parser.add_argument("--w10-schedules", type=int, default=200, help="schedules firing every minute in W10 (default 200)")
    parser.add_argument("--w10-minutes", type=float, default=5, help="minutes of schedule time in W10 (default 5)")
    parser.add_argument("--w10-speed", type=float, default=1, help="schedule clock speed in W10 (default 1: real time)")
    parser.add_argument("--portal-requests", type=int, default=50,
                        help="timed fetches of each portal page (P1–P3); median and p95 are kept (default 50)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write the figures")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.users < 100 or args.startup_runs < 1:
        parser.error("--repeat and --startup-runs must be at least 1 and --users at least 100")
    users = 1_000_000 if args.scale and args.users == 100_000 else args.users
    parts = set(args.only or [w for w in WORKLOADS if w != "scheduler"])
    if "scheduler" in parts and not args.pg_url:
        parser.error("W10 (--only scheduler) needs a PostgreSQL server: --pg-url or IDSYNC_TEST_POSTGRES_URL")
    rows: list[Row] = []
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="idsync-bench-") as tmp:
        if "startup" in parts:  # first, while nothing else of the benchmark runs
            startup_rows, figures["S1"] = startup(Path(tmp), args.startup_runs)
            rows += startup_rows
        if "sync" in parts:
            sync_rows, sync_figures = run(users, args.scale, Path(tmp), args.repeat)
            rows += sync_rows
            figures |= sync_figures
        if "smartgroups" in parts:
            w6_rows, w6_figures = run_w6(Path(tmp) / "w6", args.w6_users, args.w6_groups)
            rows += w6_rows
            figures |= w6_figures
        if "scheduler" in parts:
            w10 = scheduler_scale(Path(tmp), args.pg_url, schedules=args.w10_schedules, minutes=args.w10_minutes,
                                  speed=args.w10_speed)
            rows += w10_rows(w10)
            figures["W10"] = {"summary": w10.summary(), "problems": w10.problems(), "runs": w10.runs_by_state,
                              "lag_p50_s": w10.percentile(50), "lag_p95_s": w10.percentile(95),
                              "worker_wait_p50_s": w10.percentile(50, w10.pickup),
                              "worker_wait_p95_s": w10.percentile(95, w10.pickup)}
            print(w10.summary())
            for problem in w10.problems():
                print(f"W10 problem: {problem}")
        if "portal" in parts:
            portal_rows, figures["portal"] = portal(Path(tmp), args.portal_requests)
            rows += portal_rows
    print(report(rows))
    for workload, figure in figures.items():
        if isinstance(figure, dict) and figure.get("idsync_cpu_s") is not None:
            slapd = figure.get("slapd_cpu_s")
            server = "" if "slapd_cpu_s" not in figure else (
                f", slapd {'unknown' if slapd is None else f'{slapd:.2f}'}")  # none for the embedded directory
            print(f"{workload} CPU seconds: idsync {figure['idsync_cpu_s']:.2f}{server}, "
                  f"over {figure['idsync_s']:.2f} s of wall time")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "users": users, "repeat": args.repeat, "machine": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rows": [r.__dict__ for r in rows], "figures": figures,
    }, indent=2), encoding="utf-8")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
