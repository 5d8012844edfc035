"""The endpoints behind the dashboard's views, beyond the CLI's own (``routes``): the trial
table (:mod:`~orchestrator.web.trials`), the best trials, importance and curves, sweeps side by
side (:mod:`~orchestrator.web.insights`) and the live posterior (:mod:`~orchestrator.web.posterior`).
Reads only: open where reads are open, like ``routes``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from orchestrator.web.insights import compare, insights
from orchestrator.web.posterior import posterior_view
from orchestrator.web.routes import _guard_read, _known, _orch
from orchestrator.web.trials import sweep_table, trials_page

MAX_PAGE = 1000
dashboard = APIRouter(dependencies=[Depends(_guard_read)])


@dashboard.get("/sweeps/{sweep_id}/trials", summary="A page of the sweep's trials, sorted and filtered")
def trials(
    sweep_id: str,
    request: Request,
    sort: Annotated[str | None, Query(description="a column, or a parameter or metric name")] = None,
    order: Literal["asc", "desc"] = "asc",
    filter: Annotated[
        str | None, Query(description="conditions joined by ';', e.g. `x > 0.5; status = completed`")
    ] = None,
    status: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """One page; ``total`` counts the rows that match, ``count`` all of the sweep's rows."""
    orch = _orch(request)
    if not orch.store.files(sweep_id):
        _known(orch, sweep_id)
    return trials_page(
        sweep_table(orch, sweep_id),
        sort=sort,
        order=order,
        filter_text=filter,
        status=status,
        offset=offset,
        limit=limit,
    )


@dashboard.get(
    "/sweeps/{sweep_id}/insights",
    summary="The best trial per objective, parameter importance and intermediate-value curves",
)
def sweep_insights(sweep_id: str, request: Request, metric: str | None = None) -> dict[str, Any]:
    orch = _orch(request)
    _known(orch, sweep_id)
    return insights(orch, sweep_id, metric)


@dashboard.get(
    "/sweeps/{sweep_id}/posterior",
    summary="The optimizer's belief over two parameters: GP mean and uncertainty, results, next picks",
)
async def sweep_posterior(
    sweep_id: str,
    request: Request,
    x: str | None = None,
    y: str | None = None,
    size: Annotated[int, Query(ge=2, le=60)] = 30,
) -> dict[str, Any]:
    orch = _orch(request)
    _known(orch, sweep_id)
    return await run_in_threadpool(posterior_view, orch, sweep_id, x, y, size)


@dashboard.get("/compare", summary="Sweeps side by side: state, runs against their budget, cost, best")
def compare_sweeps(request: Request, ids: Annotated[list[str], Query()]) -> list[dict[str, Any]]:
    orch = _orch(request)
    for sweep_id in ids:
        _known(orch, sweep_id)
    return compare(orch, ids[:12])
