"""A project that waits ``ms`` milliseconds: short real work, without competing for the CPU.

With ``BENCH_TRACE`` set to a folder, each run appends its wall-clock start and end to
``<folder>/<pid>.txt``: ``benchmarks/peers.py`` reads the gaps between runs from them. The file
is opened once per process (opening it per run cost more than the rest of a run's overhead).
"""

import os
import time

_trace = None


def run(x: int, ms: float) -> dict[str, int]:
    global _trace
    start = time.time()
    time.sleep(ms / 1000)
    end = time.time()
    folder = os.environ.get("BENCH_TRACE")
    if folder:
        if _trace is None or _trace[0] != os.getpid():
            _trace = (os.getpid(), open(os.path.join(folder, f"{os.getpid()}.txt"), "a", buffering=1))  # noqa: SIM115
        _trace[1].write(f"{start} {end}\n")
    return {"y": x}
