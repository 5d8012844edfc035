"""A project that does nothing: the benchmarks measure the orchestrator around it."""


def run(x: int) -> dict[str, int]:
    return {"y": x}
