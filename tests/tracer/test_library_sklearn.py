"""scikit-learn as it ships (issue 12): metrics, the Gaussian process likelihood, the Huber loss and a
Gaussian mixture's score, differentiated by jitgrad.  Labels and fitted models are read from closures
(labels are traced integer inputs: scikit-learn's label handling runs on their guarded values).
Gradients against finite differences on a first (traced) and a second (cached) call."""
import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.linear_model._huber import _huber_loss_and_gradient
from sklearn.metrics import log_loss, mean_squared_error, r2_score
from sklearn.mixture import GaussianMixture

import jitgrad
from e2e import assert_grad, assert_grad_cached

RNG = np.random.default_rng(7)
LABELS = np.array([0, 1, 1, 0, 1, 0])
TARGETS = RNG.normal(size=6)
PROBABILITIES = np.array([0.2, 0.7, 0.6, 0.4, 0.8, 0.3])


METRICS = {
    "log_loss": (lambda p: log_loss(LABELS, p), PROBABILITIES),
    "log_loss_two_columns": (lambda p: log_loss(LABELS, np.stack([1 - p, p], axis=1)), PROBABILITIES),
    "r2_score": (lambda y: r2_score(TARGETS, y), TARGETS + RNG.normal(size=6) * 0.3),
    "mean_squared_error": (lambda y: mean_squared_error(TARGETS, y), TARGETS * 0.5),
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric(name):
    fn, x = METRICS[name]
    assert_grad_cached(fn, (x,), (np.clip(x * 1.1, 0.05, 0.95) if "log" in name else x * 1.1,))


def test_log_loss_labels_are_guarded():
    g = jitgrad.jit_grad(lambda p, y: log_loss(y, p), argnums=(0,))
    assert_grad(lambda p, y: log_loss(y, p), PROBABILITIES, LABELS, grad_fn=g)
    assert_grad(lambda p, y: log_loss(y, p), PROBABILITIES, 1 - LABELS, grad_fn=g)    # other labels: retraced
    assert g.cache_info().traces == 2


def test_gaussian_process_log_marginal_likelihood():
    X, y = RNG.normal(size=(8, 2)), RNG.normal(size=8)
    gp = GaussianProcessRegressor(kernel=RBF(1.0) + WhiteKernel(0.1), optimizer=None).fit(X, y)
    theta = gp.kernel_.theta
    assert_grad_cached(gp.log_marginal_likelihood, (theta,), (theta + 0.1,))


def test_huber_regressor_loss():
    X, y = RNG.normal(size=(10, 3)), RNG.normal(size=10)
    weights = np.ones(10)

    def loss(w):
        return _huber_loss_and_gradient(w, X, y, 1.35, 0.01, weights)[0]
    w = np.concatenate([RNG.normal(size=3) * 0.3, [0.1, 1.2]])     # coefficients, intercept, scale
    g = assert_grad_cached(loss, (w,), (w * 1.01,))
    np.testing.assert_allclose(g(w)[0], _huber_loss_and_gradient(w, X, y, 1.35, 0.01, weights)[1], rtol=1e-10)


def test_gaussian_mixture_score():
    gm = GaussianMixture(2, random_state=0).fit(RNG.normal(size=(40, 2)))
    x = RNG.normal(size=(5, 2))
    assert_grad_cached(gm.score, (x,), (x * 0.9,))
