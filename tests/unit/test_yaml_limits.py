"""Definition files are read bounded: alias bombs and repeated keys are refused."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from idsync.errors import ConfigError
from idsync.services import yaml_limits, yamlio

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")
    assert len(BOMB.encode()) < 600
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"bomb.yaml: the document expands to [\d,]+ values, more than the 1,000,000"):
            yamlio.read_yaml(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_the_expanded_size_counts_aliases_as_their_targets() -> None:
    data, node = yaml_limits.load("a: &x [1, 2]\nb: *x\nc: *x\n")
    assert data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert node is not None
    # the mapping, 3 keys, and three lists of 2 items each
    assert yaml_limits.expanded_size(node) == 1 + 3 + 3 * 3


def test_a_small_limit_refuses_a_large_document() -> None:
    with pytest.raises(yaml_limits.YamlLimitError, match="expands to 21 values"):
        yaml_limits.load("[" + ",".join(["x"] * 20) + "]", max_nodes=20)


def test_a_key_given_twice_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("sources:\n  - name: s1\n    kind: csv\n    path: a.csv\n    name: s2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"twice.yaml:5: key 'name' is given twice, on lines 2 and 5"):
        yamlio.read_yaml(path)


def test_merge_keys_may_be_overridden() -> None:
    data, _node = yaml_limits.load("base: &b {kind: csv, delimiter: ','}\nsrc:\n  <<: *b\n  delimiter: ';'\n")
    assert data["src"] == {"kind": "csv", "delimiter": ";"}


def test_an_empty_document_is_none() -> None:
    assert yaml_limits.load("") == (None, None)
