"""Reads cannot stall the server (issue 24, item 2): with 32 concurrent report requests and 50
result pages in flight on a 20,000-row sweep, ``/health`` answers within 200 ms at p99.

The load comes from a child process, so that the clients' own threads do not slow the
measuring one; the report is built once (a child process of the server's), and every answer
is a report or a refusal in the error shape (429 / 503 with ``Retry-After``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from core.models import ExperimentResult, ExperimentStatus
from core.rows import result_row
from tests.web.conftest import Server

ROWS, FILES = 20_000, 10
LOAD = """
import json, sys, threading, requests
url, seconds = sys.argv[1], float(sys.argv[2])
import time
end = time.monotonic() + seconds
codes = {}
def report():
    while time.monotonic() < end:
        res = requests.get(f"{url}/api/v1/sweeps/big/report", timeout=120)
        codes[res.status_code] = codes.get(res.status_code, 0) + 1
        if res.status_code != 200:  # a well-behaved client waits as it is told
            assert set(res.json()["error"]) >= {"code", "fix"} and "Retry-After" in res.headers
            time.sleep(float(res.headers["Retry-After"]))
def page(i):
    while time.monotonic() < end:
        requests.get(f"{url}/api/v1/sweeps/big/results?limit=500&offset={i * 300}", timeout=120).raise_for_status()
threads = [threading.Thread(target=report) for _ in range(32)]
threads += [threading.Thread(target=page, args=(i,)) for i in range(50)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(codes))
"""


def write_results(results: Path, sweep_id: str = "big") -> None:
    """``ROWS`` rows as the result writer leaves them: two parameters, one metric, 10% failed."""
    folder = results / f"sweep={sweep_id}" / "project=p"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = ROWS // FILES
    for f in range(FILES):
        rows = []
        for k in range(f * per, (f + 1) * per):
            x, z, failed = (k % 101) / 100, (k // 101 % 50) / 50, k % 10 == 0
            result = ExperimentResult(
                experiment_id=f"e{k:08d}",
                project_name="p",
                sweep_id=sweep_id,
                index=k,
                parameters={"x": x, "z": z},
                metrics={} if failed else {"y": float(np.sin(6 * x) + z * z + rng.normal(0, 0.1))},
                status=ExperimentStatus.FAILED if failed else ExperimentStatus.COMPLETED,
                error_class="scientific" if failed else None,
                error_message="diverged" if failed else None,
            )
            rows.append(result_row(result))
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{f:04d}.parquet")


def test_health_stays_fast_under_report_and_page_load(start_server, redis_url, workdir) -> None:
    write_results(workdir / "results")
    server: Server = start_server(
        "--broker", redis_url, "--results-dir", str(workdir / "results"), "--no-coordinate"
    )
    load = subprocess.Popen([sys.executable, "-c", LOAD, server.url, "25"], stdout=subprocess.PIPE, text=True)
    time.sleep(2)  # the load is on
    latencies = []
    while load.poll() is None and len(latencies) < 400:
        started = time.perf_counter()
        assert requests.get(f"{server.url}/api/v1/health", timeout=30).ok
        latencies.append(time.perf_counter() - started)
        time.sleep(0.03)
    out, _ = load.communicate(timeout=180)
    assert load.returncode == 0, out
    codes = json.loads(out)
    p99 = float(np.percentile(latencies, 99))
    print(f"health p99 {p99 * 1000:.0f} ms over {len(latencies)} probes; report answers {codes}")
    assert len(latencies) >= 100 and p99 < 0.2, (p99, codes)
    assert codes.get("200", 0) >= 32, codes  # every reader got the report at least once
