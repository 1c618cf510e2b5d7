"""Where a first call's time goes: each case's gradient in a fresh process (on-disk cache off, one BLAS
thread, `JITGRAD_SYNC_COMPILE=1`), split into its phases, with the compile time per 1,000 ops.

    python bench/first_call_phases.py [--repeats 3] [--cases "kalman 20,W2 mlp batch=256"]

Columns: `import` (wall time of `import jitgrad` after numpy), `warm-up` (the first compile of the process,
on an unrelated function: LLVM's set-up), then the case's first call: trace (interpreting the function),
differentiate, optimize, lower (planning and LLVM IR text), LLVM (parse, optimize, machine code) and the
rest (signature, first kernel run, packaging), each the CPU time of the calling thread, so that other
processes on a shared machine do not count; `first (wall)` is the wall time of the whole first call.
`compile/1k ops` is (lower + LLVM) per 1,000 ops of the compiled trace, `AD+opt/op` differentiate plus
optimize per op.  Medians over `--repeats` processes.
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

CASES = ("kalman 20", "kalman 100", "W1 pendulum n=100", "W1 pendulum n=1000", "W1 rosenbrock n=100",
         "W2 mlp batch=256", "W3 elementwise n=1e+06", "W4 sum(x*x) n=8", "W6 logreg 10000x100",
         "W7 gmm d=10 k=25 n=1000")
PHASES = ("trace", "differentiate", "optimize", "lower", "LLVM")


def _timed(module, name, phase, spent, active):
    """Replace `module.name` by a wrapper adding its thread CPU time to `spent[phase]` (outermost
    phase only: an optimize inside lowering counts as lowering)."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        if active:
            return real(*args, **kwargs)
        active.append(phase)
        start = time.thread_time()
        try:
            return real(*args, **kwargs)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.thread_time() - start
            active.pop()
    setattr(module, name, wrapper)


def one(name):
    """Measure one case in this fresh process; prints one JSON line."""
    import numpy as np  # noqa: F401  (numpy's import is not jitgrad's)
    start = time.perf_counter()
    import jitgrad
    imported = time.perf_counter() - start
    from bench.first_calls import _case, _warm_up
    from jitgrad import api
    from jitgrad.ir import autodiff, passes
    from jitgrad.jit import kernel
    start = time.perf_counter()
    _warm_up()
    warm = time.perf_counter() - start
    spent, active = {}, []
    for module, attr, phase in ((api, "run_traced", "trace"), (autodiff, "value_and_grad", "differentiate"),
                                (passes, "optimize", "optimize"), (kernel, "lower", "lower"),
                                (kernel, "compile_ir", "LLVM")):
        _timed(module, attr, phase, spent, active)
    fn, argnums, args = _case(name)
    grad = jitgrad.jit_grad(fn, argnums=argnums)
    start, cpu = time.perf_counter(), time.thread_time()
    grad(*args)
    cpu, first = time.thread_time() - cpu, time.perf_counter() - start
    spent["rest"] = cpu - sum(spent.values())
    print(json.dumps({"case": name, "import_s": imported, "warm_s": warm, "first_s": first, "phases": spent,
                      "ops": grad.cache_info().paths[0].ops}))


def run(repeats, cases):
    results = {}
    env = dict(os.environ, JITGRAD_DISK_CACHE="0", JITGRAD_SYNC_COMPILE="1")
    for _ in range(repeats):
        for name in cases:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name], env=env,
                                 capture_output=True, text=True, timeout=900)
            if out.returncode:
                raise RuntimeError(out.stderr)
            results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {name}: {results[name][-1]['first_s']:.3f} s", file=sys.stderr, flush=True)
    return results


def table(results, cases):
    cols = ("trace", "differentiate", "optimize", "lower", "LLVM", "rest")
    lines = ["| case | ops | import | warm-up | " + " | ".join(cols) + " | first (wall) | compile/1k ops | AD+opt/op |",
             "|---" * (len(cols) + 8) + "|"]
    for name in cases:
        rows = results[name]

        def med(get):
            return statistics.median(get(r) for r in rows)
        ph = {c: med(lambda r: r["phases"].get(c, 0.0)) for c in cols}
        ops = rows[0]["ops"]
        compile_k = (ph["lower"] + ph["LLVM"]) / ops * 1e3 if ops else 0.0
        ad_op = (ph["differentiate"] + ph["optimize"]) / ops * 1e6 if ops else 0.0
        lines.append(f"| {name} | {ops} | {med(lambda r: r['import_s']) * 1e3:.0f} ms | "
                     f"{med(lambda r: r['warm_s']) * 1e3:.0f} ms | "
                     + " | ".join(f"{ph[c] * 1e3:.1f}" for c in cols)
                     + f" | {med(lambda r: r['first_s']) * 1e3:.0f} ms | {compile_k * 1e3:.0f} ms | {ad_op:.0f} us |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "out", "first_call_phases.json"))
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    cases = args.cases.split(",")
    results = run(args.repeats, cases)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": os.getloadavg()[0], "results": results},
                  out, indent=1)
    print("phases: thread CPU ms of the first call (sync compile)")
    print(table(results, cases))


if __name__ == "__main__":
    main()
