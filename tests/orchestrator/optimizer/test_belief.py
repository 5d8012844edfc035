"""The posterior grid the dashboard draws: the model's mean where it has seen results, its
uncertainty growing away from them, log axes in log space, and refusals that name the choices."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from orchestrator.optimizer.belief import numeric_parameters, posterior_grid
from tests.orchestrator.optimizer.conftest import make_sweep, result

PARAMS = {
    "x": {"start": 0.0, "stop": 1.0, "num": 11},
    "rate": {"kind": "log", "start": 1e-3, "stop": 1.0, "num": 4},
    "mixer": {"choices": ["a", "b"]},
}


def _observed() -> list[dict]:
    rows = []
    for i, (x, rate) in enumerate(
        [(0.1, 1e-3), (0.3, 1e-2), (0.5, 1e-1), (0.7, 1.0), (0.9, 1e-2), (0.2, 1.0)]
    ):
        rows.append(result(i, {"x": x, "rate": rate, "mixer": "a"}, {"value": (x - 0.5) ** 2}))
    return rows


def test_the_grid_holds_the_models_mean_and_an_uncertainty_that_grows_away_from_the_results() -> None:
    config = make_sweep(PARAMS, optimizer={"startup_points": 4})
    grid = posterior_grid(config, _observed(), None, "x", "rate", size=9)
    assert grid is not None
    xs, rates = np.asarray(grid["x"]["values"]), np.asarray(grid["y"]["values"])
    assert grid["y"]["log"] is True and np.allclose(np.diff(np.log(rates)), np.log(10) * 3 / 8)
    mean, std = np.asarray(grid["mean"]), np.asarray(grid["std"])
    assert mean.shape == std.shape == (9, 9) and (std > 0).all()
    # at an observed point the mean is near the result; the model is least sure far from all of them
    row, col = int(np.argmin(abs(rates - 0.1))), int(np.argmin(abs(xs - 0.5)))
    assert abs(mean[row, col] - 0.0) < 0.05
    assert std[row, col] < std[0, -1]  # (x=1, rate=1e-3): nothing seen near it
    assert grid["fixed"] == {"mixer": "a"} and grid["goal"] == "minimize"
    assert len(grid["observed"]) == 6 and grid["incumbent"]["x"] == 0.5


def test_no_grid_before_the_model_and_refusals_name_the_parameters() -> None:
    config = make_sweep(PARAMS, optimizer={"startup_points": 8})
    assert posterior_grid(config, _observed()[:2], None, "x", "rate") is None  # the startup design
    assert numeric_parameters(config) == ["x", "rate"]
    with pytest.raises(InputError) as bad:
        posterior_grid(config, _observed(), None, "mixer", "rate")
    assert bad.value.field == "x" and "x, rate" in str(bad.value.fix)
    with pytest.raises(InputError):
        posterior_grid(config, _observed(), None, "x", "x")
