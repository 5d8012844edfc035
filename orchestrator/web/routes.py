"""The REST endpoints, ``/api/v1``: each is a thin layer over the CLI's own service layer.

Submit goes through :func:`~orchestrator.validation.validate` and
:meth:`~orchestrator.api.Orchestrator.submit`; pause, resume, cancel and status through
:class:`~orchestrator.scheduler.Scheduler`; results through
:class:`~core.results.ResultStore`. Nothing here touches Redis keys.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from adapters.source import source_only
from core.config import parse_yaml, validate_sweep
from core.errors import InputError
from core.results import PAGE_CACHED
from orchestrator import roots
from orchestrator.validation import validate
from orchestrator.web import reports
from orchestrator.web.auth import ApiRefusal, check_token
from orchestrator.web.limits import RateLimit, ThreadGate
from orchestrator.web.streams import MEDIA_TYPES, encode, follow_sweep

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator
    from orchestrator.web.app import ApiConfig

BODY_SOURCE = "<request body>"
#: result pages are built by one thread: more only fought for the GIL with the event loop
PAGES = ThreadGate(threads=1, queue=200, what="result pages")
EXPORTS = RateLimit(burst=10, per_second=0.2, what="export")
# what the optimizer's summary shows; its per-point priorities are many and only for the coordinator
OPTIMIZER_VIEW = (
    "phase",
    "confidence_level",
    "summary",
    "incumbent",
    "promising_regions",
    "refinement_points",
    "coverage",
    "created_at",
)


# The guards are coroutines: cheap checks, answered on the event loop rather than in the thread pool.
async def _guard_read(request: Request) -> None:
    """Reads go without the token only on a loopback-bound server."""
    if not request.app.state.config.open_reads:
        check_token(request)


async def _guard_write(request: Request) -> None:
    check_token(request)


router = APIRouter(dependencies=[Depends(_guard_read)])
probes = APIRouter()  # open everywhere: a load balancer or healthcheck has no token, and learns only "ok"
write = [Depends(_guard_write)]


def _orch(request: Request) -> Orchestrator:
    return request.app.state.orch


def _config(request: Request) -> ApiConfig:
    return request.app.state.config


def _known(orch: Orchestrator, sweep_id: str) -> None:
    if not orch.state.exists(sweep_id):
        raise ApiRefusal(
            404, f"no sweep '{sweep_id}' on this broker; GET /api/v1/sweeps lists them", code="not_found"
        )


# -- status --------------------------------------------------------------------------------------


SNAPSHOT_TTL_S = 0.25
_snapshots: dict[str, tuple[float, dict[str, Any]]] = {}


def shared_progress(orch: Orchestrator, sweep_id: str) -> dict[str, Any]:
    """:func:`progress_view`, computed at most every ``SNAPSHOT_TTL_S`` per sweep: a hundred SSE
    subscribers of one sweep then cost the server one snapshot, not a hundred."""
    return _fresh(_snapshots, sweep_id, lambda: progress_view(orch, sweep_id))


def _fresh(cache: dict[str, tuple[float, Any]], sweep_id: str, build: Callable[[], Any]) -> Any:
    """``cache[sweep_id]``, built again once it is older than ``SNAPSHOT_TTL_S``."""
    now = time.monotonic()
    cached = cache.get(sweep_id)
    if cached is None or now - cached[0] > SNAPSHOT_TTL_S:
        cached = cache[sweep_id] = (now, build())
    return cached[1]


_event_lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def shared_events(orch: Orchestrator, sweep_id: str, after: int) -> list[dict[str, Any]]:
    """The sweep's kept events with an id above ``after``, read (and decoded) at most every
    ``SNAPSHOT_TTL_S`` for all its subscribers: read per subscriber, a hundred of them kept the
    server busy decoding the same list and slowed every status request."""
    kept = _fresh(_event_lists, sweep_id, lambda: orch.state.events_after(sweep_id, 0))
    return [e for e in kept if e.get("id", 0) > after]


def progress_view(orch: Orchestrator, sweep_id: str) -> dict[str, Any]:
    """What the progress bar needs: state, counts, ETA, cost and budget (cheap: Redis only)."""
    status = orch.status(sweep_id)
    ledger = orch.state.budget_ledger().status(sweep_id)
    view = status.model_dump(mode="json", exclude={"results_path", "optimizer"})
    view["finished"], view["done"] = status.finished, status.done
    view["optimizer"] = {k: status.optimizer[k] for k in OPTIMIZER_VIEW if k in status.optimizer}
    view["budget"] = {
        "limit": ledger.limit if ledger.limit is not None else status.budget,
        "spent": ledger.spent,
        "reserved": ledger.reserved,
        "remaining": ledger.remaining,
        "alerts": [alert.message for alert in ledger.alerts],
    }
    return view


@router.get("/sweeps", summary="List sweeps with state, progress and cost")
def list_sweeps(request: Request) -> list[dict[str, Any]]:
    orch = _orch(request)
    out = []
    for sweep_id in orch.scheduler.list_executions():
        status = orch.status(sweep_id)
        out.append(
            {
                "execution_id": sweep_id,
                "name": status.name,
                "state": status.state,
                "finished": status.finished,
                "total": status.total if status.total is not None else status.planned,
                "max_experiments": status.max_experiments,
                "counts": status.counts,
                "cost": status.cost,
                "started_at": status.started_at,
            }
        )
    return sorted(out, key=lambda s: str(s["started_at"]), reverse=True)


_status_views: dict[str, tuple[float, dict[str, Any]]] = {}


def forget_views(sweep_id: str) -> None:
    _status_views.pop(sweep_id, None)
    _snapshots.pop(sweep_id, None)


@router.get("/sweeps/{sweep_id}", summary="A sweep's status, budget, failures and optimizer view")
async def sweep_status(sweep_id: str, request: Request) -> dict[str, Any]:
    """Built at most every ``SNAPSHOT_TTL_S`` for all pollers of the sweep, the rest answered from
    the event loop: under 50 clients paging results, a status built per request waited for a
    thread behind the pages (p99 over 300 ms)."""
    cached = _status_views.get(sweep_id)
    if cached is None or time.monotonic() - cached[0] > SNAPSHOT_TTL_S:
        view = await run_in_threadpool(status_view, _orch(request), _config(request), sweep_id)
        cached = _status_views[sweep_id] = (time.monotonic(), view)
    return cached[1]


def status_view(orch: Orchestrator, config: ApiConfig, sweep_id: str) -> dict[str, Any]:
    _known(orch, sweep_id)
    view = dict(shared_progress(orch, sweep_id))  # a copy: the snapshot is shared
    failures: dict[str, list[dict[str, Any]]] = {}
    for row in orch.store.failures(sweep_id) if view["counts"].get("failed") else []:
        failures.setdefault(row.get("error_class") or "unknown", []).append(row)
    view["failures"] = [
        {"error_class": cls, "count": len(rows), "examples": rows[:5]} for cls, rows in failures.items()
    ]
    sweep = json.loads(orch.state.config_json(sweep_id) or "{}")
    view["objectives"] = [{"metric": o["metric"], "goal": o["goal"]} for o in sweep.get("objectives", [])]
    view["parameters"] = sorted(sweep.get("parameters", {}))
    view["links"] = {
        "results": f"/api/v1/sweeps/{sweep_id}/results",
        "events": f"/api/v1/sweeps/{sweep_id}/events",
        "report": f"/api/v1/sweeps/{sweep_id}/report",
        "flower": config.flower_url,
    }
    return view


# -- submit and control ---------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (a missing length is no way round)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiRefusal(413, f"the body is larger than {limit} bytes (api_max_body)", code="too_large")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiRefusal(413, f"the body is larger than {limit} bytes (api_max_body)", code="too_large")
    return bytes(body)


def _parse_sweep(body: bytes, config: ApiConfig, settings: Any) -> Any:
    """Validate a sweep body as the CLI validates a sweep file; raise before anything is written."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text", source=BODY_SOURCE, fix="send UTF-8") from None
    root, data = parse_yaml(text, BODY_SOURCE)  # JSON is YAML: one parser, the same messages
    if not isinstance(data, dict):
        raise InputError(
            "a sweep file must be a mapping with 'name', 'projects' and 'parameters'", source=BODY_SOURCE
        )
    rules = config.rules
    roots.resolve_projects(data, rules, BODY_SOURCE)  # before any project file is read
    sweep = validate_sweep(data, source=BODY_SOURCE, root=root, base=config.project_roots[0])
    roots.check_code(sweep, rules, BODY_SOURCE)
    with source_only():  # nothing of the project runs in the server, dry run or not
        return validate(sweep, settings, source=BODY_SOURCE)


