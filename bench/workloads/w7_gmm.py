"""W7: the Gaussian-mixture objective of ADBench (Srajer, Kukelova, Fitzgibbon 2018), small size.

Parameters as in ADBench: alphas (k), means (k, d), icf (k, d + d(d-1)/2): log of the diagonal of each
inverse-covariance factor Q, then its strictly lower part column by column. The lower part is placed
into (d, d) matrices with a constant 0/1 `placement` matrix (so every peer needs only matmul), and the
terms that do not depend on the parameters (-n d/2 log 2 pi and the Wishart normalizer) are one `const`.
Gradient w.r.t. alphas, means, icf.
"""
import math

import numpy as np

from . import Case
from ..cbuild import bind, outputs_like


def gmm_objective(alphas, means, icf, x, placement, wishart_gamma, wishart_m, const):
    """Objective: negative-free GMM log-likelihood plus Wishart prior, as ADBench's gmm_objective."""
    k, d = means.shape
    n = x.shape[0]
    log_diag = icf[:, :d]
    q_diag = np.exp(log_diag)
    lower = np.reshape(icf[:, d:] @ placement, (k, d, d))
    xc = x[None, :, :] - means[:, None, :]
    y = q_diag[:, None, :] * xc + xc @ np.swapaxes(lower, 1, 2)
    sum_qs = np.sum(log_diag, axis=1)
    inner = (alphas + sum_qs)[:, None] - 0.5 * np.sum(y * y, axis=2)
    top = np.max(inner, axis=0)
    slse = np.sum(np.log(np.sum(np.exp(inner - top), axis=0)) + top)
    top_alpha = np.max(alphas)
    lse_alphas = np.log(np.sum(np.exp(alphas - top_alpha))) + top_alpha
    frobenius = np.sum(q_diag * q_diag) + np.sum(icf[:, d:] ** 2)
    prior = 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m * np.sum(sum_qs)
    return const + slse - n * lse_alphas + prior


def gmm_grad(alphas, means, icf, x, placement, wishart_gamma, wishart_m, const):
    """Hand-written NumPy gradient (alphas, means, icf)."""
    k, d = means.shape
    n = x.shape[0]
    q_diag = np.exp(icf[:, :d])
    lower = np.reshape(icf[:, d:] @ placement, (k, d, d))
    xc = x[None, :, :] - means[:, None, :]
    y = q_diag[:, None, :] * xc + xc @ np.swapaxes(lower, 1, 2)
    inner = (alphas + np.sum(icf[:, :d], axis=1))[:, None] - 0.5 * np.sum(y * y, axis=2)
    top = np.max(inner, axis=0)
    resp = np.exp(inner - top)
    resp /= np.sum(resp, axis=0)                       # (k, n) responsibilities
    weights = np.exp(alphas - np.max(alphas))
    g_alphas = np.sum(resp, axis=1) - n * weights / np.sum(weights)
    g_y = -resp[:, :, None] * y
    g_xc = g_y * q_diag[:, None, :] + g_y @ lower
    g_log_diag = (np.sum(g_y * xc, axis=1) * q_diag + np.sum(resp, axis=1)[:, None]
                  + wishart_gamma ** 2 * q_diag ** 2 - wishart_m)
    g_lower = np.reshape(np.swapaxes(g_y, 1, 2) @ xc, (k, d * d)) @ placement.T
    g_icf = np.concatenate([g_log_diag, g_lower + wishart_gamma ** 2 * icf[:, d:]], axis=1)
    return g_alphas, -np.sum(g_xc, axis=1), g_icf


