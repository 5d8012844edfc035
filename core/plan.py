"""A sweep's experiments, enumerated lazily by index.

Experiment index ``e`` encodes ``(point, repeat, project)`` as ``(point * repeats + repeat) *
n_projects + project``, where ``point`` indexes the unfiltered parameter product. Points removed
by constraints are simply never materialised, so any index maps back in O(1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from core.config import SweepConfiguration
from core.identity import (
    IDENTITY_SCHEME,
    code_version,
    experiment_id,
    experiment_seed,
    project_options,
    reproducibility_hash,
)
from core.models import Experiment
from core.project import FIDELITY, ProjectSpec, Rung, is_managed


@dataclass
class SweepPlan:
    """A sweep's experiments. ``identity`` is the scheme its experiment ids follow (see
    :data:`core.identity.IDENTITY_SCHEME`): a registered sweep keeps the one it began with."""

    config: SweepConfiguration
    code_versions: dict[str, str]
    identity: int = IDENTITY_SCHEME

    def __post_init__(self) -> None:
        self.space = self.config.space()
        self.sweep_id = self.config.sweep_id
        self.projects = {p.name: p for p in self.config.projects}
        #: project names in configuration order: an index's project is ``index % len(project_order)``
        self.project_order = [p.name for p in self.config.projects]
        self.stride = self.config.repeats * len(self.project_order)
        #: refinement points the optimizer added, past the lazy product: point -> parameters
        self.added: dict[int, dict] = {}
        #: per project, the digest of its options in each experiment id (scheme 2 on)
        self.options = (
            {p.name: project_options(p) for p in self.config.projects} if self.identity >= 2 else {}
        )
        names = list(self.space.names)
        self.seeded = {p.name for p in self.config.projects if p.receives_seed(names)}

    @classmethod
    def of(cls, config: SweepConfiguration, meta: dict) -> SweepPlan:
        """The plan of a registered sweep, from its stored fields (``code_versions`` and the
        identity scheme it was registered with; 1 before schemes were recorded)."""
        return cls(config, json.loads(meta["code_versions"]), int(meta.get("identity") or 1))

    @classmethod
    def build(cls, config: SweepConfiguration) -> SweepPlan:
        return cls(config, {p.name: code_version(p.path) for p in config.projects})

    def decompose(self, index: int) -> tuple[int, int, ProjectSpec]:
        point, rest = divmod(index, self.stride)
        repeat, project = divmod(rest, len(self.project_order))
        return point, repeat, self.projects[self.project_order[project]]

    def resource_of(self, index: int, parameters: dict | None = None) -> str:
        """The queue experiment ``index`` waits in: its project's, or on a fidelity ladder its
        rung's (``parameters``, else the point's: an added point's must be in :attr:`added`).

        Raises:
            KeyError: an added point of a ladder whose parameters this plan was not given.
        """
        point, _, spec = self.decompose(index)
        if not spec.fidelities:
            return spec.resource
        if parameters is None:
            parameters = self.added[point] if point >= self.space.size else {}
        return queue_of(spec, parameters)

    def indices_of(self, point: int, project: str) -> list[int]:
        """The experiment indices of ``project``'s repeats of ``point`` (a promotion climbs with
        these: the other projects' experiments of the point do not)."""
        position, width = self.project_order.index(project), len(self.project_order)
        return [point * self.stride + repeat * width + position for repeat in range(self.config.repeats)]

    def queues(self) -> tuple[set[str], set[str]]:
        """``(every queue, those of managed devices)`` the sweep's experiments may wait in."""
        used: set[str] = set()
        managed: set[str] = set()
        for spec in self.projects.values():
            for device, queue in _devices(spec):
                used.add(queue)
                if is_managed(device):
                    managed.add(queue)
        return used, managed

    def experiment_indices(self, points: np.ndarray) -> np.ndarray:
        """All experiment indices of the given point indices (every repeat and project)."""
        return (np.asarray(points, dtype=np.int64)[:, None] * self.stride + np.arange(self.stride)).ravel()

    def point_of(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices, dtype=np.int64) // self.stride

    def queue_of(self, index: int) -> str:
        return self.resource_of(index)

    def experiment(self, index: int, parameters: dict | None = None) -> Experiment:
        point, repeat, spec = self.decompose(index)
        added = point >= self.space.size
        if parameters is not None:
            params = parameters
        elif added:
            params = self.added[point]
        else:
            params = self.space.point(point)
        device = spec.device_for(params)
        exp_id = self._id(spec, params, repeat)
        seed = experiment_seed(self.config.seed, spec.name, params, repeat)
        return Experiment(
            sweep_id=self.sweep_id,
            experiment_id=exp_id,
            index=index,
            project=spec.name,
            parameters=params,
            repeat=repeat,
            resource=queue_of(spec, params),
            device=device,
            fidelity=spec.rung_of(params) if spec.fidelities else None,
            reproducibility_hash=reproducibility_hash(exp_id, seed),
            seed=seed,
            added=added,
            code_version=self.code_versions[spec.name],
        )

    def experiments(self, indices: Sequence[int | str]) -> list[Experiment]:
        """The experiments of many indices, decoding their parameters in one vectorised pass."""
        idx = np.asarray([int(i) for i in indices], dtype=np.int64)
        if not len(idx):
            return []
        points = self.point_of(idx)
        cols = self.space.columns(np.minimum(points, self.space.size - 1))
        names = self.space.names
        return [
            self.experiment(
                index,
                None if points[row] >= self.space.size else {name: _plain(cols[name][row]) for name in names},
            )
            for row, index in enumerate(idx.tolist())
        ]

    def low_fidelity(self, exp: Experiment) -> Experiment | None:
        """The low-shot variant of ``exp`` when the sweep treats shots as a budget, else None.

        It keeps the experiment's id: it is a first stage of the same experiment, which the
        optimizer later promotes to its full shots or stops early.
        """
        options = self.config.optimizer.early_stopping
        share = options.low_fidelity_share
        if not (self.config.adaptive_sampling and options.enabled and share):
            return None
        spec = self.projects[exp.project]
        name = spec.circuit.shots_param if spec.circuit else spec.standardize.shots
        shots = exp.parameters.get(name)
        if not isinstance(shots, int) or shots < 2:
            return None
        low = {**exp.parameters, name: max(1, round(shots * share))}
        return exp.model_copy(update={"parameters": low, "shot_fraction": share})

    def experiment_ids(self, indices: np.ndarray) -> Iterator[tuple[int, str]]:
        """``(index, experiment_id)`` for each index, decoding parameters in one vectorised pass."""
        points = self.point_of(indices)
        cols = self.space.columns(points)
        for row, index in enumerate(np.asarray(indices).tolist()):
            _, repeat, spec = self.decompose(index)
            params = {name: _plain(cols[name][row]) for name in self.space.names}
            yield index, self._id(spec, params, repeat)

    def _id(self, spec: ProjectSpec, params: dict, repeat: int) -> str:
        """The experiment id: everything that can change the result (``core.identity``)."""
        code = self.code_versions[spec.name]
        if self.identity < 2:
            return experiment_id(spec.name, code, params, repeat, spec.resource, spec.device_for(params))
        # The seed a run receives is derived from the sweep's and from what the id holds already:
        # the sweep's seed stands for it, at no cost per experiment.
        seed = self.config.seed if spec.name in self.seeded else None
        return experiment_id(
            spec.name,
            code,
            params,
            repeat,
            spec.resource,
            spec.device_for(params),
            options=self.options[spec.name],
            seed=seed,
        )


