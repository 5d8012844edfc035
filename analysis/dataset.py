"""A sweep's results as the analysis sees them: the Parquet rows plus the stored configuration.

Reads ``results/sweep=<id>/`` (the Parquet partitions and ``sweep.json``, in a local folder or on
S3) and nothing else, so it works on any copy of the results with no broker.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from core.results import CONFIG_FILE, OUTCOME_FILE, ResultStore

PARAM, METRIC = "param.", "metric."
#: the rung of a fidelity ladder a row ran on (0 = cheapest); null on other sweeps' rows
RUNG = "fidelity"
# Derived columns the adapters add next to a metric; they are not metrics of their own.
_DERIVED_SUFFIXES = ("_ci_low", "_ci_high")
#: suffixes of a project's own uncertainty of a metric it reports beside it (``p_stderr`` beside
#: ``p``): error bars, never metrics. Only with the metric itself present, so ``abs_err`` alone
#: stays a metric.
UNCERTAINTY_SUFFIXES = ("_stderr", "_sem", "_se", "_std", "_sd", "_err")


def top_rungs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each project's top fidelity-ladder rung with a completed run (the top run when
    none completed yet), and the rows without a rung (projects off the ladder)."""
    if RUNG not in frame:
        return frame
    rung, projects = frame[RUNG], frame["project_name"]
    top = rung.where(frame["status"] == "completed").groupby(projects).transform("max")
    top = top.fillna(rung.groupby(projects).transform("max"))
    return frame[rung.isna() | (rung == top)]


