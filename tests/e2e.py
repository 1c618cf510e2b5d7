"""End-to-end helper: check `jit_grad`'s gradient of a plain Python function against central finite
differences of the same function run by CPython, through the project's one gradient checker."""
import numpy as np

import jitgrad
from gradcheck import check_vjp
from jitgrad.pytree import flatten, unflatten


def assert_grad(fn, *args, argnums=0, jit=None, seed=0, grad_fn=None, **kwargs):
    """Gradient of fn w.r.t. `argnums` (int or tuple) via jit_grad equals finite differences; returns it.

    Arguments may be pytrees of arrays and floats; fn is evaluated natively (by CPython) for the finite
    differences, so this also checks that jitgrad computes what the unmodified code computes.  `grad_fn`:
    an existing jit_grad(fn, argnums=<tuple>) to call (its cache), instead of a new one.
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    grad_fn = grad_fn or jitgrad.jit_grad(fn, argnums=nums, jit=jit)
    grads = grad_fn(*args, **kwargs)
    trees = [flatten(args[a]) for a in nums]
    flat_args = [np.asarray(leaf, dtype=np.float64) if isinstance(leaf, float) else np.asarray(leaf)
                 for leaves, _ in trees for leaf in leaves]

    def rebuild(flat):
        out, k = list(args), 0
        for a, (leaves, treedef) in zip(nums, trees):
            vals = [type(leaf)(v) if isinstance(leaf, float) else v
                    for leaf, v in zip(leaves, flat[k:k + len(leaves)])]
            out[a] = unflatten(treedef, vals)
            k += len(leaves)
        return out

    def f(flat):
        return np.asarray(fn(*rebuild(flat), **kwargs), dtype=np.float64)

    flat_grads = [np.asarray(leaf) for g in grads for leaf in flatten(g)[0]]

    def vjp(flat, cotangents):
        u = np.asarray(cotangents[0] if isinstance(cotangents, (list, tuple)) else cotangents)
        return [u * g for g in flat_grads]

    check_vjp(f, vjp, flat_args, np.random.default_rng(seed))
    for g, (leaves, treedef) in zip(grads, trees):
        for leaf, gl in zip(leaves, flatten(g)[0]):
            assert type(gl) is type(leaf) or isinstance(leaf, np.ndarray) and isinstance(gl, np.ndarray)
            assert np.shape(gl) == np.shape(leaf)
            assert np.asarray(gl).dtype == np.asarray(leaf).dtype
    return grads if isinstance(argnums, tuple) else grads[0]


def assert_grad_cached(fn, first, second, argnums=0, traces=1):
    """assert_grad on the argument tuples `first` (traced) and then `second` (the same signature) through
    one jit_grad function (returned: it gives a tuple of gradients); `traces` is how many traces that takes
    (1: the second call is a cache hit)."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    grad_fn = jitgrad.jit_grad(fn, argnums=nums)
    for args in (first, second):
        assert_grad(fn, *args, argnums=argnums, grad_fn=grad_fn)
    info = grad_fn.cache_info()
    assert (info.traces, info.hits) == (traces, 2 - traces), info
    return grad_fn
