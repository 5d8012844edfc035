"""A project that waits ``ms`` milliseconds: short real work, without competing for the CPU.

With ``BENCH_TRACE`` set to a folder, each run appends its wall-clock start and end to
``<folder>/<pid>.txt``: ``benchmarks/peers.py`` reads the gaps between runs from them.
"""

import os
import time


def run(x: int, ms: float) -> dict[str, int]:
    start = time.time()
    time.sleep(ms / 1000)
    trace = os.environ.get("BENCH_TRACE")
    if trace:
        with open(os.path.join(trace, f"{os.getpid()}.txt"), "a") as out:
            out.write(f"{start} {time.time()}\n")
    return {"y": x}
