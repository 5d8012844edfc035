"""The GP model: the fitted constant mean, the hand-written likelihood gradient, tied length scales."""

from __future__ import annotations

import numpy as np

from orchestrator.optimizer._gp.model import (
    ISOTROPIC_PER_DIM,
    KernelParams,
    _neg_log_posterior,
    fit_kernel,
    fit_posterior,
)


def test_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((25, 3))
    y = np.sin(5 * X[:, 0]) + X[:, 1] ** 2
    y = (y - y.mean()) / y.std()
    D2 = (X.T[:, :, None] - X.T[:, None, :]) ** 2
    extra = np.full(len(y), 1e-10)
    theta = KernelParams(np.array([0.3, 0.5, 2.0]), 1.3, 1e-3).theta()
    _, grad, _ = _neg_log_posterior(theta, D2, y, extra)
    step = 1e-6
    numeric = [
        (_neg_log_posterior(theta + h, D2, y, extra)[0] - _neg_log_posterior(theta - h, D2, y, extra)[0])
        / (2 * step)
        for h in np.eye(len(theta)) * step
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_far_from_the_data_the_prediction_reverts_to_a_typical_value_not_the_sample_mean() -> None:
    # a cluster of good results around 0.2 (where an optimizer spends its runs) and a few poor
    # ones spread elsewhere: the sample mean is pulled down by the cluster
    rng = np.random.default_rng(1)
    cluster = 0.2 + 0.03 * rng.standard_normal((20, 2))
    spread = np.array([[0.8, 0.8], [0.5, 0.9], [0.9, 0.4], [0.6, 0.6], [0.3, 0.8]])
    X = np.vstack([cluster, spread])
    y = np.concatenate([np.full(20, -1.0) + 0.1 * np.sum((cluster - 0.2) ** 2, axis=1), np.full(5, 1.0)])
    y = (y - y.mean()) / y.std()
    post = fit_posterior(X, y)
    assert post.params.mean > 0.3  # the sample mean is 0: the cluster's 20 correlated results count less
    far, _ = post.predict(np.array([[1.0, 0.0]]))
    assert far[0] > 0.3
    # predictions at the data still interpolate
    mean, _ = post.predict(X)
    np.testing.assert_allclose(mean, y, atol=0.05)


def test_length_scales_are_tied_until_there_are_enough_points_per_dimension() -> None:
    # only the first column matters: an untied fit tells the columns apart, a tied one cannot
    rng = np.random.default_rng(2)
    dim = 4
    threshold = ISOTROPIC_PER_DIM * (dim + 1)

    def fit(n: int) -> np.ndarray:
        X = rng.random((n, dim))
        y = np.sin(6 * X[:, 0])
        return fit_kernel(X, (y - y.mean()) / y.std()).length_scales

    few = fit(threshold - 1)
    np.testing.assert_allclose(few, few[0])
    many = fit(threshold + 20)
    assert many[1:].min() > 3 * many[0]  # the irrelevant columns get long length scales
