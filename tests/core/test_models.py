"""``ExperimentResult.of``: a finished experiment's result says what ran, from the experiment."""

from __future__ import annotations

from core.models import Experiment, ExperimentResult, ExperimentStatus


def test_a_result_of_an_experiment_carries_what_it_is_and_how_it_ran() -> None:
    exp = Experiment(
        sweep_id="s",
        experiment_id="e",
        index=7,
        project="p",
        parameters={"x": 1},
        repeat=2,
        resource="braket_qpu",
        device="dev",
        reproducibility_hash="h",
        seed=3,
        added=True,
    )
    result = ExperimentResult.of(exp, status=ExperimentStatus.FAILED, device="other", attempt=2)
    assert (result.experiment_id, result.project_name, result.sweep_id, result.index) == ("e", "p", "s", 7)
    assert (result.repeat, result.resource, result.added) == (2, "braket_qpu", True)
    assert result.parameters == {"x": 1} and result.parameters is not exp.parameters
    assert (result.status, result.device, result.attempt) == (ExperimentStatus.FAILED, "other", 2)
    assert (result.reproducibility_hash, result.seed) == ("h", 3), (
        "a stopped or failed row names its seed too"
    )
