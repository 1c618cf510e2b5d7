"""The transformation family side by side: jitgrad's jvp, vjp, jacobian (fwd and rev), hessian and hvp
against JAX (`jax.jit` of `jax.jvp`, `jax.vjp`, `jax.jacfwd`, `jax.jacrev`, `jax.hessian` and a jvp of
`jax.grad`, float64), PyTorch's `torch.func` (eager, float64) and autograd, next to hand-written
references where one exists (SciPy's `rosen_hess` / `rosen_hess_prod`, the numba-compiled forward of
the pendulum, jitgrad's own gradient for the hvp-to-gradient ratio).

    python bench/transforms.py [--reps 21] [--json bench/results/transforms.json] [--impls jitgrad,jax]

Every implementation differentiates the same plain-NumPy source (peers with their numpy module bound in
place of `np`, as in bench/peers.py).  Each result is checked against jitgrad's reference executor
(`jit=False`, the IR's definition) or the hand-written reference before it is timed; times are medians
of interleaved repeats (bench/timing.py), one BLAS/XLA thread.  Prints a Markdown table.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()

import numpy as np  # noqa: E402

from bench.peers import rebind  # noqa: E402
from bench.timing import interleaved  # noqa: E402
from bench.workloads.w1_pendulum import pendulum  # noqa: E402
from bench.workloads.w1_rosenbrock import rosenbrock as rosen_loop  # noqa: E402
from bench.workloads.w2_mlp import mlp_loss  # noqa: E402

STEPS = 1000
A = np.random.default_rng(3).normal(size=(100, 100)) / 10.0


def rosen(x):
    """SciPy's rosen, vectorized (the same formula as scipy.optimize.rosen)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def residuals(x):
    """A vector function R^100 -> R^100 (a matrix product, an elementwise nonlinearity)."""
    return np.tanh(A @ x) * x - 0.5 * x


def pendulum_1000(p):
    return pendulum(p, STEPS)


def mlp_params():
    from bench.workloads.w2_mlp import WIDTHS
    rng = np.random.default_rng(2)
    params = []
    for a, b in zip(WIDTHS[:-1], WIDTHS[1:]):
        params += [rng.normal(size=(a, b)) / np.sqrt(a), rng.normal(size=b) * 0.1]
    X, y = rng.normal(size=(256, WIDTHS[0])), rng.normal(size=256)
    return tuple(params), X, y


# -- the implementations: each row maker returns a zero-argument call giving a flat list of arrays ---------

def _flat(result):
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _flat(r)]
    return [np.asarray(result)]


def jitgrad_rows(case):
    import jitgrad
    f, args, v = case["f"], case["args"], case.get("v")
    kind = case["kind"]
    if kind == "jvp":
        return lambda: jitgrad.jvp(f, args, (v,))[1]
    if kind == "vjp":
        return lambda: jitgrad.vjp(f, *args)[1](case["ct"])
    if kind in ("jacfwd", "jacrev", "hessian"):
        fn = getattr(jitgrad, kind)(f)
        return lambda: fn(*args)
    if kind == "hvp":
        fn = jitgrad.hvp(f)
        return lambda: fn(*args, v)
    if kind == "grad":
        fn = jitgrad.jit_grad(f)
        return lambda: fn(*args)
    raise KeyError(kind)


def jax_rows(case):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    if case.get("jax_skip"):
        raise NotImplementedError(case["jax_skip"])
    f = _rebound(case, jnp)
    dev = lambda t: jax.tree_util.tree_map(jnp.asarray, t)   # noqa: E731
    args, kind = dev(case["args"]), case["kind"]
    v = dev(case.get("v"))
    if kind == "jvp":
        fn = jax.jit(lambda a, t: jax.jvp(f, a, (t,))[1])
        return lambda: jax.block_until_ready(fn(args, v))
    if kind == "vjp":
        fn = jax.jit(lambda a, ct: jax.vjp(f, *a)[1](ct))
        ct = dev(case["ct"])
        return lambda: jax.block_until_ready(fn(args, ct))
    if kind == "hvp":
        fn = jax.jit(lambda a, t: jax.jvp(lambda x: jax.grad(f)(x, *a[1:]), (a[0],), (t,))[1])
        return lambda: jax.block_until_ready(fn(args, v))
    transform = {"jacfwd": jax.jacfwd, "jacrev": jax.jacrev, "hessian": jax.hessian, "grad": jax.grad}[kind]
    fn = jax.jit(transform(f))
    return lambda: jax.block_until_ready(fn(*args))


