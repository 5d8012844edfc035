"""Physics checks (``orchestrator physics-check``): the examples against known physics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from orchestrator.physics_checks import FARHI_P1, TSIRELSON, ghz_fidelity_exact
from tests.conftest import cli


@pytest.mark.parametrize("p", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_exact_ghz_curve_matches_a_closed_form_for_two_qubits(p: float) -> None:
    # Bell pair: errors act on the 4 cosets of its stabilizer (a random walk on Z2 x Z2). The H's
    # channel moves it with probability 2p/3 (X on |+> is harmless), each CNOT channel with p.
    # Fourier over the group: F = (1 + (1 - 4p/3)**2 + 2 (1 - 4p/3)**3) / 4.
    r = 1 - 4 * p / 3
    assert ghz_fidelity_exact(2, p) == pytest.approx((1 + r**2 + 2 * r**3) / 4, abs=1e-12)


def test_exact_ghz_curve_is_one_without_noise_and_falls_with_it() -> None:
    assert ghz_fidelity_exact(3, 0.0) == pytest.approx(1.0)
    curve = [ghz_fidelity_exact(3, p) for p in (0.0, 0.02, 0.05, 0.1)]
    assert curve == sorted(curve, reverse=True)


def test_the_references_are_the_published_values() -> None:
    assert TSIRELSON == pytest.approx(2.8284271, abs=1e-7)
    assert FARHI_P1 == pytest.approx(0.69245, abs=1e-5)


def test_validate_passes_on_the_examples(workdir: Path) -> None:
    done = cli("physics-check", "--json", workdir=workdir, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)["checks"]
    names = " ".join(c["name"] for c in checks)
    for topic in ("CHSH", "GHZ", "QAOA", "H2"):
        assert topic in names
    for check in checks:
        assert {"name", "measured", "ci_low", "ci_high", "reference", "passed"} <= set(check)
        assert check["passed"] and check["ci_low"] <= check["measured"] <= check["ci_high"]
    noiseless = next(c for c in checks if c["name"].startswith("CHSH noiseless"))
    assert noiseless["ci_low"] <= 2 * math.sqrt(2) <= noiseless["ci_high"]
