"""Regular expressions written in definitions or met in data, run in linear time.

A pattern comes from a job (the ``replace`` step, ``re_sub`` and ``re_match``
in expressions) and runs on values from the source, which nobody vetted: with
a backtracking engine, ``(a+)+$`` on 35 characters runs for ever. Patterns
therefore run on RE2 (``google-re2``), whose time is linear in the text.

They keep Python's spelling. What RE2 cannot do (backreferences, lookahead
and lookbehind, conditionals, atomic groups, possessive quantifiers, verbose
mode, comments) is refused when the pattern is compiled, which happens when
the job is saved, with a ConfigError naming the feature. ``\\d``, ``\\w`` and
``\\s`` keep Python's Unicode meaning (RE2's own are ASCII only), and ``\\Z``
means the end of the text as in Python. Two small differences remain: ``\\b``
and ``\\B`` see only ASCII letters as word characters, and ``$`` without
``(?m)`` matches only at the very end (not before a final newline).

A replacement (``with``, the second argument of ``re_sub``) follows Python's
rules: ``\\1`` to ``\\99``, ``\\g<name>``, ``\\g<1>``, ``\\n``, ``\\t``...; a
group that did not take part in the match gives "".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import re2

from idsync.errors import ConfigError

MAX_REPLACED_LENGTH = 1_000_000
"""The longest text a substitution may produce when the caller gives no limit."""

# Python's Unicode classes, spelled for RE2 (whose \d \w \s are ASCII only).
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
_SPACE = r"\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}"
_OUTSIDE = {
    "d": f"[{_DIGIT}]", "D": f"[^{_DIGIT}]",
    "w": f"[{_WORD}]", "W": f"[^{_WORD}]",
    "s": f"[{_SPACE}]", "S": f"[^{_SPACE}]",
    "Z": r"\z",
}
_INSIDE = {"d": _DIGIT, "w": _WORD, "s": _SPACE}

_GROUP_FEATURES = (
    ("(?<=", "a lookbehind (?<=...)"),
    ("(?<!", "a negative lookbehind (?<!...)"),
    ("(?=", "a lookahead (?=...)"),
    ("(?!", "a negative lookahead (?!...)"),
    ("(?P=", "a named backreference (?P=name)"),
    ("(?(", "a conditional group (?(...)...)"),
    ("(?>", "an atomic group (?>...)"),
    ("(?#", "a comment (?#...)"),
)
_UNSUPPORTED = "is not supported (patterns run on RE2, in time linear in the text)"


class PatternError(ValueError):
    """A pattern or a replacement that cannot be used; the message says why."""


def _translate(source: str) -> str:
    """*source* in RE2's syntax with Python's meaning, or PatternError naming
    the first feature RE2 lacks."""
    out: list[str] = []
    i, n = 0, len(source)
    in_class = False
    while i < n:
        c = source[i]
        if c == "\\":
            if i + 1 >= n:
                raise PatternError("the pattern ends with a lone backslash")
            e = source[i + 1]
            if not in_class and e in "123456789":
                raise PatternError(f"a backreference (\\{e}) {_UNSUPPORTED}")
            if not in_class and e in _OUTSIDE:
                out.append(_OUTSIDE[e])
            elif in_class and e in _INSIDE:
                out.append(_INSIDE[e])
            elif in_class and e in "DWS":
                raise PatternError(
                    f"\\{e} inside [...] is not supported: list the characters to match instead"
                )
            else:
                out.append(c + e)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[" and source.startswith("[:", i):
                end = source.find(":]", i + 2)
                if end != -1:  # [:alpha:] inside a class: copied as it is
                    out.append(source[i : end + 2])
                    i = end + 2
                    continue
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            start = i + 2 if source.startswith("[^", i) else i + 1
            if source.startswith("]", start):  # a leading ] is a literal
                start += 1
            out.append(source[i:start])
            i = start
            continue
        if c == "(" and source.startswith("(?", i):
            for prefix, feature in _GROUP_FEATURES:
                if source.startswith(prefix, i):
                    raise PatternError(f"{feature} {_UNSUPPORTED}")
            flags = re.match(r"\(\?([a-zA-Z]+)[:)]", source[i:])
            if flags and set(flags.group(1)) - set("imsU"):
                bad = "".join(sorted(set(flags.group(1)) - set("imsU")))
                raise PatternError(f"the flag {bad!r} {_UNSUPPORTED}; i, m, s and U are")
        if c in "*+?}" and i + 1 < n and source[i + 1] == "+":
            raise PatternError(f"a possessive quantifier ({c}+) {_UNSUPPORTED}")
        out.append(c)
        i += 1
    return "".join(out)


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    return options


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    translated = _translate(source)
    try:
        return re2.compile(translated, _options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        if "repetition size" in text:
            text += " (a count in {...} may be at most 1000)"
        raise PatternError(text) from None


# ---------------------------------------------------------------- replacements

_TEMPLATE_TOKEN = re.compile(r"\\(?:g<([^>]*)>|(0[0-7]{0,2})|([1-7][0-7]{2})|([1-9][0-9]?)|(.)|$)", re.S)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}

Piece = str | int


def _template(repl: str, groups: int, names: Mapping[str, int]) -> tuple[Piece, ...]:
    """*repl* as literal texts and group numbers, checked against the pattern's groups."""
    pieces: list[Piece] = []
    text: list[str] = []
    last = 0

    def group(number: int, shown: str) -> None:
        if number > groups:
            raise PatternError(f"the replacement refers to group {shown}, and the pattern has {groups}")
        pieces.append("".join(text))
        text.clear()
        pieces.append(number)

    for m in _TEMPLATE_TOKEN.finditer(repl):
        text.append(repl[last : m.start()])
        last = m.end()
        name, octal, octal3, number, other = m.groups()
        if name is not None:
            if name.isdigit():
                group(int(name), name)
            elif name in names:
                group(names[name], repr(name))
            else:
                raise PatternError(f"the replacement refers to group {name!r}, which the pattern lacks")
        elif octal is not None or octal3 is not None:
            value = int(octal or octal3, 8)
            if value > 0o377:
                raise PatternError(f"octal escape \\{octal3} in the replacement is over \\377")
            text.append(chr(value))
        elif number is not None:
            group(int(number), number)
        elif other is not None:
            if other in _ESCAPES:
                text.append(_ESCAPES[other])
            elif other.isascii() and other.isalpha():
                raise PatternError(f"bad escape \\{other} in the replacement")
            else:
                text.append("\\" + other)
        else:
            raise PatternError("the replacement ends with a lone backslash")
    text.append(repl[last:])
    pieces.append("".join(text))
    return tuple(p for p in pieces if p != "")


