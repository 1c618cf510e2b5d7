"""digamma and polygamma of real arguments in NumPy, the evaluation of the `polygamma` op while SciPy is not
loaded (the derivatives of math.lgamma and math.gamma: a program using only `math` never imports SciPy).

psi^(n)(x) is shifted up by the recurrence psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! / x^(n+1) until
x >= 10 + 2n, where the asymptotic series (DLMF 5.11.2, 5.15.8) with seven Bernoulli terms is accurate to
a few ulps; digamma of x < 0 uses the reflection psi(x) = psi(1 - x) - pi / tan(pi x) first.  Poles (0, -1,
-2, ...) give NaN for digamma (as SciPy) and +-inf or NaN for higher orders as the recurrence does.
"""
import math

import numpy as np

_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)     # B_2, B_4, ..., B_14


def _asymptotic(n, x):
    """psi^(n)(x) for large x by the asymptotic series."""
    if n == 0:
        total = np.log(x) - 0.5 / x
        for k, b2k in enumerate(_BERNOULLI, start=1):
            total = total - b2k / (2 * k * x ** (2 * k))
        return total
    total = math.factorial(n - 1) / x ** n + math.factorial(n) / (2 * x ** (n + 1))
    for k, b2k in enumerate(_BERNOULLI, start=1):
        total = total + b2k * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / x ** (2 * k + n)
    return (-1) ** (n + 1) * total


def polygamma(n, x):
    """psi^(n)(x), elementwise, float64."""
    with np.errstate(all="ignore"):
        return _polygamma(n, np.asarray(x, dtype=np.float64))


def _polygamma(n, x):
    correction = np.zeros_like(x)
    if n == 0:
        negative = x < 0
        pole = (x <= 0) & (x == np.floor(x))
        correction = np.where(negative, -np.pi / np.tan(np.pi * x), 0.0)
        x = np.where(negative, 1 - x, x)
    threshold = 10.0 + 2 * n
    shift = np.where(np.isfinite(x), np.maximum(np.ceil(threshold - x), 0), 0)
    sign = (-1) ** n * math.factorial(n)
    for k in range(int(shift.max(initial=0))):
        correction = correction - np.where(k < shift, sign / (x + k) ** (n + 1), 0.0)
    result = _asymptotic(n, x + shift) + correction
    if n == 0:
        result = np.where(pole, np.nan, result)
    return result