def queue_of(spec: ProjectSpec, params: dict) -> str:
    """The queue a run of ``spec`` with ``params`` waits in: its rung's on a fidelity ladder."""
    return _rung(spec, params).queue if spec.fidelities else spec.resource


def run_parameters(spec: ProjectSpec, params: dict) -> dict:
    """What one run of ``params`` receives: on a fidelity ladder, without ``fidelity`` (the rung
    is the run's device, not an argument) and with the rung's ``shots`` in place of the point's."""
    if not spec.fidelities:
        return params
    given = {k: v for k, v in params.items() if k != FIDELITY}
    rung = _rung(spec, params)
    if rung.shots is None or spec.circuit is None:
        return given
    return {**given, spec.circuit.shots_param: rung.shots}


def _rung(spec: ProjectSpec, params: dict) -> Rung:
    return spec.fidelities[min(spec.rung_of(params), len(spec.fidelities) - 1)]


def _devices(spec: ProjectSpec) -> list[tuple[str | None, str]]:
    """``(device, queue)`` of each device ``spec``'s experiments may run on."""
    if spec.fidelities:
        return [(rung.device, rung.queue) for rung in spec.fidelities]
    return [(spec.device, spec.resource)]


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def priority(indices: np.ndarray, adaptive: bool, seed: int) -> np.ndarray:
    """Initial scores (higher runs first): index order, or a seeded scramble for adaptive sweeps
    so the first runs spread over the space until the optimizer re-scores them."""
    indices = np.asarray(indices, dtype=np.uint64)
    if not adaptive:
        return -indices.astype(np.float64)
    with np.errstate(over="ignore"):  # splitmix64: the wrap-around is the point
        x = indices + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(12)).astype(np.float64) / 2.0**52
