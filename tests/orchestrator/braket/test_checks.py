"""``check_paid_sweep`` against the fake Braket service and moto's S3: every distinct circuit is
checked (not a sample), the results bucket must exist and take a write, and the time is bounded."""

from __future__ import annotations

import pytest

from core.config import SweepConfiguration
from core.errors import InputError
from orchestrator.braket.checks import check_paid_sweep
from tests.conftest import ROOT
from tests.support.fake_devices import IQM

GHZ = ROOT / "tests" / "fixtures" / "projects" / "ghz_circuit"


def _config(widths: list[int], repeats: int = 1) -> SweepConfiguration:
    return SweepConfiguration.model_validate(
        {
            "name": "paid",
            "projects": [
                {
                    "name": "ghz",
                    "path": str(GHZ),
                    "device": IQM,
                    "resource": "braket_qpu",
                    "circuit": {"build": "ghz:build", "analyze": "ghz:analyze"},
                }
            ],
            "parameters": {"n": widths, "shots": [100, 200, 300, 400, 500, 600]},
            "adaptive_sampling": False,
            "repeats": repeats,
        }
    )


def _check(config: SweepConfiguration, bucket: str, **kw) -> int:
    return check_paid_sweep(
        config.space(), list(enumerate(config.projects)), bucket=bucket, source="paid.yaml", **kw
    ).checked


def test_one_too_wide_point_among_a_hundred_and_eight_is_refused(braket_env) -> None:
    widths = [2 + i % 18 for i in range(17)] + [21] + [19]  # one 21-qubit point, 19 widths x 6 shots
    with pytest.raises(InputError) as caught:
        _check(_config(widths), braket_env.bucket)
    assert "qubits" in caught.value.message and "'n': 21" in caught.value.message
    assert caught.value.source == "paid.yaml" and caught.value.field == "projects[0].device"


def test_every_distinct_shape_is_validated_once(braket_env) -> None:
    # widths x shots; a second point of the same shape (here a repeat of each) is free
    assert _check(_config([2, 3, 4], repeats=2), braket_env.bucket) == 3 * 6


def test_a_missing_results_bucket_is_bad_input_before_anything_is_paid(braket_env) -> None:
    with pytest.raises(InputError) as caught:
        _check(_config([2, 3]), "amazon-braket-nobody-made-this")
    assert caught.value.field == "braket_s3_bucket" and "does not exist" in caught.value.message


def test_past_the_time_bound_it_stops_with_how_far_it_got(braket_env) -> None:
    with pytest.raises(InputError) as caught:
        _check(_config([2, 3]), braket_env.bucket, max_seconds=0)
    assert "checked 0 of 12 circuits" in caught.value.message
    assert "ORCHESTRATOR_PREFLIGHT_SECONDS" in caught.value.message
