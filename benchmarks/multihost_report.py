"""The report of ``multihost.py``: one table per question, then the JSON line (see its docstring)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multihost import Run

ROLES = ["driver", "coordinator", "workers", "redis"]


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB"


def report(
    runs: list[Run], hosts: list[str], args: argparse.Namespace, archive_bytes: int, digests: list[str]
) -> None:
    print(
        f"{len(hosts)} hosts x {args.concurrency} process, project of {args.data_mb:g} MB of data "
        f"(archive {_mb(archive_bytes)}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    cold_s, warm_s = first_result(runs, args, digests)
    fetches_per_host = fetched(runs, hosts)
    s3_ratio = throughput(runs, args)
    util_ratio = utilization(runs, args, len(hosts) * args.concurrency)
    print(
        json.dumps(
            {
                "cold_first_result_s": round(cold_s, 3),
                "warm_first_result_s": round(warm_s, 3),
                "fetches_per_host": round(fetches_per_host, 3),
                "s3_vs_local_throughput": round(s3_ratio, 3),
                "shipped_vs_shared_utilization": round(util_ratio, 3),
            }
        )
    )


def first_result(runs: list[Run], args: argparse.Namespace, digests: list[str]) -> tuple[float, float]:
    """The cold and warm sweeps of each round; the medians of their first results."""
    by_name = {run.name: run for run in runs}
    print(f"\nseconds from submit to the first result ({args.n_first} x {args.ms:g} ms per sweep)")
    print(
        f"{'round':<8}{'hash':<15}{'cold':>8}{'warm':>8}{'cold-warm':>11}{'submit':>9}   target: cold-warm < 2 s"
    )
    colds, warms = [], []
    for r, digest in enumerate(digests, 1):
        cold, warm = by_name[f"cold-{r}"], by_name[f"warm-{r}"]
        colds.append(cold.first_s)
        warms.append(warm.first_s)
        print(
            f"{r:<8}{digest[:12]:<15}{cold.first_s:>8.3f}{warm.first_s:>8.3f}"
            f"{cold.first_s - warm.first_s:>11.3f}{cold.submit_s:>9.3f}"
        )
    cold_s, warm_s = statistics.median(colds), statistics.median(warms)
    print(f"{'median':<23}{cold_s:>8.3f}{warm_s:>8.3f}{cold_s - warm_s:>11.3f}")
    return cold_s, warm_s


def fetched(runs: list[Run], hosts: list[str]) -> float:
    """The bytes each host read from the store per sweep; fetches per host per shipped hash."""
    print("\nbytes read from the store per host and sweep (code fetches; expected: one per host per hash)")
    print(f"{'sweep':<20}{'code':<15}" + "".join(f"{h:>16}" for h in hosts))
    per_hash: dict[tuple[str, str], int] = {}
    for run in runs:
        cells = []
        for host in hosts:
            got = run.fetched[host]
            for digest, _ in got:
                per_hash[host, digest] = per_hash.get((host, digest), 0) + 1
            cells.append(f"{_mb(sum(b for _, b in got))} ({len(got)})" if got else "0")
        label = run.code_version.removeprefix("sha256:")[:12] if run.code == "shipped" else run.code
        print(f"{run.name:<20}{label:<15}" + "".join(f"{c:>16}" for c in cells))
    totals = [sum(b for run in runs for _, b in run.fetched[h]) for h in hosts]
    counts = [sum(len(run.fetched[h]) for run in runs) for h in hosts]
    print(f"{'total':<35}" + "".join(f"{f'{_mb(t)} ({c})':>16}" for t, c in zip(totals, counts, strict=True)))
    shipped = {run.code_version.removeprefix("sha256:") for run in runs if run.code == "shipped"}
    fetches_per_host = sum(counts) / (len(hosts) * len(shipped))
    twice = sorted(f"{h} {d[:12]} x {n}" for (h, d), n in per_hash.items() if n > 1)
    never = sorted(f"{h} {d[:12]}" for h in hosts for d in shipped if (h, d) not in per_hash)
    print(
        f"fetches per host per hash: {fetches_per_host:.2f} ({len(shipped)} hashes)   target: 1"
        + (f"; fetched more than once: {', '.join(twice)}" if twice else "")
        + (f"; never fetched: {', '.join(never)}" if never else "")
    )
    return fetches_per_host


def throughput(runs: list[Run], args: argparse.Namespace) -> float:
    """The no-op sweeps, results local and on S3; the ratio of their mean rates, S3 / local."""
    print(
        f"\nno-op throughput ({args.n_noop} experiments per sweep, submit to completed; submit: its own "
        f"time; in Redis: until every result is in Redis; to Parquet: from then until completed)"
    )
    print(
        f"{'sweep':<20}{'results':<9}{'seconds':>9}{'per s':>9}{'submit':>9}{'in Redis':>10}{'to Parquet':>12}"
        f"   CPU s: {'driver+moto':>12}" + "".join(f"{r:>12}" for r in ROLES[1:])
    )
    rates: dict[str, list[float]] = {"local": [], "s3": []}
    for run in runs:
        if run.name.startswith("noop-"):
            rates[run.results].append(run.n / run.total_s)
            print(
                f"{run.name:<20}{run.results:<9}{run.total_s:>9.2f}{run.n / run.total_s:>9.1f}{run.submit_s:>9.3f}"
                f"{run.last_s:>10.2f}{run.total_s - run.last_s:>12.2f}   {'':>7}"
                + "".join(f"{run.cpu.get(r, 0.0):>12.2f}" for r in ROLES)
            )
    local_rate, s3_rate = statistics.mean(rates["local"]), statistics.mean(rates["s3"])
    s3_ratio = s3_rate / local_rate
    print(
        f"mean per s: local {local_rate:.1f}, s3 (moto) {s3_rate:.1f}; s3/local {s3_ratio:.3f}   target: >= 0.8"
    )
    return s3_ratio


def utilization(runs: list[Run], args: argparse.Namespace, procs: int) -> float:
    """The short sweeps, shared and shipped; the ratio of their mean utilizations, shipped / shared."""
    ideal = args.n_short * args.ms / 1000 / procs
    print(
        f"\n{args.ms:g}-ms utilization ({args.n_short} experiments per sweep, {procs} worker processes: ideal {ideal:.2f} s)"
    )
    print(
        f"{'sweep':<20}{'code':<9}{'seconds':>9}{'util.':>7}{'submit':>9}{'first':>8}"
        f"   util. from submit's return (without packing)"
    )
    utils: dict[str, list[float]] = {"shared": [], "shipped": []}
    after: dict[str, list[float]] = {"shared": [], "shipped": []}
    for run in runs:
        if run.name.startswith("util-"):
            utils[run.code].append(ideal / run.total_s)
            after[run.code].append(ideal / (run.total_s - run.submit_s))
            print(
                f"{run.name:<20}{run.code:<9}{run.total_s:>9.2f}{ideal / run.total_s:>7.3f}"
                f"{run.submit_s:>9.3f}{run.first_s:>8.3f}   {after[run.code][-1]:.3f}"
            )
    shared_util, shipped_util = statistics.mean(utils["shared"]), statistics.mean(utils["shipped"])
    util_ratio = shipped_util / shared_util
    print(
        f"mean utilization: shared {shared_util:.3f}, shipped {shipped_util:.3f}; "
        f"shipped/shared {util_ratio:.3f}   target: >= 0.97"
    )
    print(
        f"  from submit's return: shared {statistics.mean(after['shared']):.3f}, shipped "
        f"{statistics.mean(after['shipped']):.3f}; shipped/shared "
        f"{statistics.mean(after['shipped']) / statistics.mean(after['shared']):.3f}"
    )
    return util_ratio
