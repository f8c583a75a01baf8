"""Messages and hints raised below the front ends never name a CLI command.

Each front end says what to do its own way: the CLI turns a hint into the
command that does it, an HTTP API or the portal into a link or a button. A
message that says "run `idsync db upgrade`" is wrong everywhere but in a
terminal. The check reads the source of the packages below the front ends:
every string given to an idsync error class (message, hint or field).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from idsync import errors
from idsync.cli.app import COMMANDS as LAZY_COMMANDS
from idsync.cli.app import app, exit_code
from idsync.cli.hints import COMMANDS as HINT_COMMANDS
from idsync.cli.hints import render

SRC = Path(errors.__file__).parent
BELOW_FRONT_ENDS = ("services", "store", "engine", "connectors", "notify", "scheduling", "runtime", "domain")

ERROR_CLASSES = frozenset(
    name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, errors.IdsyncError)
)
COMMANDS = sorted(set(LAZY_COMMANDS) | {command.name for command in app.registered_commands if command.name})
NAMES_A_COMMAND = re.compile(rf"\bidsync (?:{'|'.join(COMMANDS)})\b|`[^`]*`")
"""``idsync`` followed by one of its commands, or anything quoted in backticks
(the way a terminal message shows a command)."""

NOT_YET_REWRITTEN: set[tuple[str, str]] = set()


def text_of(node: ast.expr) -> str:
    """The literal text of an argument; each interpolated value reads ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(text_of(part) if isinstance(part, ast.Constant) else "{}" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return text_of(node.left) + text_of(node.right)
    return "{}"


def error_calls() -> Iterator[tuple[str, ast.Call]]:
    """(file, call) of every idsync error made below the front ends."""
    for package in BELOW_FRONT_ENDS:
        for path in sorted((SRC / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name in ERROR_CLASSES:
                    yield path.relative_to(SRC).as_posix(), node


def error_strings() -> Iterator[tuple[str, int, str]]:
    """(file, line, text) of every string given to an idsync error class below the front ends."""
    for file, call in error_calls():
        for arg in [*call.args, *(keyword.value for keyword in call.keywords)]:
            yield file, call.lineno, text_of(arg)


def test_the_check_tells_a_command_from_prose() -> None:
    for named in ("run `idsync db upgrade`", "see idsync job list", "no job (see `idsync {} list`)", "`chmod 600`"):
        assert NAMES_A_COMMAND.search(named), named
    for prose in ("upgrade idsync on this machine", "set it where idsync runs", "has idsync tables (jobs)"):
        assert not NAMES_A_COMMAND.search(prose), prose


def test_no_error_below_the_front_ends_names_a_cli_command() -> None:
    found = list(error_strings())
    assert len(found) > 200, "the walk no longer finds the errors raised"
    naming = [
        f"{file}:{line}: {text}"
        for file, line, text in found
        if NAMES_A_COMMAND.search(text) and (file, text) not in NOT_YET_REWRITTEN
    ]
    assert naming == []


# ---------------------------------------------------------------- what the CLI makes of them


def test_every_hint_the_cli_knows_is_raised() -> None:
    """A hint reworded below would silently lose its command here."""
    raised = [
        re.compile("^" + ".+".join(map(re.escape, text_of(keyword.value).split("{}"))) + "$")
        for _file, call in error_calls()
        for keyword in call.keywords
        if keyword.arg == "hint"
    ]
    unknown = [hint for hint in HINT_COMMANDS if not any(pattern.match(hint) for pattern in raised)]
    assert unknown == []


def test_a_known_hint_gets_its_command_and_any_other_is_shown_as_it_is() -> None:
    assert render("list the jobs") == "list the jobs (`idsync job list`)"
    assert render("restore it from a backup") == "restore it from a backup"
    assert render(None) is None and render("") is None


def test_each_kind_of_refusal_has_its_exit_code() -> None:
    assert exit_code(errors.NotFoundError("no run 5")) == 6
    assert exit_code(errors.StateConflictError("run 4 has finished")) == 7
    assert exit_code(errors.PermissionDeniedError("not yours")) == 8
    for other in (errors.ConfigError(), errors.ConnectorError(), errors.TransientError(), errors.RunAborted()):
        assert exit_code(other) == 1
