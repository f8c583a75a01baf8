"""YAML read as plain data, and bounded: no alias bombs, no silently repeated keys.

A YAML file is parsed into a node graph first (cheap: an alias is one shared
node), then checked, and only then turned into Python data:

- **Aliases** let a few hundred bytes stand for billions of values (the
  "billion laughs"). The number of nodes the document would have with every
  alias expanded is counted on the graph, shared nodes once, before anything
  walks or builds it; past :data:`MAX_NODES` the file is refused.
- **A key given twice** in one mapping is refused with both lines: YAML
  would keep the last one silently (``name: s1`` … ``name: s2`` saved *s2*).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 1_000_000
"""The most nodes (values, keys, lists, mappings) a definitions file may hold
once its aliases are expanded: far above any real file (a thousand jobs of
fifty fields each are about 100,000), far below what exhausts memory."""


class YamlLimitError(ValueError):
    """The document breaks a limit; *line* is 1-based, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge (<<) supplies defaults the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                earlier = first_line.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: the constructor reports it
            if earlier != line:
                raise YamlLimitError(f"key {key!r} is given twice, on lines {earlier} and {line}", line)
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: yaml.Node) -> int:
    """How many nodes *root* stands for with every alias expanded, counted
    without expanding anything (each shared node is sized once)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load(text: str, *, max_nodes: int = MAX_NODES) -> tuple[Any, yaml.Node | None]:
    """The data of YAML *text* and its node graph (None for an empty document).

    Raises :class:`YamlLimitError` past *max_nodes* or on a repeated key, and
    ``yaml.YAMLError`` for text that is not YAML.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        size = expanded_size(node)
        if size > max_nodes:
            raise YamlLimitError(
                f"the document expands to {size:,} values, more than the {max_nodes:,} allowed "
                "(aliases (*name) repeating large parts?)"
            )
        return loader.construct_document(node), node
    finally:
        loader.dispose()
