"""Capture what a project prints and logs during one run, keeping a bounded tail."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator

#: characters of captured output kept with a result
LOG_LIMIT = 4096


class TailBuffer(io.TextIOBase):
    """A text stream that keeps only the last ``limit`` characters written to it."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self.limit:  # trim rarely, so many small writes stay cheap
                joined = "".join(self._parts)
                self.dropped += len(joined) - self.limit
                self._parts, self._size = [joined[-self.limit :]], self.limit
        return len(text)

    def section(self, title: str, text: str) -> None:
        """Append ``text`` under a ``--- title ---`` header, if there is any."""
        if text.strip():
            self.write(f"--- {title} ---\n{text if text.endswith(chr(10)) else text + chr(10)}")

    def getvalue(self) -> str:
        text = "".join(self._parts)[-self.limit :]
        dropped = self.dropped + max(0, self._size - self.limit)
        return f"[... {dropped} earlier characters dropped]\n{text}" if dropped else text


class _Handler(logging.Handler):
    def __init__(self, sink: TailBuffer | None) -> None:
        super().__init__(logging.NOTSET)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.sink.write(self.format(record) + "\n")


@contextlib.contextmanager
def capture_inline(sink: TailBuffer) -> Iterator[TailBuffer]:
    """Send ``sys.stdout``, ``sys.stderr`` and log records to ``sink`` for the duration.

    The project's logging configuration is left alone: one extra handler on the root logger
    sees what the project's own levels let through, and is removed afterwards. Output written
    straight to file descriptor 1 or 2 (C extensions) is not seen; run such a project with
    ``isolation: subprocess``.
    """
    handler = _Handler(sink)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            sys.stdout.flush()


class Captures:
    """:func:`capture_inline` for several runs in a row (a batch's): one log handler, its sink
    switched per run with :meth:`to`. Adding and removing a handler per run cost as much as the
    rest of a short run's capture."""

    def __init__(self) -> None:
        self._handler = _Handler(None)

    def __enter__(self) -> Captures:
        logging.getLogger().addHandler(self._handler)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self._handler)

    @contextlib.contextmanager
    def to(self, sink: TailBuffer) -> Iterator[TailBuffer]:
        """Capture one run into ``sink``, as :func:`capture_inline` does."""
        self._handler.sink = sink
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield sink
        finally:
            self._handler.sink = None
            with contextlib.suppress(Exception):
                sys.stdout.flush()
