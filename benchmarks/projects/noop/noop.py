"""A project that does nothing: the benchmarks measure the orchestrator around it.

It takes any other parameter too (``**_``): the scale benchmark's grid has three axes.
"""


def run(x: int, **_: object) -> dict[str, int]:
    return {"y": x}
