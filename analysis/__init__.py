"""The analysis layer: from a sweep's results to conclusions.

Reads a sweep's Parquet dataset and stored configuration (``results/sweep=<id>/``) and never
touches Redis, Celery or the workers, so it works on any copy of the results. Pure functions over
DataFrames, plus one result object, :class:`SweepAnalysis`, with a documented JSON form.

>>> from analysis import analyze_sweep
>>> result = analyze_sweep("results", "quickstart-1a2b3c4d5e")
>>> result.to_json()  # or analysis.render(result, "html")
"""

from __future__ import annotations

from analysis.aggregate import aggregate, bootstrap_interval, t_interval, wilson
from analysis.compare import compare_projects, cross_project
from analysis.convergence import best_so_far, convergence, expected_best_random
from analysis.dataset import SweepData, load_sweep_data
from analysis.expectations import check_results, check_spec, row_verdicts
from analysis.pareto import hypervolume, pareto_analysis, pareto_mask
from analysis.publish import analyze_sweep, on_sweep_completed, render, stored_analysis
from analysis.report import JSON_SCHEMA, SweepAnalysis, analyze
from analysis.sensitivity import grid_sensitivity, sensitivity_analysis, surrogate_sensitivity
from analysis.significance import benjamini_hochberg, compare_configurations, paired, two_sample
from analysis.statistics import best_points, summarize

__all__ = [
    "JSON_SCHEMA",
    "SweepAnalysis",
    "SweepData",
    "aggregate",
    "analyze",
    "analyze_sweep",
    "benjamini_hochberg",
    "best_points",
    "best_so_far",
    "bootstrap_interval",
    "check_results",
    "check_spec",
    "compare_configurations",
    "compare_projects",
    "convergence",
    "cross_project",
    "expected_best_random",
    "grid_sensitivity",
    "hypervolume",
    "load_sweep_data",
    "on_sweep_completed",
    "paired",
    "pareto_analysis",
    "pareto_mask",
    "render",
    "row_verdicts",
    "sensitivity_analysis",
    "stored_analysis",
    "summarize",
    "surrogate_sensitivity",
    "t_interval",
    "two_sample",
    "wilson",
]
