"""YAML (and so JSON) read with bounds checked before any Python object is built.

``yaml.safe_load`` builds what an alias points at once, but everything downstream (the
repeated-key walk, pydantic, error messages) sees each alias expanded: a 500-byte "billion
laughs" document became a gigabyte and a 900 KB error body. Here the node tree is composed
(aliases stay shared, so composing costs the size of the text), measured as if every alias were
expanded, and refused past ``MAX_NODES`` nodes or ``MAX_DEPTH`` levels; only then are objects
built. The sweep-file loader of the CLI and the API's request bodies both come through here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from core.errors import InputError

#: nodes a document may have with every alias expanded (a 10,000-value list is 10,001)
MAX_NODES = 200_000
#: nesting levels a document may have (a sweep file needs about 6)
MAX_DEPTH = 64
_FIX = "write the values out without anchors and aliases (&name / *name), and nest less deeply"


def load(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of YAML ``text``, within the bounds.

    Raises:
        InputError: malformed YAML, or a document past ``MAX_NODES`` / ``MAX_DEPTH``.
    """
    if _bracket_depth(text) > MAX_DEPTH:
        raise _too_deep(source)
    loader = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters already here
        loader.source = source
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _malformed(exc, source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return None, None
    _measure(root, 1, {}, source)
    try:
        return root, yaml.SafeLoader("").construct_document(root)
    except yaml.YAMLError as exc:  # e.g. a tag SafeLoader does not build (!!python/object)
        raise _malformed(exc, source) from None


class _BoundedLoader(yaml.SafeLoader):
    """Stops composing at ``MAX_DEPTH`` (the composer recurses once per level)."""

    depth = 0
    source = "<yaml>"

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _too_deep(self.source, None, self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` (brackets inside strings counted too: an upper
    bound). Checked first because PyYAML's scanner is quadratic in the depth of flow
    collections: 50,000 ``[`` took seconds before the composer saw one node."""
    codes = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _measure(node: yaml.Node, depth: int, seen: dict[int, tuple[int, int]], source: str) -> tuple[int, int]:
    """(nodes, height) of ``node`` with aliases expanded, each shared node measured once.

    A cycle (``&a [*a]``) never finishes measuring its own node, so it ends as too deep.
    """
    if depth > MAX_DEPTH:
        raise _too_deep(source, node)
    known = seen.get(id(node))
    if known is None:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        count, height = 1, 1
        for child in children:
            nodes, below = _measure(child, depth + 1, seen, source)
            count, height = count + nodes, max(height, below + 1)
            if count > MAX_NODES:
                raise InputError(
                    f"the document expands to more than {MAX_NODES} values",
                    source=source,
                    line=node.start_mark.line + 1,
                    fix=_FIX,
                )
        known = seen[id(node)] = (count, height)
    if depth - 1 + known[1] > MAX_DEPTH:
        raise _too_deep(source, node)
    return known


def _malformed(exc: yaml.YAMLError, source: str) -> InputError:
    mark = getattr(exc, "problem_mark", None)
    return InputError(
        f"malformed YAML: {getattr(exc, 'problem', exc)}",
        source=source,
        line=mark.line + 1 if mark else None,
        fix="fix the syntax",
    )


def _too_deep(source: str, node: yaml.Node | None = None, line: int | None = None) -> InputError:
    return InputError(
        f"the document nests deeper than {MAX_DEPTH} levels",
        source=source,
        line=node.start_mark.line + 1 if node is not None else line,
        fix=_FIX,
    )