@dataclass(frozen=True, eq=False)
class Pattern:
    """A compiled pattern: :meth:`sub` replaces, :meth:`first` finds."""

    source: str
    _regex: Any

    @property
    def groups(self) -> int:
        return int(self._regex.groups)

    def replacer(self, repl: str) -> Replacer:
        """A checked replacement for this pattern (PatternError when it is invalid)."""
        return Replacer(self, _template(repl, self.groups, dict(self._regex.groupindex)))

    def first(self, text: str) -> str | None:
        """The first group of the first match (the whole match without groups), or None."""
        found = self._regex.search(text)
        if found is None:
            return None
        value = found.group(1) if self.groups else found.group(0)
        return None if value is None else str(value)


@dataclass(frozen=True, eq=False)
class Replacer:
    """A pattern with its replacement, applied to any number of texts."""

    pattern: Pattern
    pieces: tuple[Piece, ...]

    def __call__(self, text: str, limit: int = MAX_REPLACED_LENGTH) -> str:
        """*text* with every match replaced; PatternError past *limit* characters."""
        pieces = self.pieces
        grown = [len(text)]

        def expand(match: Any) -> str:
            if len(pieces) == 1 and isinstance(pieces[0], str):
                out = pieces[0]
            else:
                out = "".join(p if isinstance(p, str) else (match.group(p) or "") for p in pieces)
            grown[0] += len(out) - (match.end() - match.start())
            if grown[0] > limit:
                raise PatternError(f"the replaced text would be over {limit:,} characters")
            return out

        return str(self.pattern._regex.sub(expand, text))


def compile_pattern(source: str) -> Pattern:
    """*source* compiled for RE2; PatternError saying what RE2 cannot do."""
    return Pattern(source, _compile(source))


def checked_pattern(source: str, repl: str | None, where: str) -> tuple[Pattern, Replacer | None]:
    """:func:`compile_pattern` (and its replacement) for a definition: a ConfigError naming *where*."""
    try:
        pattern = compile_pattern(source)
        return pattern, None if repl is None else pattern.replacer(repl)
    except PatternError as exc:
        shown = f"{source!r}" if repl is None else f"{source!r} (replacement {repl!r})"
        raise ConfigError(f"{where}: the regular expression {shown} cannot be used: {exc}") from None

