"""One exception root for the whole system, with the seed's error classes as children.

The error class decides what happens to a failed experiment:

* ``TransientError``      retried with exponential backoff and jitter;
* ``ConfigurationError``  fails fast, with a message that says how to fix it;
* ``ResourceError``       pauses the sweep and raises an alert (budget, quota);
* ``ScientificError``     recorded on the result, and the sweep goes on.

``InputError`` is bad user input caught before anything is written (exit code 2).
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Root of every error this package raises on purpose."""

    #: short name stored in the ``error_class`` column of a result row
    kind = "error"


class InputError(OrchestratorError):
    """Bad user input (sweep file, settings, CLI flags). Exit code 2, nothing written.

    Args:
        message: what is wrong (and how to fix it, when ``fix`` is not given apart).
        source: the file (or other origin) the input came from.
        field: dotted path of the offending field, when there is one (``projects[0].entry``).
        line: 1-based line in ``source``, when known.
        fix: how to fix it, when kept apart from ``message`` (shown after it).
    """

    kind = "input"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        field: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message, self.source, self.field, self.line, self.fix = message, source, field, line, fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [
            p
            for p in (
                self.source,
                f"line {self.line}" if self.line else "",
                f"field '{self.field}'" if self.field else "",
            )
            if p
        ]
        prefix = ", ".join(parts)
        text = f"{self.message}; {self.fix}" if self.fix else self.message
        return f"{prefix}: {text}" if prefix else text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, e.g. the body of an HTTP 422 answer."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "source": self.source,
            "field": self.field,
            "line": self.line,
            "fix": self.fix,
        }


class BrokerUnavailable(InputError):
    """The configured broker URL cannot be reached."""


class ExperimentError(OrchestratorError):
    """An experiment failed; subclasses say what the orchestrator should do about it."""

    kind = "experiment"


class TransientError(ExperimentError):
    """Network blips, throttling, a service briefly unavailable: retry with backoff."""

    kind = "transient"


class ConfigurationError(ExperimentError):
    """A project or parameter set that cannot work as configured: fail fast."""

    kind = "configuration"


class ResourceError(ExperimentError):
    """Budget exhausted, quota reached, device unusable: pause the sweep and alert."""

    kind = "resource"


class ScientificError(ExperimentError):
    """The experiment ran but its science failed (no convergence, NaN): record and continue."""

    kind = "scientific"


def classify(exc: BaseException) -> str:
    """Return the error class name stored with a failed result."""
    if isinstance(exc, OrchestratorError):
        return exc.kind
    if isinstance(exc, MemoryError):
        return ResourceError.kind
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError.kind
    if isinstance(exc, (ImportError, AttributeError, TypeError, FileNotFoundError)):
        return ConfigurationError.kind
    if isinstance(exc, (ArithmeticError, ValueError)):
        return ScientificError.kind
    return ScientificError.kind
