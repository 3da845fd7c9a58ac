"""YAML that refuses a key given twice in one mapping (pure).

PyYAML keeps the last value of a duplicated key without a word, so a spec with
``plan: small`` and later ``plan: large`` would silently run large. ``load`` raises
``DuplicateKeyError`` naming the key, its path and both lines instead.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping lists one key twice; ``path`` is its dotted field path."""

    def __init__(self, path: str, line: int, first_line: int) -> None:
        self.path, self.line, self.first_line = path, line, first_line
        super().__init__(f"key given twice (line {line}, first at line {first_line})")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse duplicate keys (merge keys ``<<`` still work)."""

    root: yaml.Node | None = None

    def construct_document(self, node: yaml.Node) -> Any:
        self.root = node
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it itself
            if first is not None:
                parts = [*(_find(self.root, node) or []), str(key)] if self.root else [str(key)]
                raise DuplicateKeyError("".join(_join(parts)), line, first)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _join(parts: list[str]) -> list[str]:
    return [p if i == 0 or p.startswith("[") else f".{p}" for i, p in enumerate(parts)]


def _find(current: yaml.Node, target: yaml.Node) -> list[str] | None:
    """Path from ``current`` down to ``target``, or None when it is not below."""
    if current is target:
        return []
    children: list[tuple[str, yaml.Node]] = []
    if isinstance(current, yaml.MappingNode):
        children = [(str(k.value), v) for k, v in current.value]
    elif isinstance(current, yaml.SequenceNode):
        children = [(f"[{i}]", v) for i, v in enumerate(current.value)]
    for name, child in children:
        found = _find(child, target)
        if found is not None:
            return [name, *found]
    return None


def load(text: str) -> Any:
    """Parse one YAML document; DuplicateKeyError for a key given twice in a mapping."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