def torch_rows(case):
    import torch
    import torch.func as tf
    from bench import torch_np
    f = _rebound(case, torch_np)
    to = lambda t: tuple(to(a) for a in t) if isinstance(t, tuple) else torch.from_numpy(np.asarray(t))  # noqa: E731
    args, kind, v = to(case["args"]), case["kind"], to(case["v"]) if "v" in case else None
    if kind == "jvp":
        return lambda: tf.jvp(f, args, (v,))[1].detach().numpy()
    if kind == "vjp":
        ct = to(case["ct"])
        return lambda: [c.detach().numpy() for c in tf.vjp(f, *args)[1](ct)]
    if kind == "hvp":
        grad = tf.grad(f)
        return lambda: _detach(tf.jvp(lambda x: grad(x, *args[1:]), (args[0],), (v,))[1])
    transform = {"jacfwd": tf.jacfwd, "jacrev": tf.jacrev, "hessian": tf.hessian, "grad": tf.grad}[kind]
    fn = transform(f)
    return lambda: _detach(fn(*args))


def _detach(t):
    return [x.detach().numpy() for x in t] if isinstance(t, tuple) else t.detach().numpy()


def autograd_rows(case):
    import autograd
    import autograd.numpy as anp
    f, kind, args, v = _rebound(case, anp), case["kind"], case["args"], case.get("v")
    if kind == "jvp":
        return lambda: autograd.make_jvp(f)(*args)(v)[1]
    if kind == "vjp":
        return lambda: autograd.make_vjp(f)(*args)[0](case["ct"])
    if kind == "hvp":
        fn = autograd.hessian_tensor_product(f)
        return lambda: fn(*args, v)
    transform = {"jacfwd": autograd.jacobian, "jacrev": autograd.jacobian, "hessian": autograd.hessian,
                 "grad": autograd.grad}[kind]
    fn = transform(f)
    return lambda: fn(*args)


def _rebound(case, module):
    """The case's function with `module` as its `np` (and A a tensor for torch)."""
    f = case["f"]
    if f is pendulum_1000:
        inner = rebind(pendulum, module)
        return lambda p: inner(p, STEPS)
    rebound = rebind(f, module)
    if f is residuals and module.__name__ == "bench.torch_np":
        import torch
        rebound.__globals__["A"] = torch.from_numpy(A)
    return rebound


def hand_rows(case):
    hand = case.get("hand")
    if hand is None:
        raise NotImplementedError("no hand-written reference")
    return hand


IMPLS = {"jitgrad": ("jitgrad", jitgrad_rows), "jax": ("jax", jax_rows), "torch.func": ("torch", torch_rows),
         "autograd": ("autograd", autograd_rows), "hand": (None, hand_rows)}


# -- the cases ----------------------------------------------------------------------------------------------

def cases():
    from scipy.optimize import rosen_hess, rosen_hess_prod
    rng = np.random.default_rng(1)
    x100, v100 = rng.normal(size=100), rng.normal(size=100)
    p = np.array([9.81, 0.3, 1.0, 0.0])
    params, X, y = mlp_params()
    v_params = tuple(rng.normal(size=w.shape) for w in params)
    numba_forward = _numba_forward()
    return [
        {"group": "jvp", "label": f"jvp pendulum {STEPS} steps, 4 params", "kind": "jvp", "f": pendulum_1000,
         "args": (p,), "v": np.array([1.0, -0.5, 0.25, 2.0]), "hand": numba_forward,
         "hand_name": "numba forward (no derivative)", "jax_skip": "XLA compile of the unrolled 1000-step loop "
         "> 120 s (W1 in RESULTS.md)", "check": False},
        {"group": "jvp", "label": f"grad pendulum {STEPS} steps", "kind": "grad", "f": pendulum_1000,
         "args": (p,), "jax_skip": "as above"},
        {"group": "vjp", "label": "vjp tanh(A x) x, n=100", "kind": "vjp", "f": residuals, "args": (x100,),
         "ct": v100},
        {"group": "jacobian", "label": "jacfwd tanh(A x) x, 100x100", "kind": "jacfwd", "f": residuals,
         "args": (x100,)},
        {"group": "jacobian", "label": "jacrev tanh(A x) x, 100x100", "kind": "jacrev", "f": residuals,
         "args": (x100,)},
        {"group": "hessian", "label": "hessian rosen n=100", "kind": "hessian", "f": rosen, "args": (x100,),
         "hand": lambda: rosen_hess(x100), "hand_name": "scipy rosen_hess"},
        {"group": "hvp", "label": "hvp rosen n=100", "kind": "hvp", "f": rosen, "args": (x100,), "v": v100,
         "hand": lambda: rosen_hess_prod(x100, v100), "hand_name": "scipy rosen_hess_prod"},
        {"group": "hvp", "label": "grad rosen n=100", "kind": "grad", "f": rosen, "args": (x100,)},
        {"group": "hvp", "label": "hvp Rosenbrock loop n=100", "kind": "hvp", "f": rosen_loop, "args": (x100,),
         "v": v100},
        {"group": "hvp", "label": "grad Rosenbrock loop n=100", "kind": "grad", "f": rosen_loop, "args": (x100,)},
        {"group": "hvp", "label": "hvp MLP 64-256-256-1, batch 256", "kind": "hvp", "f": mlp_loss,
         "args": (params, X, y), "v": v_params},
        {"group": "hvp", "label": "grad MLP 64-256-256-1, batch 256", "kind": "grad", "f": mlp_loss,
         "args": (params, X, y)},
    ]


