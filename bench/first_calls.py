"""First calls, synchronous against tiered compilation: each case's first call in a fresh process (on-disk
cache off, one BLAS thread; after a warm-up on another function unless `--fresh`), with
`JITGRAD_SYNC_COMPILE=1` (trace, differentiate, compile, run) and without it (the reference executor
answers while the kernel compiles in the background).

    python bench/first_calls.py [--repeats 3] [--json bench/out/first_calls.json]

Per process: the first call, the second call right after it, the time from the first call's start until
the kernel is ready (`jitgrad.wait_compiled()`), and the median cached call after that.  Processes of the
two modes alternate; the table gives medians over `--repeats` processes of each.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()


def kalman(obs, q, r):
    """Negative log-likelihood of a constant-velocity model (filterpy-style 2x2 Kalman filter)."""
    import numpy as np
    a = np.array([[1.0, 1.0], [0.0, 1.0]])
    h = np.array([[1.0, 0.0]])
    m, p = np.zeros(2), np.eye(2)
    nll = 0.0
    for y in obs:
        m = a @ m
        p = a @ p @ a.T + q * np.eye(2)
        s = h @ p @ h.T + r
        gain = p @ h.T / s
        v = y - h @ m
        m = m + gain @ v
        p = p - gain @ h @ p
        nll = nll + np.sum(v * v / s + np.log(s))
    return nll


def _case(name):
    """(function to differentiate, argnums, args) for a case name."""
    import numpy as np
    if name.startswith("kalman"):
        n = int(name.split()[1])
        return kalman, (0, 1, 2), (np.cumsum(np.random.default_rng(7).normal(size=n)) * 0.1, 0.1, 0.5)
    from bench.workloads import main_cases
    for case in main_cases("quick"):
        if case.label == name:
            return case.objective, case.argnums, case.args
    raise KeyError(name)


CASES = ("kalman 20", "kalman 100", "W2 mlp batch=256", "W1 pendulum n=100", "W1 rosenbrock n=100",
         "W7 gmm d=10 k=25 n=1000")


def _warm_up():
    """Pay the process's one-time costs (imports, rule tables, LLVM's set-up) on an unrelated function,
    so that the case's first call is what the issue's "cold cache, in process" means."""
    import numpy as np
    import jitgrad
    jitgrad.jit_grad(lambda w, x: np.sum(np.tanh(x @ w) ** 2))(np.ones((3, 2)), np.ones((4, 3)))
    jitgrad.wait_compiled()


def one(name, fresh):
    """Measure one case in this (fresh) process; prints one JSON line."""
    fn, argnums, args = _case(name)
    import jitgrad
    if not fresh:
        _warm_up()
    grad = jitgrad.jit_grad(fn, argnums=argnums)
    start = time.perf_counter()
    grad(*args)
    first = time.perf_counter() - start
    t = time.perf_counter()
    grad(*args)
    second = time.perf_counter() - t
    jitgrad.wait_compiled()
    ready = time.perf_counter() - start
    grad(*args)
    samples = []
    for _ in range(15):
        t = time.perf_counter()
        grad(*args)
        samples.append(time.perf_counter() - t)
    path = grad.cache_info().paths[0]
    print(json.dumps({"case": name, "first_s": first, "second_s": second, "ready_s": ready,
                      "cached_s": statistics.median(samples), "ops": path.ops, "backend": path.backend,
                      "note": path.note}))


def run(repeats, cases, fresh):
    results = {}
    for r in range(repeats):
        for name in cases:
            for mode in (("sync", "tiered") if r % 2 == 0 else ("tiered", "sync")):
                env = dict(os.environ, JITGRAD_DISK_CACHE="0", JITGRAD_SYNC_COMPILE="1" if mode == "sync" else "0")
                command = [sys.executable, os.path.abspath(__file__), "--one", name] + ["--fresh"] * fresh
                out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
                if out.returncode:
                    raise RuntimeError(out.stderr)
                results.setdefault((name, mode), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  {name} {mode}: {results[(name, mode)][-1]['first_s']:.3f} s", file=sys.stderr, flush=True)
    return results


def _ms(seconds):
    return f"{seconds * 1e3:.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


def table(results, cases):
    lines = ["| case | ops | mode | first call | second call | kernel ready after | cached call |",
             "|---|---|---|---|---|---|---|"]
    for name in cases:
        for mode in ("sync", "tiered"):
            rows = results[(name, mode)]
            med = {k: statistics.median(r[k] for r in rows) for k in ("first_s", "second_s", "ready_s", "cached_s")}
            lines.append(f"| {name} | {rows[0]['ops']} | {mode} | {_ms(med['first_s'])} | {_ms(med['second_s'])} | "
                         f"{_ms(med['ready_s'])} | {_ms(med['cached_s'])} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="no warm-up: the process's one-time costs included")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "out", "first_calls.json"))
    args = parser.parse_args()
    if args.one:
        one(args.one, args.fresh)
        return
    cases = args.cases.split(",")
    results = run(args.repeats, cases, args.fresh)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": os.getloadavg()[0],
                   "fresh": args.fresh, "results": {f"{k[0]} | {k[1]}": v for k, v in results.items()}}, out, indent=1)
    print(table(results, cases))


if __name__ == "__main__":
    main()
