"""The embedded directory's writer process: an apply through it gives the same
entries and the same outcomes as one made in process, reports what it
committed when the changes stop coming, and never leaves a process behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory, writer
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Scope
from idsync.errors import ConnectorError, TransientError

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"
WRITER = "idsync.connectors.local.writer"


def person(uid: str, **extra: str) -> Change:
    attrs = {"objectClass": "inetOrgPerson", "uid": uid, "cn": f"User {uid}", "sn": "S", **extra}
    return Change(ChangeOp.CREATE, f"uid={uid},{PEOPLE}", key=uid, attrs=Attrs(attrs))


def every_kind() -> list[Change]:
    """Adds, modifies, deletes and moves, with failures met before storing
    (schema, DN) and while storing (an existing entry, a missing one)."""
    people = Change(ChangeOp.CREATE, PEOPLE, attrs=Attrs({"objectClass": "organizationalUnit", "ou": "People"}))
    return [
        people,
        *(person(f"u{i}") for i in range(12)),
        person("u3"),  # exists: refused by the writer
        Change(ChangeOp.CREATE, f"uid=nosn,{PEOPLE}", attrs=Attrs({"objectClass": "inetOrgPerson", "cn": "x"})),
        Change(ChangeOp.CREATE, "uid=x,ou=Nowhere,o=elsewhere", attrs=Attrs({"objectClass": "account"})),
        Change(ChangeOp.CREATE, "not a dn", attrs=Attrs({"objectClass": "account"})),
        Change(ChangeOp.UPDATE, f"uid=u1,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "mail", ("u1@example.org",)),)),
        Change(ChangeOp.UPDATE, f"uid=gone,{PEOPLE}", mods=(Modification(ModOp.REPLACE, "mail", ("x@y",)),)),
        Change(ChangeOp.DELETE, f"uid=u2,{PEOPLE}"),
        Change(ChangeOp.MOVE, f"uid=u4,{PEOPLE}", new_dn=f"uid=u44,{PEOPLE}"),
        *(person(f"v{i}") for i in range(9)),
    ]


def writers() -> set[int]:
    """The writer processes this process has started and not yet reaped."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and WRITER in command:
            found.add(int(entry.name))
    return found


def state(d: LocalDirectory) -> dict[str, dict[str, tuple[str, ...]]]:
    return {e.dn: dict(e.attrs.items()) for e in d.search(SUFFIX, Scope.SUB)}


def test_the_writer_gives_the_same_entries_and_outcomes(tmp_path: Path) -> None:
    inline = LocalDirectory(tmp_path / "inline.db", batch_size=4, writer_after=None)
    through = LocalDirectory(tmp_path / "writer.db", batch_size=4, writer_after=4)
    with inline, through:
        expected = [(o.change, o.error and o.error.message) for o in inline.apply(every_kind())]
        got = [(o.change, o.error and o.error.message) for o in through.apply(every_kind())]
        assert got == expected
        assert sum(1 for _, error in got if error) == 5
        assert state(through) == state(inline)
    assert not writers()


def test_changes_that_stop_midway_report_what_the_writer_committed(tmp_path: Path) -> None:
    def failing() -> Iterator[Change]:
        yield from every_kind()[:13]
        raise TransientError("the source went away")

    outcomes = []
    with LocalDirectory(tmp_path / "dir.db", batch_size=4, writer_after=4) as d:
        with pytest.raises(TransientError, match="the source went away"):
            outcomes.extend(d.apply(failing()))
        # The three batches sent (two applied in process, one by the writer) are reported, the one being read is not.
        assert len(outcomes) == 12 and all(o.error is None for o in outcomes)
        assert len(state(d)) == 1 + 12  # the suffix, People and eleven people
    assert not writers()


def test_a_caller_that_stops_reading_outcomes_leaves_no_writer(tmp_path: Path) -> None:
    with LocalDirectory(tmp_path / "dir.db", batch_size=4, writer_after=4) as d:
        outcomes = d.apply(every_kind())
        first = [next(outcomes) for _ in range(9)]
        assert writers()
        outcomes.close()
        assert not writers()
        assert all(o.error is None for o in first)
        # Whole batches of four: two applied in process, the writer's first, whose
        # outcomes were being given out, and the two sent to it before they
        # were: the first twenty changes, nothing after.
        with LocalDirectory(tmp_path / "inline.db", writer_after=None) as inline:
            list(inline.apply(every_kind()[:20]))
            assert state(d) == state(inline)


def test_a_writer_that_dies_fails_the_apply_in_one_line(tmp_path: Path) -> None:
    def killing() -> Iterator[Change]:
        for i, change in enumerate(every_kind()):
            if i == 10:
                for pid in writers():
                    os.kill(pid, signal.SIGKILL)
            yield change

    with LocalDirectory(tmp_path / "dir.db", batch_size=4, writer_after=4) as d:
        with pytest.raises(ConnectorError, match=r"its writer process ended \(exit code -9\)") as caught:
            list(d.apply(killing()))
        assert "\n" not in caught.value.message
        assert state(d)  # the file still opens and reads
    assert not writers()


def test_closing_the_directory_midway_stops_the_apply(tmp_path: Path) -> None:
    d = LocalDirectory(tmp_path / "dir.db", batch_size=4, writer_after=4)
    with pytest.raises(ConnectorError, match="is closed"):
        for n, _outcome in enumerate(d.apply(every_kind()), 1):
            if n == 8:
                d.close()
    assert not writers()


def test_a_writer_that_cannot_start_leaves_the_work_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(writer.subprocess, "Popen", refused)
    with LocalDirectory(tmp_path / "dir.db", batch_size=4, writer_after=4) as d:
        outcomes = list(d.apply(every_kind()))
        assert len(outcomes) == len(every_kind()) and sum(1 for o in outcomes if o.error) == 5
    assert "cannot start its writer process: Resource temporarily unavailable; writing in this process" in caplog.text
