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


WORKLOADS = ("startup", "sync", "smartgroups")
"""What ``--only`` can choose: S1 (the command's start-up), the sync workloads W1–W5 (or W9), and W6."""


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
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write the figures")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.users < 100 or args.startup_runs < 1:
        parser.error("--repeat and --startup-runs must be at least 1 and --users at least 100")
    users = 1_000_000 if args.scale and args.users == 100_000 else args.users
    parts = set(args.only or WORKLOADS)
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
