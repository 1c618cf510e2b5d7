"""Compiled code is freed with the functions that use it: modules join MCJIT engines in groups
(jit/engine.py EngineGroup), and a group's engine, with its machine code, is disposed of once no kernel
holds a module of it (a notebook redefining a function leaves the old kernels' code behind no more)."""
import gc

import numpy as np

import jitgrad
from jitgrad.jit import engine

X = np.linspace(0.0, 1.0, 20)


def _distinct(k):
    """A function whose compiled module differs from every other k's (the constant is in the code)."""
    scale = 1.5 + k

    def loss(x):
        return np.sum(np.tanh(x * scale) ** 2)
    return loss


def _grad(k, x):
    return 2 * np.tanh(x * (1.5 + k)) * (1 - np.tanh(x * (1.5 + k)) ** 2) * (1.5 + k)


def test_engines_of_dropped_functions_are_freed_and_live_ones_keep_working():
    keep = jitgrad.jit_grad(_distinct(-0.25))
    assert np.allclose(keep(X), _grad(-0.25, X))
    gc.collect()
    before = len(engine.EngineGroup.live)
    n = 3 * engine.GROUP_SIZE
    fns = [jitgrad.jit_grad(_distinct(k)) for k in range(n)]
    for k, g in enumerate(fns):
        assert np.allclose(g(X), _grad(k, X))
    names = {e.kernel._module.name for g in fns for entries in g._cache.entries.values() for e in entries}
    assert len(names) == n and all(name in engine._modules for name in names)
    assert len(engine.EngineGroup.live) >= before + 2
    del fns, g
    gc.collect()
    assert not any(name in engine._modules for name in names)
    assert len(engine.EngineGroup.live) <= before + 1     # at most the group new modules join
    assert np.allclose(keep(X * 0.5), _grad(-0.25, X * 0.5))   # its code was not freed with the others


def test_equal_modules_share_code_while_one_lives():
    first = jitgrad.jit_grad(_distinct(100.0))
    first(X)
    second = jitgrad.jit_grad(_distinct(100.0))
    assert np.allclose(second(X), _grad(100.0, X))
    assert second.cache_info().paths[0].machine_code in ("memory", "disk")
    del first
    gc.collect()
    assert np.allclose(second(X * 2.0), _grad(100.0, X * 2.0))
