"""The softmax cross-entropy row (W8) against its floor, its two matrix products alone:
`python bench/softmax_row.py [--reps N]`.

Prints the median time per call of the two products (X W and X^T G through NumPy's BLAS, operands
prepared), the hand-written NumPy gradient, jitgrad's gradient and jax.jit(jax.grad) when JAX is
installed, each with its ratio to the two products, timed interleaved in one process, one thread
(wall time; `--cpu-time`: the process's CPU time).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()   # before numpy is imported anywhere


def calls(mode):
    """{name: zero-argument call} for the row's implementations and its floor."""
    import numpy as np

    import jitgrad
    from bench.workloads import w8_softmax
    W, b, X, Y = args = w8_softmax.inputs(mode)
    G = np.random.default_rng(0).normal(size=(X.shape[0], W.shape[1]))     # a logits-shaped cotangent
    grad = jitgrad.jit_grad(w8_softmax.softmax_xent, argnums=(0, 1))
    grad(*args)
    jitgrad.wait_compiled()
    out = {"two matrix products": lambda: (X @ W, X.T @ G),
           "numpy (hand)": lambda: w8_softmax.softmax_xent_grad(*args),
           "jitgrad": lambda: grad(*args)}
    try:
        import jax
    except ImportError:
        return out
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from bench.peers import rebind
    jgrad = jax.jit(jax.grad(rebind(w8_softmax.softmax_xent, jnp), argnums=(0, 1)))
    jargs = [jnp.asarray(a) for a in args]
    out["jax.jit(grad)"] = lambda: jax.block_until_ready(jgrad(*jargs))
    out["jax.jit(grad)"]()
    return out


def main(argv=None):
    """Time the row and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--tiny", action="store_const", dest="mode", const="tiny", default="quick",
                        help="the tiny sizes (a smoke test)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time in the process's CPU time (steadier on a shared machine; counts JAX's threads)")
    args = parser.parse_args(argv)
    import time
    from bench.timing import interleaved
    clock = time.process_time if args.cpu_time else time.perf_counter
    timed = interleaved(calls(args.mode), args.reps, target_s=0.05, budget_s=20.0, clock=clock)
    floor = timed["two matrix products"]["median_s"]
    for name, t in timed.items():
        print(f"{name:22s} {t['median_s'] * 1e3:9.3f} ms   {t['median_s'] / floor:5.2f}x the two products")
    return timed


if __name__ == "__main__":
    main()
