"""Reading results: statistics over repeats, best points, cross-project comparison.

Works on the DataFrame of :func:`orchestrator.load_results`; knows nothing of Celery or workers.
"""

from __future__ import annotations

from analysis.compare import compare_projects
from analysis.statistics import best_points, summarize

__all__ = ["best_points", "compare_projects", "summarize"]
