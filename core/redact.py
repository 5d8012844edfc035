"""Server paths out of what results say: error messages and log tails are read over HTTP.

A traceback names every file it passed through: the worker's site-packages, its interpreter's
standard library, the folder a worker unpacked the project into, a state folder. Each becomes
relative to what a reader knows: the project (``model.py:12``), the package
(``braket/default_simulator/simulator.py:345``), the standard library (``json/decoder.py``).
Any other absolute path keeps only its last part (``.../reply.json``).
"""

from __future__ import annotations

import re
from pathlib import Path

# An absolute path not inside a URL or a longer word: '/' not preceded by a word character,
# ':', '/' or '.'. It ends at whitespace, a quote, a bracket or a ':' (so 'x.py:345' keeps the line).
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/[^\s\"'<>:,;()\[\]{}|]+")
_PACKAGES = re.compile(r"^.*/(?:site|dist)-packages/")
_STDLIB = re.compile(r"^.*/lib/(?:python|pypy)\d+(?:\.\d+)?/")


def server_paths(text: str | None, project: str | Path | None = None) -> str | None:
    """``text`` with each absolute path made relative (see the module); ``None`` stays ``None``.

    Args:
        project: the project folder, whose files are named relative to it.
    """
    if not text or "/" not in text:
        return text
    roots = []
    if project is not None:
        roots = sorted(
            {str(project).rstrip("/"), str(Path(project).resolve()).rstrip("/")}, key=len, reverse=True
        )

    def relative(match: re.Match[str]) -> str:
        path = match.group(0)
        for root in roots:
            if path == root:
                return "."
            if path.startswith(root + "/"):
                return path[len(root) + 1 :]
        for pattern in (_PACKAGES, _STDLIB):
            inside = pattern.sub("", path, count=1)
            if inside != path:
                return inside
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return f".../{name}" if name else path

    return _ABSOLUTE.sub(relative, text)
