"""``noise: device``: a QPU's published calibration, read once when its sweep is submitted.

A device publishes its fidelities in its device description (GetDevice's capabilities, read
through the Braket SDK's session), in one of three forms, averaged here over qubits and pairs:

* ``standardized`` (IQM, Rigetti): ``oneQubitProperties`` per qubit (a randomized-benchmarking
  fidelity and a ``READOUT`` one) and ``twoQubitProperties`` per pair (one entry per gate; the
  pair's best gate counts, the one a compiler routes through);
* IonQ's ``provider.fidelity``: ``1Q``, ``2Q`` and ``spam`` means;
* a provider's per-qubit table (IQM's ``provider.properties``: ``f1Q_simultaneous_RB``, ``fRO``,
  ``fCZ``; Rigetti's older ``provider.specs``: ``f1QRB``, ``fRO``, ``fCZ``).

:func:`calibrate` stores the snapshot in every ``noise: device`` rung, beside ``device: auto``'s
choice: it travels with the sweep's configuration, so a restarted coordinator never reads it
again, every worker simulates the same numbers, and (through ``project_options``) a new snapshot
makes new experiments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from statistics import fmean
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from core.errors import InputError
from core.project import Calibration
from orchestrator.braket.retry import RetryPolicy, error_code

if TYPE_CHECKING:
    from core.config import SweepConfiguration

#: a qubit's gate fidelity, in order of preference: benchmarked while its neighbours run too
_ONE_QUBIT_KEYS = ("f1Q_simultaneous_RB", "f1QRB", "f1Q_RB")
_RB_TYPES = ("SIMULTANEOUS_RANDOMIZED_BENCHMARKING", "RANDOMIZED_BENCHMARKING")
_READOUT_KEYS = ("fRO",)


def read_calibration(arn: str, *, retry: RetryPolicy | None = None) -> Calibration:
    """The calibration ``arn`` publishes, averaged.

    Raises:
        InputError: Braket does not know the device (field ``device``), or its description has
            no calibration (one- and two-qubit gate fidelities and a readout fidelity; field
            ``noise``), naming the device.
        TransientError: Braket could not be reached (after retries).
    """
    # the Braket SDK takes ~2 s to import: only a sweep that reads a calibration pays it
    from orchestrator.braket.aws import braket_session, device_region

    session = braket_session(device_region(arn))

    def fetch() -> dict[str, Any]:
        try:
            return session.get_device(arn)
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                raise InputError(f"unknown Braket device '{arn}'; check the ARN", field="device") from None
            raise

    meta = (retry or RetryPolicy()).call(fetch, f"GetDevice {arn}")
    caps = meta.get("deviceCapabilities") or {}
    return from_capabilities(arn, json.loads(caps) if isinstance(caps, str) else caps)


def from_capabilities(arn: str, caps: dict[str, Any]) -> Calibration:
    """The calibration in a device's capabilities document.

    Raises:
        InputError: it publishes none, or fidelities no depolarizing channel can have.
    """
    provider = caps.get("provider") or {}
    found = (
        _standardized(caps.get("standardized") or {})
        or _ionq(provider.get("fidelity") or {})
        or _per_qubit(provider.get("properties") or provider.get("specs") or {})
    )
    if found is None:
        raise InputError(
            f"device {arn} publishes no calibration (one- and two-qubit gate fidelities and a readout "
            "fidelity) in its device description",
            field="noise",
        )
    one, two, readout = found
    # p1 = 1.5 (1 - F1) <= 3/4, p2 = 1.25 (1 - F2) <= 15/16, a bit flip <= 1/2
    if not (one >= 0.5 and two >= 0.25 and readout >= 0.5) or max(one, two, readout) > 1:
        raise InputError(
            f"device {arn} publishes fidelities no noise channel can have (1Q {one}, 2Q {two}, "
            f"readout {readout})",
            field="noise",
        )
    return Calibration(device=arn, one_qubit=one, two_qubit=two, readout=readout)


Averages = tuple[float, float, float]


def _standardized(std: dict[str, Any]) -> Averages | None:
    one, readout = [], []
    for qubit in (std.get("oneQubitProperties") or {}).values():
        fids = {
            str(f["fidelityType"]["name"]).upper(): float(f["fidelity"])
            for f in qubit.get("oneQubitFidelity") or ()
        }
        gates = [fids[k] for k in _RB_TYPES if k in fids] + [v for k, v in fids.items() if "READOUT" not in k]
        one += gates[:1]
        readout += [v for k, v in fids.items() if "READOUT" in k][:1]
    two = [
        max(float(g["fidelity"]) for g in pair["twoQubitGateFidelity"])
        for pair in (std.get("twoQubitProperties") or {}).values()
        if pair.get("twoQubitGateFidelity")
    ]
    return _means(one, two, readout)


def _ionq(fidelity: dict[str, Any]) -> Averages | None:
    def mean(key: str) -> list[float]:
        value = (fidelity.get(key) or {}).get("mean")
        return [] if value is None else [float(value)]

    return _means(mean("1Q"), mean("2Q"), mean("spam"))


def _per_qubit(table: dict[str, Any]) -> Averages | None:
    ones = (table.get("one_qubit") or table.get("1Q") or {}).values()
    twos = (table.get("two_qubit") or table.get("2Q") or {}).values()
    one = [v for q in ones if (v := _first(q, _ONE_QUBIT_KEYS)) is not None]
    readout = [v for q in ones if (v := _first(q, _READOUT_KEYS)) is not None]
    gates = [[float(v) for k, v in pair.items() if _gate_fidelity(k, v)] for pair in twos]
    return _means(one, [max(g) for g in gates if g], readout)


def _gate_fidelity(key: str, value: Any) -> bool:
    """fCZ, fCPHASE, fXY...: a two-qubit gate's fidelity (not its standard error)."""
    return key.startswith("f") and not key.endswith("_std_err") and _number(value)


