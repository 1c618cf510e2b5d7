"""The implementations compared, one adapter per peer, in one table keyed by name.

Every adapter turns a Case into a Prepared: `call()` computes the gradient once on the case's inputs
(synchronously), `leaves(result)` turns that result into a flat list of NumPy arrays in the order of
the reference gradient's leaves. Peers with their own numpy module run the workload's own objective
with that module bound in place of `np` (see `rebind`).
"""
import importlib.util
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import cbuild
from .trees import flatten, map_leaves


@dataclass
class Prepared:
    """A ready-to-time gradient: call() -> raw result; leaves(raw) -> list of NumPy arrays."""
    call: Callable
    leaves: Callable = lambda result: [np.array(leaf) for leaf in flatten(result)]
    note: str = ""


class NotApplicable(Exception):
    """The peer has no implementation of this case (e.g. no hand-written gradient)."""


def rebind(fn, module, name="np"):
    """`fn` (and every function of its module it calls) with `name` bound to `module` in its globals."""
    namespace = dict(fn.__globals__)
    namespace[name] = module
    for key, value in fn.__globals__.items():
        if isinstance(value, types.FunctionType) and value.__globals__ is fn.__globals__:
            namespace[key] = types.FunctionType(value.__code__, namespace, value.__name__,
                                                value.__defaults__, value.__closure__)
    return namespace[fn.__name__]


def _argnum_tuple(case):
    return case.argnums if isinstance(case.argnums, tuple) else (case.argnums,)


def prepare_numpy(case):
    """The hand-written NumPy gradient: the reference every other row is checked against."""
    return Prepared(lambda: case.grad_numpy(*case.args))


def prepare_numba(case):
    """The case's numba gradient (a plain function), compiled with a fresh njit dispatcher."""
    import numba
    if case.grad_numba is None:
        raise NotApplicable("no numba gradient written")
    compiled = numba.njit(case.grad_numba)
    return Prepared(lambda: compiled(*case.args),
                    note="" if case.grad_numba is case.grad_numpy else "explicit loops")


def prepare_c(case):
    """The hand-written C gradient, compiled by cbuild and bound through ctypes (pointers cached)."""
    if case.c_source is None:
        raise NotApplicable("no C gradient written")
    return Prepared(case.c_binder(cbuild.load(case.c_source), case.args))


def prepare_autograd(case):
    """autograd.grad of the objective with autograd.numpy bound as np."""
    import autograd
    import autograd.numpy as anp
    grad = autograd.grad(rebind(case.objective, anp), case.argnums)
    return Prepared(lambda: grad(*case.args))


def prepare_jax(case):
    """jax.jit(jax.grad(f)) with jax.numpy bound as np, x64 on, ints static; inputs on device."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    static = case.static_argnums()
    grad = jax.jit(jax.grad(rebind(case.objective, jnp), argnums=case.argnums), static_argnums=static)
    args = tuple(a if i in static else map_leaves(jnp.asarray, a) for i, a in enumerate(case.args))
    return Prepared(lambda: jax.block_until_ready(grad(*args)))


def _torch_gradient(case, compile_fn):
    import torch
    from . import torch_np
    arrays = tuple(map_leaves(lambda a: torch.from_numpy(a) if isinstance(a, np.ndarray) else a, arg)
                   for arg in case.args)
    wrt = _argnum_tuple(case)
    args = tuple(map_leaves(lambda t: t.detach().clone().requires_grad_(True), a) if i in wrt else a
                 for i, a in enumerate(arrays))
    leaves = [leaf for i in wrt for leaf in flatten(args[i])]

    def gradient_of(fn):
        return lambda: torch.autograd.grad(fn(*args), leaves)
    note = ""
    try:
        direct = gradient_of(rebind(case.objective, torch))
        direct()
        objective = rebind(case.objective, torch)
    except Exception:   # the NumPy-named call failed on torch itself: use the thin shim
        objective = rebind(case.objective, torch_np)
        note = "np bound to shim bench/torch_np.py"
    return Prepared(gradient_of(compile_fn(objective)), lambda grads: [g.numpy() for g in grads], note)


def prepare_torch(case):
    """PyTorch eager, float64 tensors: torch.autograd.grad of the objective with torch bound as np."""
    return _torch_gradient(case, lambda fn: fn)


def prepare_torch_compile(case):
    """As prepare_torch, with the objective under torch.compile (dynamo caches reset per case)."""
    import torch
    torch._dynamo.reset()
    return _torch_gradient(case, torch.compile)


def prepare_jitgrad(case):
    """jitgrad.jit_grad(objective, argnums): the unmodified NumPy objective."""
    import jitgrad
    grad = jitgrad.jit_grad(case.objective, argnums=case.argnums)
    return Prepared(lambda: grad(*case.args))


# name -> (module that must be importable, adapter); the order is the table's order.
PEERS = {
    "numpy (hand)": ("numpy", prepare_numpy),
    "C (hand, limit)": ("numpy", prepare_c),
    "numba (hand)": ("numba", prepare_numba),
    "jitgrad": ("jitgrad", prepare_jitgrad),
    "jax.jit(grad)": ("jax", prepare_jax),
    "torch eager": ("torch", prepare_torch),
    "torch.compile": ("torch", prepare_torch_compile),
    "autograd": ("autograd", prepare_autograd),
}
# Peers whose first call is tried in a probe process with a hard timeout before the in-process run:
# XLA compiles and executes in C++, where the in-process alarm cannot interrupt it, and XLA's CPU
# fusion makes unrolled scalar loops (W1) exponentially slow (measured: 40 us at 10 steps, 12 s at 30).
PROBED = ("jax.jit(grad)",)
# Peers that trace the objective, so their one-off first-call cost grows with an unrolled loop's length.
TRACERS = ("jitgrad", "jax.jit(grad)", "torch.compile")
REFERENCE = "numpy (hand)"
LIMIT = "C (hand, limit)"
SHORT_NAMES = {"numpy": "numpy (hand)", "c": LIMIT, "numba": "numba (hand)", "jitgrad": "jitgrad",
               "jax": "jax.jit(grad)", "torch": "torch eager", "torch.compile": "torch.compile",
               "autograd": "autograd"}


def installed(name):
    """True if the module the peer needs can be imported."""
    return importlib.util.find_spec(PEERS[name][0]) is not None