@dataclass(frozen=True)
class SweepData:
    """The rows of one sweep and its effective configuration (``sweep.json``; empty if missing).

    Attributes:
        sweep_id: the execution id.
        frame: every stored row (all statuses), as :meth:`ResultStore.load` returns it.
        effective: the stored ``sweep.json``: ``sweep`` (the configuration), ``code_versions``,
            ``settings``.
        outcome: the stored ``outcome.json``: how the sweep ended (``state``, ``reason``...);
            empty while it runs, or for results copied without it.
    """

    sweep_id: str
    frame: pd.DataFrame
    effective: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return self.effective.get("sweep") or {}

    @cached_property
    def ladder(self) -> bool:
        """Whether rows carry a fidelity-ladder rung (a project of the sweep has ``fidelities``)."""
        return RUNG in self.frame and bool(self.frame[RUNG].notna().any())

    @cached_property
    def analysed(self) -> pd.DataFrame:
        """The rows the sections other than the ladder's analyse (every status): on a ladder,
        each project's top rung with results (a rung's bias must not blend into a point's mean,
        and the top is what the study is for); rows without a rung (projects off the ladder) too.
        Every rung's rows are compared in :mod:`analysis.fidelity`."""
        return top_rungs(self.frame) if self.ladder else self.frame

    @cached_property
    def completed_all(self) -> pd.DataFrame:
        """Completed runs on every rung of a ladder (the same as :attr:`completed` off a ladder)."""
        if self.frame.empty:
            return self.frame
        return self.frame[self.frame["status"] == "completed"]

    @cached_property
    def completed(self) -> pd.DataFrame:
        """The rows that count for statistics: completed runs (of :attr:`analysed`)."""
        if self.frame.empty:
            return self.frame
        return self.analysed[self.analysed["status"] == "completed"]

    @cached_property
    def parameters_present(self) -> list[str]:
        """Every ``param.*`` column but a ladder's ``fidelity`` (a promoted experiment's rung, in
        its parameters so that each rung's run is its own experiment): never a parameter."""
        return [
            c for c in self.frame.columns if c.startswith(PARAM) and not (self.ladder and c == PARAM + RUNG)
        ]

    @cached_property
    def parameters(self) -> list[str]:
        """Columns identifying a parameter point: the sweep's parameters (not per-project fixed
        values, which would keep projects from sharing points), else every ``param.*`` column."""
        present = self.parameters_present
        declared = [f"{PARAM}{name}" for name in self.config.get("parameters", {})]
        chosen = [c for c in declared if c in present]
        return chosen or present

    @cached_property
    def varied(self) -> list[str]:
        """The point columns that take more than one value among completed rows."""
        ok = self.completed
        return [c for c in self.parameters if c in ok and ok[c].nunique(dropna=True) > 1]

    @cached_property
    def _numeric_metrics(self) -> list[str]:
        ok = self.completed
        return [
            c
            for c in ok.columns
            if c.startswith(METRIC)
            and not c.endswith(_DERIVED_SUFFIXES)
            and pd.api.types.is_numeric_dtype(ok[c])
            and ok[c].notna().any()
        ]

    @cached_property
    def uncertainties(self) -> dict[str, str]:
        """Metric column -> the column of the standard error its project reports with it
        (``metric.p`` -> ``metric.p_stderr``; see :data:`UNCERTAINTY_SUFFIXES`)."""
        present = set(self._numeric_metrics)
        found: dict[str, str] = {}
        for column in self._numeric_metrics:
            for suffix in UNCERTAINTY_SUFFIXES:
                base = column.removesuffix(suffix)
                if base != column and base in present and base not in found:
                    found[base] = column
        return found

    @cached_property
    def inputs(self) -> set[str]:
        """Metric columns that echo an input back (``shots`` reported beside the ``shots``
        parameter, a project's ``fixed`` value or declared shot count): settings, not outcomes."""
        names = {c.removeprefix(PARAM) for c in self.parameters_present}
        for project in self.config.get("projects", []):
            names |= set(project.get("fixed") or {})
            names.add((project.get("standardize") or {}).get("shots") or "shots")
        objectives = {o["metric"] for o in self.config.get("objectives", [])}
        return {f"{METRIC}{n}" for n in names - objectives} & set(self._numeric_metrics)

    @cached_property
    def metrics(self) -> list[str]:
        """Numeric metric columns (``metric.*``) that are outcomes: without the adapters'
        interval bounds, the projects' reported uncertainties and the inputs echoed back."""
        uncertain = set(self.uncertainties.values())
        return [c for c in self._numeric_metrics if c not in uncertain and c not in self.inputs]

    @property
    def objectives(self) -> list[dict[str, Any]]:
        """``[{"metric": name, "goal": "maximize"|"minimize"}]`` for objectives present in the data."""
        names = set(self.metrics)
        return [o for o in self.config.get("objectives", []) if f"{METRIC}{o['metric']}" in names]

    @cached_property
    def standardized(self) -> dict[str, dict[str, Any]]:
        """Per project: the ``standardize`` declarations (``fidelity``, ``probabilities``, ``shots``)."""
        return {p["name"]: p.get("standardize") or {} for p in self.config.get("projects", [])}

    def probability_metrics(self, project: str) -> tuple[set[str], str]:
        """A project's shot-estimated probability metrics and the name of its shot count."""
        spec = self.standardized.get(project, {})
        return set(spec.get("probabilities") or []), spec.get("shots") or "shots"

    @property
    def validation_spec(self) -> dict[str, Any]:
        """The sweep file's ``validation:`` section (see :mod:`analysis.expectations`), if any."""
        return self.config.get("validation") or self.effective.get("validation") or {}


def load_sweep_data(results_dir: str | os.PathLike[str], sweep_id: str) -> SweepData:
    """Read a sweep's rows and stored configuration from a local folder or ``s3://bucket/prefix``.

    Raises:
        InputError: no results for ``sweep_id`` under ``results_dir``.
    """
    store = ResultStore(results_dir)
    store.require(sweep_id)
    effective = json.loads(store.read_text(sweep_id, CONFIG_FILE) or "{}")
    outcome = json.loads(store.read_text(sweep_id, OUTCOME_FILE) or "{}")
    return SweepData(sweep_id, store.load(sweep_id), effective, outcome)
