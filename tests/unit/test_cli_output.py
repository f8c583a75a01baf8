"""What the CLI prints never carries a raw control character from data."""

from __future__ import annotations

import io

from rich.console import Console

from idsync.cli.output import SafeConsole, escape_controls

OSC52 = "\x1b]52;c;ZXZpbA==\x07"


def test_control_characters_become_visible_escapes() -> None:
    assert escape_controls(f"Ada{OSC52}\x9b2J") == "Ada\\x1b]52;c;ZXZpbA==\\x07\\x9b2J"


def test_newlines_tabs_and_letters_stay() -> None:
    text = "Ĳsbrand Ørsted\tline 1\nline 2 — ok"
    assert escape_controls(text) == text


def test_the_console_escapes_what_it_prints() -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=False, width=200)
    console.print(f"name {OSC52}", markup=False)
    assert "\x1b" not in out.getvalue() and "\\x1b]52" in out.getvalue()


def test_a_plain_rich_console_would_pass_the_sequence_through() -> None:
    out = io.StringIO()
    Console(file=out, force_terminal=False, width=200).print(f"name {OSC52}", markup=False)
    assert "\x1b]52" in out.getvalue()
