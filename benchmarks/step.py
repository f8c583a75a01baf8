"""One idsync step in its own process, so its peak memory is its own.

``python -m benchmarks.step run|preview|smartgroups JOB`` (with IDSYNC_HOME and
IDSYNC_DATABASE_URL set by the caller) prints one JSON line: seconds spent in
the run or preview (interpreter start-up excluded), the CPU seconds it used
(with its children's: an embedded directory's writer process), peak RSS (the
larger of its own and a child's), state, counts.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from idsync.domain.principals import Principal
from idsync.services import jobs, smartgroup_runs
from idsync.services.workspace import Workspace


def main(argv: list[str]) -> int:
    action, job = argv
    ws = Workspace(principal=Principal("benchmark"))
    ws.db  # noqa: B018 - open and check the database before the clock starts
    started, cpu_started = time.perf_counter(), time.process_time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_started = before.ru_utime + before.ru_stime
    if action == "run":
        row = jobs.run_job(ws, job)
        state, counts, error = row.state.value, row.counts.to_dict(), row.error
    elif action == "smartgroups":  # JOB is a smart group update job (W6)
        row = smartgroup_runs.run_update_job(ws, job).run
        state, counts, error = row.state.value, row.counts.to_dict(), row.error
    else:
        plan = jobs.preview_job(ws, job).plan
        state, counts, error = plan.state, plan.counts.to_dict(), plan.error
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    # An embedded directory's writer process (ended by now) counts too: its CPU, and its peak if larger.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds += children.ru_utime + children.ru_stime - children_started
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss) / 1024
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak_mb, "state": state, "counts": counts, "error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