def _numba_forward():
    import numba
    compiled = numba.njit(pendulum)
    p = np.array([9.81, 0.3, 1.0, 0.0])
    return lambda: compiled(p, STEPS)


def _reference(case):
    """What every implementation must return: jitgrad's transform on the reference executor."""
    import jitgrad
    kind, f, args = case["kind"], case["f"], case["args"]
    if kind == "jvp":
        from jitgrad.transforms import JvpFunction
        return _flat(JvpFunction(f, len(args), jit=False)(*args, case["v"])[1])
    if kind == "vjp":
        return _flat(jitgrad.jacrev(f, jit=False)(*args).T @ case["ct"])
    if kind == "hvp":
        return _flat(jitgrad.hvp(f, jit=False)(*args, case["v"]))
    if kind == "grad":
        return _flat(jitgrad.jit_grad(f, jit=False)(*args))
    return _flat(getattr(jitgrad, kind)(f, jit=False)(*args))


def _error(got, want):
    if len(got) != len(want) or any(np.shape(g) != np.shape(w) for g, w in zip(got, want)):
        return float("inf")
    scale = max(max(float(np.max(np.abs(w), initial=0)) for w in want), 1e-300)
    return max(float(np.max(np.abs(np.asarray(g, float) - w), initial=0)) for g, w in zip(got, want)) / scale


def run(selected, reps, target_s, budget_s):
    rows = []
    for case in cases():
        calls, meta = {}, {}
        want = _reference(case)
        for name in selected:
            module, maker = IMPLS[name]
            if module is not None and not _installed(module):
                meta[name] = {"status": "not installed"}
                continue
            try:
                start = time.perf_counter()
                call = maker(case)
                first_out = call()
                first = time.perf_counter() - start
                if name == "jitgrad":   # tiered: the timed calls start once the kernel is ready
                    import jitgrad
                    jitgrad.wait_compiled()
            except NotImplementedError as e:
                meta[name] = {"status": f"skipped: {e}"}
                continue
            except Exception as e:    # a peer that cannot run this case: say so, never time it
                meta[name] = {"status": f"failed: {type(e).__name__}: {str(e)[:80]}"}
                continue
            checked = not (name == "hand" and case.get("check") is False)
            err = _error(_flat(first_out), want) if checked else None
            if err is not None and not err <= 1e-7:
                meta[name] = {"status": f"wrong: error {err:.1e}"}
                continue
            calls[name], meta[name] = call, {"status": "ok", "first_s": first, "error": err}
        for name, stats in interleaved(calls, reps, target_s, budget_s).items():
            meta[name].update(stats)
        for name in selected:
            if name == "hand" and "hand" not in case:
                continue
            rows.append({"group": case["group"], "case": case["label"], "impl": _impl_name(name, case),
                         **meta.get(name, {"status": "-"})})
        print(f"  {case['label']}: " + ", ".join(f"{n} {_fmt(meta[n].get('median_s'))}" for n in meta
                                                 if "median_s" in meta[n]), file=sys.stderr, flush=True)
    return rows


def _impl_name(name, case):
    return case.get("hand_name", "hand") if name == "hand" else name


def _installed(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def _fmt(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def table(rows):
    """Markdown: one line per (case, implementation), with the ratio to jitgrad's time for that case."""
    jit = {r["case"]: r["median_s"] for r in rows if r["impl"] == "jitgrad" and "median_s" in r}
    lines = ["| case | implementation | median/call | IQR | vs jitgrad | first call | error | status |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['case']} | {r['impl']} | - | - | - | - | - | {r['status']} |")
            continue
        iqr = (r["q3_s"] - r["q1_s"]) / r["median_s"] / 2
        ratio = r["median_s"] / jit[r["case"]] if r["case"] in jit else float("nan")
        err = "-" if r["error"] is None else f"{r['error']:.0e}"
        lines.append(f"| {r['case']} | {r['impl']} | {_fmt(r['median_s'])} | ±{iqr:.0%} | {ratio:.3g}x | "
                     f"{_fmt(r['first_s'])} | {err} | ok |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--target", type=float, default=0.05, help="seconds per sample")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per row")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                                       "transforms.json"))
    args = parser.parse_args()
    rows = run(args.impls.split(","), args.reps, args.target, args.budget)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": os.getloadavg()[0], "rows": rows}, out,
                  indent=1)
    print(table(rows))


if __name__ == "__main__":
    main()
