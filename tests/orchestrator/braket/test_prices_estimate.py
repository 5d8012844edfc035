"""Price table arithmetic, user overrides, and itemized cost estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.models import Experiment
from orchestrator.braket.estimate import estimate_cost
from orchestrator.braket.prices import PRICE_TABLE_ENV, load_price_table
from tests.support.fake_devices import DM1, IONQ, IQM, SV1


def exp(i: int, device: str | None, **params: object) -> Experiment:
    return Experiment(
        sweep_id="s", experiment_id=f"e{i}", index=i, project="p", parameters=params, device=device
    )


def test_shipped_table_is_dated_and_prices_each_kind() -> None:
    table = load_price_table()
    assert table.as_of and table.currency == "USD"
    assert table.task_cost(IONQ, 100) == pytest.approx(0.30 + 0.08 * 100)
    assert table.task_cost(IQM, 1000) == pytest.approx(0.30 + 0.00145 * 1000)
    # Managed simulators: per minute, with a 3 s minimum per task.
    assert table.task_cost(SV1, 1000, seconds=0.2) == pytest.approx(0.075 * 3 / 60)
    assert table.task_cost(DM1, 1000, seconds=90) == pytest.approx(0.075 * 1.5)
    assert table.task_cost("local:sv", 10_000) == 0.0


def test_unknown_device_names_the_table_to_extend() -> None:
    with pytest.raises(InputError, match=r"no price for device 'arn:aws:braket:.*nowhere/X'"):
        load_price_table().task_cost("arn:aws:braket:us-east-1::device/qpu/nowhere/X", 10)


def test_user_table_overrides_through_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(
        "as_of: '2030-01-01'\ncurrency: USD\ndevices:\n"
        "  - {match: 'arn:aws:braket:*::device/qpu/ionq/*', kind: qpu, per_task: 1.0, per_shot: 0.5}\n"
    )
    monkeypatch.setenv(PRICE_TABLE_ENV, str(table))
    loaded = load_price_table()
    assert loaded.version == "prices.yaml@2030-01-01"
    assert loaded.task_cost(IONQ, 10) == pytest.approx(6.0)


@pytest.mark.parametrize(
    "body, field",
    [
        ("currency: USD\ndevices: []\n", "as_of"),
        (
            "as_of: x\ncurrency: USD\ndevices:\n  - {match: '*', kind: qpu, per_shot: -1}\n",
            "devices[0].per_shot",
        ),
        ("as_of: x\ncurrency: USD\ndevices:\n  - {match: '*', kind: simulator, per_shot: 1}\n", "devices[0]"),
    ],
)
def test_malformed_table_says_which_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        load_price_table(path)
    assert info.value.field == field and info.value.source == str(path)


def test_estimate_is_itemized_per_device_and_adds_up() -> None:
    experiments = [
        exp(0, IONQ, shots=100),
        exp(1, IONQ, shots=50),
        exp(2, IQM, shots=1000),
        exp(3, SV1, shots=1000),
        exp(4, SV1),
        exp(5, "local:sv", shots=10),
        exp(6, None),
    ]
    est = estimate_cost(experiments)
    ionq, iqm, sv1 = est.lines[IONQ], est.lines[IQM], est.lines[SV1]
    assert (ionq.tasks, ionq.shots) == (2, 150)
    assert ionq.total == pytest.approx(2 * 0.30 + 150 * 0.08)
    assert iqm.total == pytest.approx(0.30 + 1000 * 0.00145)
    assert sv1.billed_seconds == pytest.approx(6.0)
    assert sv1.total == pytest.approx(2 * 0.075 * 3 / 60)
    assert est.lines["local:sv"].total == 0 and est.lines["local_cpu"].tasks == 1
    assert est.total == pytest.approx(ionq.total + iqm.total + sv1.total)
    assert est.paid_tasks == 5
    assert est.rows()[0]["device"] == IONQ  # most expensive first
    assert any("1000 shots" in note for note in est.notes)
    assert est.exceeds(1.0) and not est.exceeds(100.0) and not est.exceeds(None)


def test_estimate_uses_given_shots_and_simulator_seconds() -> None:
    est = estimate_cost([exp(0, SV1), exp(1, DM1)], shots_for=lambda e: 10, seconds_for=lambda e: 120.0)
    assert est.lines[SV1].total == pytest.approx(0.075 * 2)
    assert est.lines[DM1].shots == 10
