"""A project that waits ``ms`` milliseconds: short real work, without competing for the CPU."""

import time


def run(x: int, ms: float) -> dict[str, int]:
    time.sleep(ms / 1000)
    return {"y": x}