@router.post(
    "/sweeps",
    status_code=201,
    dependencies=write,
    summary="Submit a sweep (YAML or JSON body, the sweep-file format); ?dry_run=true plans only",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-yaml": {"schema": {"type": "string"}}, "application/json": {}},
        }
    },
)
async def submit(request: Request, dry_run: bool = False) -> Any:
    orch, config = _orch(request), _config(request)
    body = await _read_body(request, config.max_body)
    validated = await run_in_threadpool(_parse_sweep, body, config, orch.settings)
    if dry_run:
        sweep = validated.config
        space = sweep.space()
        return JSONResponse(
            {
                "execution_id": sweep.sweep_id,
                "name": sweep.name,
                "projects": [p.name for p in sweep.projects],
                "points": space.size,
                "repeats": sweep.repeats,
                "planned": space.size * sweep.repeats * len(sweep.projects),
                "estimate": {
                    "total": validated.estimate.total,
                    "currency": validated.estimate.currency,
                    "devices": validated.estimate.rows(),
                    "notes": validated.estimate.notes,  # with a cheaper simulator's suggestion
                    "device_choices": validated.estimate.choices,  # device: auto, per shape
                    "alternatives": [a.to_dict() for a in validated.estimate.alternatives],
                    "rungs": [r.to_dict() for r in validated.estimate.rungs],  # a ladder's bound
                },
            },
            status_code=200,
        )
    execution = await run_in_threadpool(orch.submit, validated)
    return execution.model_dump(mode="json", exclude={"results_path"})


