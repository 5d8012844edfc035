"""Device metadata through the real SDK from the fake service, and device selection."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as dtime

import pytest
from braket.circuits import Circuit

from adapters.simulator import LOCAL_DM, LOCAL_SV, circuit_needs
from core.errors import InputError
from orchestrator.braket.catalog import DeviceCatalog, ExecutionWindow
from orchestrator.braket.devices import get_optimal_device
from tests.support.braket_env import BraketTestEnv
from tests.support.fake_devices import DM1, IONQ, IQM, SV1

BELL = Circuit().h(0).cnot(0, 1)
A_MONDAY_NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def ghz(n: int) -> Circuit:
    circ = Circuit().h(0)
    for q in range(1, n):
        circ.cnot(q - 1, q)
    return circ


def test_catalog_reads_devices_over_http(braket_env: BraketTestEnv) -> None:
    catalog = DeviceCatalog()
    iqm = catalog.get(IQM)
    assert (iqm.name, iqm.device_type, iqm.qubit_count, iqm.status) == ("Garnet", "QPU", 20, "ONLINE")
    assert not iqm.fully_connected and iqm.connected(0, 1) and not iqm.connected(0, 6)
    assert iqm.shots_range == (1, 20_000) and "cz" in iqm.operations
    assert catalog.get(DM1).supports_noise and not catalog.get(SV1).supports_noise
    assert catalog.get(IONQ).fully_connected
    assert {d.arn for d in catalog.search()} == {SV1, DM1, IONQ, IQM}
    with pytest.raises(InputError, match="unknown Braket device"):
        catalog.get("arn:aws:braket:us-east-1::device/qpu/nobody/Nothing")


def test_queue_depth_is_read(braket_env: BraketTestEnv) -> None:
    braket_env.admin.device(IONQ, extra_queue=42)
    assert DeviceCatalog().get(IONQ).queue_depth == 42


def test_windows_including_ones_that_cross_midnight() -> None:
    night = ExecutionWindow("Weekdays", dtime(22, 0), dtime(2, 0))
    assert night.contains(datetime(2025, 6, 2, 23, 0, tzinfo=UTC))  # Monday 23:00
    assert night.contains(datetime(2025, 6, 3, 1, 0, tzinfo=UTC))  # opened Monday
    assert not night.contains(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))  # opened Sunday: closed
    assert not night.contains(datetime(2025, 6, 2, 12, 0, tzinfo=UTC))
    assert ExecutionWindow("Saturday", dtime(0), dtime(23, 59, 59)).contains(
        datetime(2025, 6, 7, 5, tzinfo=UTC)
    )


def test_circuit_needs_from_circuit_and_openqasm() -> None:
    needs = circuit_needs(Circuit().h(0).cnot(0, 3).rx(1, 0.3).depolarizing(1, 0.1))
    assert (needs.qubits, needs.max_index, needs.gate_count) == (3, 4, 3)
    assert needs.gates == {"h", "cnot", "rx"} and needs.noise == {"depolarizing"} and needs.pairs == {(0, 3)}
    qasm = circuit_needs(BELL.to_ir("OPENQASM").source)
    assert (qasm.qubits, qasm.gates, qasm.pairs) == (2, {"h", "cnot"}, {(0, 1)})


def test_small_circuit_prefers_the_free_local_simulator_and_says_why(braket_env: BraketTestEnv) -> None:
    rec = get_optimal_device(BELL, budget=10.0, shots=1000, now=A_MONDAY_NOON)
    assert rec.device == LOCAL_SV and rec.estimated_cost == 0
    assert "less than the cheapest QPU" in rec.reason and "Garnet" in rec.reason


def test_without_local_work_sv1_beats_qpus(braket_env: BraketTestEnv) -> None:
    rec = get_optimal_device(BELL, budget=10.0, allow_local=False, now=A_MONDAY_NOON)
    assert rec.device == SV1 and rec.estimated_cost == pytest.approx(0.075 * 3 / 60)


def test_require_qpu_picks_cheapest_qpu_and_reports_the_cheaper_simulator(braket_env: BraketTestEnv) -> None:
    rec = get_optimal_device(BELL, budget=10.0, shots=1000, require_qpu=True, now=A_MONDAY_NOON)
    assert rec.device == IQM and rec.estimated_cost == pytest.approx(0.30 + 1.45)
    assert rec.cheaper_simulator is not None and rec.cheaper_simulator.arn == LOCAL_SV
    assert IONQ in {o.arn for o in rec.alternatives}


def test_offline_and_out_of_window_devices_are_skipped(braket_env: BraketTestEnv) -> None:
    braket_env.admin.device(IQM, status="OFFLINE")
    rec = get_optimal_device(BELL, budget=100.0, require_qpu=True, now=A_MONDAY_NOON)
    assert rec.device == IONQ and "OFFLINE" in rec.rejected[IQM]
    braket_env.admin.device(
        IQM,
        status="ONLINE",
        windows=[{"executionDay": "Weekend", "windowStartHour": "00:00:00", "windowEndHour": "23:59:59"}],
    )
    rec = get_optimal_device(BELL, budget=100.0, require_qpu=True, now=A_MONDAY_NOON)
    assert rec.device == IONQ and "outside its execution windows" in rec.rejected[IQM]


def test_noise_width_and_connectivity_needs(braket_env: BraketTestEnv) -> None:
    noisy = Circuit().h(0).cnot(0, 1).depolarizing(0, 0.05)
    assert get_optimal_device(noisy, None, now=A_MONDAY_NOON).device == LOCAL_DM
    assert get_optimal_device(noisy, None, allow_local=False, now=A_MONDAY_NOON).device == DM1
    wide = get_optimal_device(ghz(30), None, shots=100, now=A_MONDAY_NOON)
    assert wide.device == SV1 and "30 qubits" in wide.rejected[LOCAL_SV]
    # Qubits 0 and 6 are not coupled on the lattice: without rewiring Garnet cannot run it.
    far = Circuit().h(0).cnot(0, 6)
    rec = get_optimal_device(far, None, require_qpu=True, disable_qubit_rewiring=True, now=A_MONDAY_NOON)
    assert rec.device == IONQ and "uncoupled" in rec.rejected[IQM]


def test_bad_budgets_are_input_errors(braket_env: BraketTestEnv) -> None:
    with pytest.raises(InputError, match="budget must be >= 0"):
        get_optimal_device(BELL, budget=-1.0)
    with pytest.raises(InputError, match=r"below the cheapest task: Garnet at \$1\.7500"):
        get_optimal_device(BELL, budget=0.5, shots=1000, require_qpu=True, now=A_MONDAY_NOON)
    with pytest.raises(InputError, match="no device can run"):
        get_optimal_device(ghz(40), None, now=A_MONDAY_NOON)


def test_no_qpu_available_is_a_resource_error_not_bad_input(braket_env: BraketTestEnv) -> None:
    from core.errors import ResourceError

    for qpu in (IONQ, IQM):
        braket_env.admin.device(qpu, status="OFFLINE")
    with pytest.raises(ResourceError, match="no QPU can run this circuit now"):
        get_optimal_device(BELL, 100.0, require_qpu=True, now=A_MONDAY_NOON)
