"""Hostile files read by a process of their own, its peak memory measured.

Each file holds far more in one field or cell than its limit allows (set
low through the settings): the read must report that row and go on, and
the process's peak resident size (``ru_maxrss``) must grow by about the
limit, not by the field. tracemalloc (in the unit tests) sees Python's
allocations; this sees everything, the XML parser's and zlib's included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.xlsx import Big, write_xlsx

MB = 1 << 20

READ = """
import json, resource, sys
from pathlib import Path
from idsync.connectors.csv import CsvReader
from idsync.connectors.excel import ExcelReader

kind, path, warm = sys.argv[1:]
reader = {"csv": CsvReader, "excel": ExcelReader}[kind]
list(reader(Path(warm)).read())  # first use: imports and caches
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
items = [(type(i).__name__, i.line, getattr(i, "message", "")) for i in reader(Path(path)).read()]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown": (peak - base) * 1024, "items": items}))
"""


def read_in_a_process(kind: str, path: Path, warm: Path, **settings: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")}
    env |= {"IDSYNC_HOME": str(path.parent / "home")}
    env |= {f"IDSYNC_{name.upper()}": value for name, value in settings.items()}
    done = subprocess.run(
        [sys.executable, "-c", READ, kind, str(path), str(warm)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_csv_line_of_200_mb_is_read_in_memory_bounded_by_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,members\n1,a\n2,")
        for _ in range(200):
            out.write("x" * MB)
        out.write("\n3,c\n")
    warm = tmp_path / "warm.csv"
    warm.write_text("id,members\n1,a\n", encoding="utf-8")
    result = read_in_a_process("csv", path, warm, csv_field_limit=str(MB))
    # Seen: ~3 MB; holding the line (as the csv module alone does) ~400 MB.
    assert result["grown"] < 32 * MB, f"peak memory grew {result['grown']:,} bytes"
    assert [item[:2] for item in result["items"]] == [["Record", 2], ["RecordError", 3], ["Record", 4]]
    assert "the row is longer than 2,097,152 characters" in result["items"][1][2]


def test_an_excel_cell_of_64_mb_is_read_in_memory_bounded_by_the_limit(tmp_path: Path) -> None:
    for shared in (False, True):
        rows = [["id", "members"], [1, "a"], [2, Big(64 * MB)], [3, "c"]]
        path = write_xlsx(tmp_path / f"long-{shared}.xlsx", rows, shared=shared)
        assert path.stat().st_size < MB  # a small file: the text compresses a thousand times
        warm = write_xlsx(tmp_path / f"warm-{shared}.xlsx", [["id", "members"], [1, "a"]], shared=shared)
        result = read_in_a_process("excel", path, warm, excel_cell_limit=str(MB))
        # Seen: ~2 MB; openpyxl's parser holds the text whole, twice: ~130 MB.
        assert result["grown"] < 32 * MB, f"peak memory grew {result['grown']:,} bytes ({'shared' if shared else 'inline'})"
        assert [item[:2] for item in result["items"]] == [["Record", 2], ["RecordError", 3], ["Record", 4]]
        assert result["items"][1][2] == (
            "row 3, column members (B3): the cell holds 67,108,864 characters, more than the 1,048,576 allowed "
            "(IDSYNC_EXCEL_CELL_LIMIT)"
        )