def _control(action: str, summary: str) -> None:
    def endpoint(sweep_id: str, request: Request) -> dict[str, Any]:
        orch = _orch(request)
        _known(orch, sweep_id)
        changed = getattr(orch, action)(sweep_id)
        forget_views(sweep_id)  # the next status shows the change, not a snapshot from before it
        return {
            "execution_id": sweep_id,
            "action": action,
            "changed": changed,
            "state": orch.status(sweep_id).state,
        }

    endpoint.__name__ = action
    router.post(f"/sweeps/{{sweep_id}}/{action}", dependencies=write, summary=summary)(endpoint)


_control("pause", "Stop publishing new experiments (running ones finish)")
_control("resume", "Resume a paused sweep")
_control("cancel", "Cancel: pending experiments are dropped, results kept")


# -- results, events, report ----------------------------------------------------------------------


@router.get(
    "/sweeps/{sweep_id}/results",
    summary="The sweep's rows, streamed (json, csv or parquet)",
    response_class=StreamingResponse,
)
async def results(
    sweep_id: str,
    request: Request,
    format: Literal["json", "csv", "parquet"] = "json",
    status: str | None = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Pages are built by a few threads (:data:`PAGES`); a whole export, streamed, counts against
    the client's export rate."""
    page = limit is not None and limit <= PAGE_CACHED
    if not page:
        EXPORTS.take(request.client.host if request.client else "?")
    return await PAGES.run(_rows, _orch(request), sweep_id, format, status, offset, limit, page)


def _rows(
    orch: Orchestrator,
    sweep_id: str,
    fmt: str,
    status: str | None,
    offset: int,
    limit: int | None,
    page: bool,
) -> Response:
    if not orch.store.files(sweep_id):
        _known(orch, sweep_id)
    schema = orch.store.schema(sweep_id)
    batches = orch.store.stream(sweep_id, status=status, offset=offset, limit=limit)
    headers = {"Content-Disposition": f'attachment; filename="{sweep_id}.{fmt}"'}
    if page:
        # A page is small: built here in one go, it costs one trip through the thread pool
        # instead of one per chunk (under 50 paging clients, a page's latency was those trips).
        return Response(b"".join(encode(batches, schema, fmt)), media_type=MEDIA_TYPES[fmt], headers=headers)
    return StreamingResponse(encode(batches, schema, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/sweeps/{sweep_id}/events",
    summary="Server-Sent Events: info, alert, progress, refit, finished; resumable with Last-Event-ID",
    response_class=StreamingResponse,
)
def events(
    sweep_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    orch = _orch(request)
    _known(orch, sweep_id)
    # ASCII digits only: str.isdigit() takes '²', which int() refuses (a 500 before)
    after = int(last_event_id) if last_event_id and re.fullmatch(r"[0-9]{1,18}", last_event_id.strip()) else 0
    stream = follow_sweep(
        after,
        lambda n: shared_events(orch, sweep_id, n),
        lambda: shared_progress(orch, sweep_id),
        request.is_disconnected,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/sweeps/{sweep_id}/report", summary="The sweep's HTML report", response_class=HTMLResponse)
async def report(sweep_id: str, request: Request) -> HTMLResponse:
    orch = _orch(request)
    if await run_in_threadpool(orch.store.results_stamp, sweep_id) is None:
        await run_in_threadpool(_known, orch, sweep_id)  # an unknown sweep, not one without rows yet
    client = request.client.host if request.client else "?"
    return HTMLResponse(await reports.report_html(orch.store, sweep_id, client))


# -- deployment -------------------------------------------------------------------------------------


@router.get("/workers", summary="Live workers: machine, queues, concurrency, cached code, heartbeat age")
def workers(request: Request) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "hostname": host,
            "host": info.get("host", ""),
            "code": info.get("code", []),
            "queues": info["queues"],
            "concurrency": info["concurrency"],
            "last_heartbeat": info["seen"],
            "heartbeat_age_s": round(now - info["seen"], 1),
        }
        for host, info in sorted(_orch(request).state.registry.live().items())
    ]


_broker_seen: dict[str, Any] = {"ok": None, "task": None}


async def _watch_broker(ping: Callable[[], bool]) -> None:
    """Keep ``_broker_seen`` current: the health probe answers from the event loop, without
    waiting for a thread behind 50 result pages, and Redis is pinged once a second at most."""
    while True:
        try:
            _broker_seen["ok"] = await anyio.to_thread.run_sync(ping, limiter=_PROBE_THREAD)
        except Exception:  # noqa: BLE001 - whatever the reason, the broker does not answer
            _broker_seen["ok"] = False
        await anyio.sleep(1.0)


_PROBE_THREAD = anyio.CapacityLimiter(1)


@probes.get("/health", summary="Liveness, and whether the broker answers (no token needed)")
async def health(request: Request) -> dict[str, Any]:
    if _broker_seen["task"] is None:
        _broker_seen["task"] = asyncio.get_running_loop().create_task(
            _watch_broker(_orch(request).state.ping)
        )
    if _broker_seen["ok"] is None:  # the first probe: wait for the first answer
        _broker_seen["ok"] = await anyio.to_thread.run_sync(_orch(request).state.ping, limiter=_PROBE_THREAD)
    return {"status": "ok", "broker": _broker_seen["ok"]}
