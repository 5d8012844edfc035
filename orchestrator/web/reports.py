"""A sweep's HTML report over HTTP: built once per change of its results, never in the server's
own interpreter.

A report of a 19k-row sweep takes seconds of pandas and matplotlib; built per request in the
server's threads, 16 readers held the GIL long enough for ``/health`` to take 44 s. Here:

* the report the coordinator wrote (``report.html``) is served while it is current;
* otherwise one is built in a child process at a lower priority, kept in memory keyed by
  :meth:`~core.results.ResultStore.results_stamp`, and shared by every request that asked for
  it meanwhile (:class:`~orchestrator.web.limits.BuildPool`: a few builds at once, a short
  queue, then 503 with ``Retry-After``);
* each client may ask ``RATE`` times at once, then about once a second (429 past it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Hashable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from core.results import REPORT_FILE
from orchestrator.web.auth import ApiRefusal
from orchestrator.web.limits import BuildPool, RateLimit

if TYPE_CHECKING:
    from core.results import ResultStore

log = logging.getLogger(__name__)
RATE = RateLimit(burst=60, per_second=1.0, what="report")
POOL = BuildPool(workers=max(1, (os.cpu_count() or 2) // 2), queue=4)
KEPT = 16  # reports kept in memory, most recent first out last
_BUILD = (
    "import os, sys\n"
    "os.nice(10)\n"
    "from analysis.publish import analyze_sweep, render\n"
    "sys.stdout.write(render(analyze_sweep(sys.argv[1], sys.argv[2]), 'html'))\n"
)
_cache: dict[str, tuple[Hashable, str]] = {}


async def report_html(store: ResultStore, sweep_id: str, client: str) -> str:
    """The sweep's report, from the cache, the stored file or a build (see the module).

    Raises:
        ApiRefusal: 404 while the sweep has no rows, 429 / 503 when the limits are reached.
    """
    RATE.take(client)
    stamp = await run_in_threadpool(store.results_stamp, sweep_id)
    if stamp is None:
        raise ApiRefusal(
            404,
            f"sweep '{sweep_id}' has no results to report on yet",
            code="no_report",
            fix="try again once some experiments have finished: the report covers the rows written so far",
        )
    cached = _cache.get(sweep_id)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    html = await POOL.run((sweep_id, stamp), lambda: _build(store, sweep_id))
    _cache.pop(sweep_id, None)
    _cache[sweep_id] = (stamp, html)
    while len(_cache) > KEPT:
        del _cache[next(iter(_cache))]
    return html


async def _build(store: ResultStore, sweep_id: str) -> str:
    if await run_in_threadpool(store.report_current, sweep_id):
        stored = await run_in_threadpool(store.read_text, sweep_id, REPORT_FILE)
        if stored is not None:
            return stored
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BUILD,
        str(store.root),
        sweep_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        log.error("report of sweep %s failed: %s", sweep_id, err.decode(errors="replace")[-3000:])
        raise RuntimeError(f"the report of sweep {sweep_id} could not be built")
    return out.decode()
