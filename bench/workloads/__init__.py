"""The workload registry: each wN_*.py module describes its cases for the tiny, quick and full modes.

A Case bundles one objective (plain NumPy, differentiated by every implementation), its seeded inputs,
which arguments are differentiated, the hand-written NumPy gradient (the reference), the numba gradient
and the C gradient (source file in bench/c and a ctypes binder).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

MODES = ("tiny", "quick", "full")


@dataclass
class Case:
    """One benchmark case: an objective applied to concrete inputs."""
    workload: str                     # "W1" .. "W8"
    name: str                         # e.g. "pendulum n=100"
    objective: Callable               # plain NumPy; returns a scalar
    args: tuple                       # positional arguments (arrays, floats, static ints)
    argnums: Any                      # int or tuple of ints, as in jax.grad
    grad_numpy: Callable              # hand-written gradient, same signature as objective
    grad_numba: Optional[Callable] = None   # plain Python function, njit'd by the numba peer
    c_source: Optional[str] = None    # file name in bench/c
    c_binder: Optional[Callable] = None     # (lib, args) -> zero-argument call returning the gradient
    scale: Optional[int] = None       # trip count or size, for scaling curves
    trace_grows: bool = False         # True if the traced program grows with scale (unrolled loops)
    tags: tuple = field(default=())   # "main", "scaling"

    @property
    def label(self):
        """Workload id and case name, as printed in tables."""
        return f"{self.workload} {self.name}"

    def static_argnums(self):
        """Positions of Python ints and bools: static (compile-time) arguments for jax and jitgrad."""
        return tuple(i for i, a in enumerate(self.args) if isinstance(a, (bool, int)))


def _modules():
    from . import w1_pendulum, w1_rosenbrock, w2_mlp, w3_elementwise, w4_overhead, w6_logreg, w7_gmm, w8_softmax
    return (w1_pendulum, w1_rosenbrock, w2_mlp, w3_elementwise, w4_overhead, w6_logreg, w7_gmm, w8_softmax)


def main_cases(mode, only=None):
    """The cases of the main table for `mode`, restricted to the workload ids in `only` if given."""
    cases = [c for m in _modules() for c in m.cases(mode)]
    return [c for c in cases if only is None or c.workload in only]


def scaling_cases(mode, only=None):
    """Scaling sweeps: {series name: [cases in increasing size]} (W1 pendulum steps, W3 size)."""
    from . import w1_pendulum, w3_elementwise
    sweeps = {"W1 pendulum steps": w1_pendulum.scaling(mode), "W3 elements": w3_elementwise.scaling(mode)}
    return {k: v for k, v in sweeps.items() if v and (only is None or v[0].workload in only)}