def _first(values: dict[str, Any], keys: Iterable[str]) -> float | None:
    return next((float(values[k]) for k in keys if _number(values.get(k))), None)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _means(one: list[float], two: list[float], readout: list[float]) -> Averages | None:
    if not (one and two and readout):
        return None
    return fmean(one), fmean(two), fmean(readout)


def calibrate(
    config: SweepConfiguration,
    source: str,
    *,
    read: Callable[[str], Calibration] = read_calibration,
) -> SweepConfiguration:
    """``config`` with every ``noise: device`` rung's ``calibration`` read from the ladder's QPU
    (``spec.target``). A rung that already carries the target's (a stored sweep, or a snapshot
    the user pinned) keeps it; each device is read once.

    Raises:
        InputError: the target publishes no calibration (naming the file, the rung's ``noise``,
            the device and the fix), Braket does not know it (the top rung's ``device``), or a
            rung carries another device's calibration.
    """
    read_once: dict[str, Calibration] = {}
    projects = list(config.projects)
    for i, spec in enumerate(projects):
        rungs = list(spec.fidelities)
        for j, rung in enumerate(rungs):
            target = spec.target
            if rung.noise != "device" or target is None:
                continue
            if rung.calibration is not None:
                if rung.calibration.device != target:
                    raise InputError(
                        f"the rung's calibration was read from {rung.calibration.device}, and noise: "
                        f"device simulates the ladder's QPU, {target}",
                        source=source,
                        field=f"projects[{i}].fidelities[{j}].calibration",
                        fix="remove the calibration: it is read from the QPU when the sweep is submitted",
                    )
                continue
            try:
                if target not in read_once:
                    read_once[target] = read(target)
            except InputError as exc:
                if exc.field == "device":  # an ARN Braket does not know: the top rung's to fix
                    top = max(k for k, r in enumerate(rungs) if r.device == target)
                    raise InputError(
                        exc.message, source=source, field=f"projects[{i}].fidelities[{top}].device"
                    ) from None
                raise InputError(
                    f"noise: device simulates the ladder's QPU: {exc.message}",
                    source=source,
                    field=f"projects[{i}].fidelities[{j}].noise",
                    fix=f"remove noise: device from the rung (it then simulates no noise), or end the "
                    f"ladder on a QPU that publishes its calibration instead of {target}",
                ) from None
            rungs[j] = rung.model_copy(update={"calibration": read_once[target]})
        if rungs != list(spec.fidelities):
            projects[i] = spec.model_copy(update={"fidelities": rungs})
    if projects == list(config.projects):
        return config
    return config.model_copy(update={"projects": projects})
