"""Which joint model of a fidelity ladder predicts the top rung best: co-kriging or fidelity as input.

The promotion policy (``orchestrator/optimizer/promotion.py``) ranks the points done on a cheap
rung by their expected improvement at the top (QPU) rung, so what matters is the model's
prediction at the top rung of points measured only on the cheap rung. Synthetic ladders, 2
parameters in [0, 1]:

* a QAOA-like landscape ``ideal = 0.5 + 0.35 sin(2 pi x0) sin(pi x1) + 0.1 cos(3 pi x1)``;
* ``depolar``: the cheap rung is ``ideal``, the top the same depolarized towards 0.5
  (``0.5 + 0.7 (ideal - 0.5)``: a QPU noisier than the simulator);
* ``bias``: the top is ``ideal``, the cheap rung ``ideal + 0.12 cos(3 pi x0 + 1) - 0.05`` (a bias
  varying over the space, as a mis-calibrated noise model gives);
* ``sharper``: the top is ``ideal``, the cheap rung it depolarized plus 0.05 (a simulated noise
  stronger than the QPU's);
* noise sd 0.05 on the cheap rung (fewer shots), 0.02 on the top.

Every point runs on the cheap rung; the 20 % best by that measurement also run on the top rung
(what promotion does: a nested design, clustered where the cheap rung looks good). Models:

* ``cokriging``: autoregressive co-kriging, below (kept here: the policy uses ``fid_input``);
* ``fid_input``: one GP over (x, rung) with the same Matérn 5/2 ARD kernel, rung scaled to [0, 1];
* ``top_only``: a GP on the top rung's results alone.

Printed per ladder and size: over the points measured on the cheap rung only (the promotion
candidates), the RMSE of the predicted top value, the mean negative log predictive density of the
true top value (calibration: what EI relies on), and the regret of promoting the candidate with
the best predicted top mean (true top value lost against the best candidate); medians over seeds,
and the ratio of fid_input and top_only to cokriging. The last line is JSON.

Measured (20 seeds, 2 busy cores): fid_input's top-rung RMSE is 0.60x / 0.89x co-kriging's on
``depolar`` (30 / 60 points) and 0.85x / 0.68x on ``bias``, with a better NLPD by up to 0.44;
co-kriging wins ``sharper`` (fid_input 1.30x / 1.81x); the promotion regret is alike.

    .venv/bin/python benchmarks/ladder_model.py            # 20 seeds, a few minutes
    .venv/bin/python benchmarks/ladder_model.py --smoke    # does it still run? (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.optimizer._gp.model import Posterior, _neg_log_posterior, fit_posterior  # noqa: E402

TOP_SD, LOW_SD, SHARE = 0.02, 0.05, 0.2


def ideal(x: np.ndarray) -> np.ndarray:
    return (
        0.5 + 0.35 * np.sin(2 * np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]) + 0.1 * np.cos(3 * np.pi * x[:, 1])
    )


#: ladder -> (cheap rung, top rung), noise-free
LADDERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "depolar": (ideal, lambda x: 0.5 + 0.7 * (ideal(x) - 0.5)),
    "bias": (lambda x: ideal(x) + 0.12 * np.cos(3 * np.pi * x[:, 0] + 1) - 0.05, ideal),
    "sharper": (lambda x: 0.5 + 0.7 * (ideal(x) - 0.5) + 0.05, ideal),
}


def trial(
    ladder: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]], n: int, seed: int
) -> dict[str, tuple[float, float, float]]:
    """One synthetic ladder: ``n`` points on the cheap rung, the best 20 % promoted. Values are
    maximized; the models minimize their negation."""
    low, top = ladder
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    y_low = low(X) + rng.normal(0, LOW_SD, n)
    promoted = np.argsort(-y_low)[: max(2, int(SHARE * n))]
    y_top = top(X[promoted]) + rng.normal(0, TOP_SD, len(promoted))
    others = np.setdiff1d(np.arange(n), promoted)
    truth = top(X[others])
    out = {}
    for name, predict in (
        ("cokriging", _cokriging),
        ("fid_input", _fidelity_input),
        ("top_only", _top_only),
    ):
        mean, var = predict(X, -y_low, promoted, -y_top, X[others])
        mean, sd = -mean, np.sqrt(var + TOP_SD**2)
        rmse = float(np.sqrt(np.mean((mean - truth) ** 2)))
        nlpd = float(np.mean(0.5 * np.log(2 * np.pi * sd**2) + 0.5 * ((truth - mean) / sd) ** 2))
        regret = float(truth.max() - truth[int(np.argmax(mean))])
        out[name] = (rmse, nlpd, regret)
    return out


def _cokriging(X, y_low, promoted, y_top, U):  # type: ignore[no-untyped-def]
    rung = np.r_[np.zeros(len(X), int), np.ones(len(promoted), int)]
    model = CoKriging(np.vstack([X, X[promoted]]), rung, np.r_[y_low, y_top])
    return model.raw(*model.predict(U))


def _fidelity_input(X, y_low, promoted, y_top, U):  # type: ignore[no-untyped-def]
    F = np.r_[np.zeros(len(X)), np.ones(len(promoted))]
    y = np.r_[y_low, y_top]
    center, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    post = fit_posterior(np.column_stack([np.vstack([X, X[promoted]]), F]), (y - center) / scale)
    mean, var = post.predict(np.column_stack([U, np.ones(len(U))]))
    return mean * scale + center, var * scale**2


def _top_only(X, y_low, promoted, y_top, U):  # type: ignore[no-untyped-def]
    center, scale = float(np.mean(y_top)), float(np.std(y_top)) or 1.0
    post = fit_posterior(X[promoted], (y_top - center) / scale)
    mean, var = post.predict(U)
    return mean * scale + center, var * scale**2


# -- autoregressive co-kriging (Kennedy and O'Hagan), fitted recursively (Le Gratiet and Garnier) --
#
# f_k(x) = rho_k f_{k-1}(x) + delta_k(x): GP_0 on the cheap rung; for each higher rung, rho (profiled
# over a grid by the discrepancy GP's MAP objective, prior N(1, 0.5^2)) and a GP on what is left.
# A ladder's design is nested (a point reaches rung k only through k - 1), which makes this exact.

_RHO_GRID = np.linspace(0.2, 1.6, 15)
_RHO_SD = 0.5  # prior sd of rho around 1
_MIN_FIT = 3  # results a rung needs before its discrepancy gets a GP of its own


@dataclass(frozen=True)
class _Level:
    rho: float
    offset: float
    delta: Posterior | None  # None: too few results for a discrepancy GP (offset only)


class CoKriging:
    """The joint model of a ladder's rungs, in standardized units (to minimize).

    Args:
        X: ``(n, d)`` encoded points.
        rung: ``(n,)`` the rung each result ran on (0 first).
        y: ``(n,)`` values to minimize (raw units; standardized here on the first rung's).
        noise: ``(n,)`` known noise variances in raw units (0 when unknown).
    """

    def __init__(
        self, X: np.ndarray, rung: np.ndarray, y: np.ndarray, noise: np.ndarray | None = None
    ) -> None:
        rung = np.asarray(rung, dtype=int)
        noise = np.zeros(len(y)) if noise is None else np.asarray(noise, dtype=float)
        first = y[rung == 0]
        self.center = float(np.mean(first)) if len(first) else 0.0
        spread = float(np.std(first)) if len(first) > 1 else 1.0
        self.scale = spread if spread > 1e-12 else 1.0
        z, zn = (y - self.center) / self.scale, noise / self.scale**2
        at = rung == 0
        self.base = fit_posterior(X[at], z[at], known_noise=zn[at])
        self.levels: list[_Level] = []
        for k in range(1, int(rung.max(initial=0)) + 1):
            at = rung == k
            self.levels.append(self._level(X[at], z[at], zn[at]))

    @property
    def top(self) -> int:
        """The highest rung with results."""
        return len(self.levels)

    def _level(self, X: np.ndarray, z: np.ndarray, zn: np.ndarray) -> _Level:
        if not len(z):
            return _Level(1.0, 0.0, None)
        below, _ = self.predict(X, len(self.levels))
        if len(z) < _MIN_FIT:  # too few to fit a slope: the rung below, shifted
            return _Level(1.0, float(np.mean(z - below)), None)
        # rho profiled out: the discrepancy GP's MAP objective over a grid of slopes, plus a
        # Gaussian prior pulling rho towards 1 (a clustered nested design hardly pins it down)
        best: tuple[float, float, float, Posterior] | None = None
        for rho in _RHO_GRID:
            # the offset taken out first: the GP's own constant mean is shrunk towards 0
            shift = float(np.mean(z - rho * below))
            post = fit_posterior(X, z - rho * below - shift, known_noise=zn)
            value = _objective(post) + 0.5 * ((rho - 1.0) / _RHO_SD) ** 2
            if best is None or value < best[0]:
                best = (value, rho, shift, post)
        assert best is not None
        return _Level(float(best[1]), best[2], best[3])

    def predict(self, U: np.ndarray, rung: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance at ``U`` on ``rung`` (default: the highest with results), standardized."""
        rung = self.top if rung is None else min(rung, self.top)
        mean, var = self.base.predict(U)
        assert var is not None
        for level in self.levels[:rung]:
            mean, var = level.rho * mean + level.offset, level.rho**2 * var
            if level.delta is not None:
                dm, dv = level.delta.predict(U)
                assert dv is not None
                mean, var = mean + dm, var + dv
        return mean, var

    def raw(self, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardized moments back in the values' units."""
        return mean * self.scale + self.center, var * self.scale**2


def _objective(post: Posterior) -> float:
    """The MAP objective (negative log marginal likelihood less the log prior) of a fitted GP."""
    X, p = post.X, post.params
    D2 = (X.T[:, :, None] - X.T[:, None, :]) ** 2
    known = post.noise - p.noise
    return float(_neg_log_posterior(p.theta(), D2, post.y, known + 1e-10)[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="2 seeds, one size: does it still run?")
    args = parser.parse_args()
    seeds, sizes = (2, [20]) if args.smoke else (args.seeds, [30, 60])
    summary: dict[str, dict[str, float]] = {}
    print(f"{'ladder':8} {'n':>3} {'model':10} {'rmse':>7} {'nlpd':>7} {'regret':>7}  rmse/cok nlpd-cok")
    for ladder, pair in LADDERS.items():
        for n in sizes:
            runs = [trial(pair, n, seed) for seed in range(seeds)]
            med = {name: [float(np.median([r[name][j] for r in runs])) for j in range(3)] for name in runs[0]}
            for name, (rmse, nlpd, regret) in med.items():
                base = med["cokriging"]
                print(
                    f"{ladder:8} {n:3d} {name:10} {rmse:7.4f} {nlpd:7.3f} {regret:7.4f}"
                    f"  {rmse / base[0]:8.2f} {nlpd - base[1]:+8.3f}"
                )
            wins = sum(r["cokriging"][0] < r["fid_input"][0] for r in runs)
            print(f"{'':8} {'':3} cokriging beats fid_input on rmse in {wins}/{seeds} seeds")
            summary[f"{ladder}_{n}"] = {
                f"{name}_{metric}": round(value, 4)
                for name, values in med.items()
                for metric, value in zip(("rmse", "nlpd", "regret"), values, strict=True)
                if math.isfinite(value)
            }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
