"""Which experiments already have a successful result: the reuse check of a sweep's fill.

An experiment completed anywhere in the dataset (any sweep) or on this broker (``orch:done``)
is never run again. The dataset's are kept as two independent 64-bit hashes of each id, sorted,
with the sweep it is stored in: 20 bytes a result instead of a Python string and a dict entry
each (a million results: 20 MB, not 150). Two hashes: a false match needs both to collide
(odds ~n**2 / 2**129), and a collision of the first alone only makes an experiment run again.
The broker's are asked chunk by chunk (``SMISMEMBER``), never loaded whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.results import ResultStore

_KEYS = ("orchestrator-id-1", "orchestrator-id-2")  # pandas' hash keys: 16 bytes each


def _hashes(ids: np.ndarray, key: str) -> np.ndarray:
    return pd.util.hash_array(np.asarray(ids, dtype=object), hash_key=key[:16], categorize=False)


class DoneIndex:
    """The completed experiments of a results dataset, by id.

    Args:
        store: the dataset, read once, a file at a time.
    """

    def __init__(self, store: ResultStore) -> None:
        first: list[np.ndarray] = []
        second: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        sweeps: dict[str, int] = {}  # sweep id -> its code
        for exp_ids, sweep_ids in store.completed_ids():
            first.append(_hashes(exp_ids, _KEYS[0]))
            second.append(_hashes(exp_ids, _KEYS[1]))
            codes.append(np.fromiter((sweeps.setdefault(s, len(sweeps)) for s in sweep_ids), np.int32))
        h1 = np.concatenate(first) if first else np.zeros(0, dtype=np.uint64)
        order = np.argsort(h1, kind="stable")
        self._h1, self._h2 = h1[order], (np.concatenate(second) if second else h1)[order]
        self._codes = (np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32))[order]
        self._names = list(sweeps)

    def __len__(self) -> int:
        return len(self._h1)

    def sweeps_of(self, experiment_ids: list[str]) -> list[str | None]:
        """The sweep each experiment's completed row is stored in; None where it has none."""
        if not len(self._h1) or not experiment_ids:
            return [None] * len(experiment_ids)
        ids = np.asarray(experiment_ids, dtype=object)
        q1, q2 = _hashes(ids, _KEYS[0]), _hashes(ids, _KEYS[1])
        at = np.minimum(np.searchsorted(self._h1, q1), len(self._h1) - 1)
        hit = (self._h1[at] == q1) & (self._h2[at] == q2)
        return [
            self._names[self._codes[a]] if h else None for a, h in zip(at.tolist(), hit.tolist(), strict=True)
        ]
