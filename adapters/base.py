"""The adapter interface (the seed's ``ProjectAdapter``) and what every adapter returns."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from adapters.spec import ProjectSpec
from orchestrator.errors import ConfigurationError, ScientificError, classify
from orchestrator.models import ExperimentResult, ExperimentStatus

StandardizedMetrics = dict[str, float]


@dataclass
class CompatibilityReport:
    project: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (check, ok, detail)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def add(self, check: str, ok: bool, detail: str = "") -> None:
        self.checks.append((check, ok, detail))


class ProjectAdapter(ABC):
    """Runs one existing project with a set of parameters, without changing its code."""

    def __init__(self, spec: ProjectSpec, root: Path) -> None:
        self.spec = spec
        self.root = root

    @abstractmethod
    def run(self, params: dict[str, Any]) -> Any:
        """Run the project once and return its raw output."""

    def extract_metrics(self, raw: Any) -> StandardizedMetrics:
        """Flatten the raw output into named floats, renamed through ``spec.metrics``."""
        flat = _flatten(raw)
        if self.spec.metrics:
            out = {}
            for name, path in self.spec.metrics.items():
                if path not in flat:
                    raise ConfigurationError(
                        f"project '{self.spec.name}': metric '{name}' reads '{path}', which the output "
                        f"does not have (it has: {', '.join(sorted(flat)) or 'nothing'}); fix 'metrics'")
                out[name] = flat[path]
            flat = out
        for name, value in flat.items():
            if not math.isfinite(value):
                raise ScientificError(f"project '{self.spec.name}': metric '{name}' is {value}")
        return flat

    def execute_with_parameters(self, params: dict[str, Any]) -> ExperimentResult:
        """Run and wrap the outcome in an ``ExperimentResult`` (failed runs included)."""
        merged = {**self.spec.fixed, **params}
        started = time.perf_counter()
        try:
            metrics = self.extract_metrics(self.run(merged))
            status, error, error_class = ExperimentStatus.COMPLETED, None, None
        except Exception as exc:  # noqa: BLE001 - classified and recorded, never swallowed silently
            metrics, status, error, error_class = {}, ExperimentStatus.FAILED, str(exc), classify(exc)
        return ExperimentResult(experiment_id="", project_name=self.spec.name, parameters=params,
                                metrics=metrics, execution_time=time.perf_counter() - started,
                                status=status, error_message=error, error_class=error_class)

    def validate_compatibility(self) -> CompatibilityReport:
        report = CompatibilityReport(self.spec.name)
        report.add("path exists", self.root.exists(), str(self.root))
        return report


def _flatten(raw: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(raw, bool):
        return {prefix or "value": float(raw)}
    if isinstance(raw, (int, float)):
        return {prefix or "value": float(raw)}
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    elif is_dataclass(raw) and not isinstance(raw, type):
        raw = asdict(raw)
    elif hasattr(raw, "_asdict"):
        raw = raw._asdict()
    elif not isinstance(raw, Mapping) and hasattr(raw, "__dict__"):
        raw = {k: v for k, v in vars(raw).items() if not k.startswith("_")}
    out: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (Mapping, int, float)) or hasattr(value, "__dict__"):
                out.update(_flatten(value, name))
    return out