def gmm_grad_loops(alphas, means, icf, x, placement, wishart_gamma, wishart_m, const):
    """The same gradient as explicit loops over components, points and coordinates (for numba)."""
    k, d = means.shape
    n = x.shape[0]
    g_alphas = np.zeros(k)
    g_means = np.zeros((k, d))
    g_icf = np.zeros(icf.shape)
    inner = np.empty((k, n))
    xc = np.empty((k, n, d))
    y = np.empty((k, n, d))
    for j in range(k):
        for i in range(n):
            sq = 0.0
            for r in range(d):
                xc[j, i, r] = x[i, r] - means[j, r]
            for r in range(d):
                acc = np.exp(icf[j, r]) * xc[j, i, r]
                for c in range(r):
                    acc += icf[j, d + c * d - c * (c + 1) // 2 + r - c - 1] * xc[j, i, c]
                y[j, i, r] = acc
                sq += acc * acc
            inner[j, i] = alphas[j] - 0.5 * sq
        for r in range(d):
            inner[j, :] += icf[j, r]
    for i in range(n):
        top = inner[0, i]
        for j in range(1, k):
            top = max(top, inner[j, i])
        total = 0.0
        for j in range(k):
            inner[j, i] = np.exp(inner[j, i] - top)
            total += inner[j, i]
        for j in range(k):
            inner[j, i] /= total                        # now the responsibility of j for point i
    top_alpha = np.max(alphas)
    alpha_total = np.sum(np.exp(alphas - top_alpha))
    for j in range(k):
        for i in range(n):
            w = inner[j, i]
            g_alphas[j] += w
            for r in range(d):
                g_icf[j, r] += w
                g_y = -w * y[j, i, r]
                q = np.exp(icf[j, r])
                g_icf[j, r] += g_y * xc[j, i, r] * q
                g_means[j, r] -= g_y * q
                for c in range(r):
                    idx = d + c * d - c * (c + 1) // 2 + r - c - 1
                    g_means[j, c] -= g_y * icf[j, idx]
                    g_icf[j, idx] += g_y * xc[j, i, c]
        g_alphas[j] -= n * np.exp(alphas[j] - top_alpha) / alpha_total
        for r in range(d):
            g_icf[j, r] += wishart_gamma ** 2 * np.exp(2.0 * icf[j, r]) - wishart_m
        for idx in range(d, icf.shape[1]):
            g_icf[j, idx] += wishart_gamma ** 2 * icf[j, idx]
    return g_alphas, g_means, g_icf


def _c_binder(lib, args):
    alphas, means, icf, x, _placement, wishart_gamma, wishart_m, _const = args
    grads = outputs_like(alphas, means, icf)
    k, d = means.shape
    work = np.zeros(k * x.shape[0] * (2 * d + 1))
    return bind(lib, "gmm_grad", alphas, means, icf, x, k, d, x.shape[0], wishart_gamma, wishart_m,
                *grads, work, result=grads)


def placement_matrix(d):
    """0/1 matrix P with (icf[:, d:] @ P).reshape(d, d) = the strictly lower factor, ADBench order."""
    placement = np.zeros((d * (d - 1) // 2, d * d))
    idx = 0
    for c in range(d):
        for r in range(c + 1, d):
            placement[idx, r * d + c] = 1.0
            idx += 1
    return placement


def constant_term(n, d, k, wishart_gamma, wishart_m):
    """-n d/2 log(2 pi) minus k times the Wishart normalizer, as in ADBench."""
    dof = d + wishart_m + 1
    log_multigamma = 0.25 * d * (d - 1) * math.log(math.pi) + sum(
        math.lgamma(0.5 * dof + 0.5 * (1 - j)) for j in range(1, d + 1))
    normalizer = dof * d * (math.log(wishart_gamma) - 0.5 * math.log(2.0)) - log_multigamma
    return -n * d * 0.5 * math.log(2.0 * math.pi) - k * normalizer


def cases(mode):
    """d=10, k=25, n=1000 (d=3, k=4, n=20 in tiny mode); seeded like ADBench's generator."""
    d, k, n = (3, 4, 20) if mode == "tiny" else (10, 25, 1000)
    rng = np.random.default_rng(7)
    alphas = rng.normal(size=k)
    means = rng.random((k, d))
    icf = 0.5 * rng.normal(size=(k, d + d * (d - 1) // 2))
    x = rng.random((n, d))
    gamma, m = 1.0, 0.0
    args = (alphas, means, icf, x, placement_matrix(d), gamma, m, constant_term(n, d, k, gamma, m))
    return [Case("W7", f"gmm d={d} k={k} n={n}", gmm_objective, args, (0, 1, 2), gmm_grad,
                 grad_numba=gmm_grad_loops, c_source="w7_gmm.c", c_binder=_c_binder, scale=n,
                 tags=("main",))]
