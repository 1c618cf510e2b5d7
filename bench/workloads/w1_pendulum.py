"""W1a: explicit Euler integration of a damped pendulum, a scalar Python loop (4 parameters).

State (theta, omega); parameters p = (g/l, damping, theta0, omega0); loss = dt * sum of theta_t**2.
"""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like

DT = 0.01


def pendulum(p, steps):
    """Objective: integrate for `steps` Euler steps and return dt * sum(theta**2)."""
    g_over_l, damping, theta, omega = p[0], p[1], p[2], p[3]
    loss = 0.0
    for _ in range(steps):
        theta, omega = theta + DT * omega, omega - DT * (g_over_l * np.sin(theta) + damping * omega)
        loss = loss + theta * theta
    return loss * DT


def pendulum_grad(p, steps):
    """Hand-written adjoint: forward sweep storing the states, backward sweep of the adjoints."""
    g_over_l, damping = p[0], p[1]
    thetas = np.empty(steps + 1)
    omegas = np.empty(steps + 1)
    thetas[0], omegas[0] = p[2], p[3]
    for t in range(steps):
        thetas[t + 1] = thetas[t] + DT * omegas[t]
        omegas[t + 1] = omegas[t] - DT * (g_over_l * np.sin(thetas[t]) + damping * omegas[t])
    lam_theta = 2.0 * DT * thetas[steps]
    lam_omega = 0.0
    g_a = 0.0
    g_b = 0.0
    for t in range(steps - 1, -1, -1):
        g_a -= lam_omega * DT * np.sin(thetas[t])
        g_b -= lam_omega * DT * omegas[t]
        new_theta = lam_theta - lam_omega * DT * g_over_l * np.cos(thetas[t])
        lam_omega = lam_theta * DT + lam_omega * (1.0 - DT * damping)
        lam_theta = new_theta + (2.0 * DT * thetas[t] if t > 0 else 0.0)
    out = np.empty(4)
    out[0], out[1], out[2], out[3] = g_a, g_b, lam_theta, lam_omega
    return out


def _c_binder(lib, args):
    p, steps = args
    (g,) = outputs_like(p)
    return bind(lib, "pendulum_grad", p, steps, g, result=g)


def make_case(steps, tags=("main",)):
    """The pendulum case with `steps` Euler steps and fixed parameters."""
    p = np.array([9.81, 0.3, 1.0, 0.0])
    return Case("W1", f"pendulum n={steps}", pendulum, (p, steps), 0, pendulum_grad,
                grad_numba=pendulum_grad, c_source="w1_pendulum.c", c_binder=_c_binder,
                scale=steps, trace_grows=True, tags=tags)


def cases(mode):
    """Main-table cases: 100 and 1000 steps (10 in tiny mode)."""
    return [make_case(n) for n in ((10,) if mode == "tiny" else (100, 1000))]


def scaling(mode):
    """Scaling sweep over the trip count."""
    steps = {"tiny": (10, 20), "quick": (10, 100, 1000), "full": (10, 100, 1000, 10000, 100000)}[mode]
    return [make_case(n, tags=("scaling",)) for n in steps]
