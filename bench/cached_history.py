"""Cached calls of two checkouts side by side (issue 15: "every existing row keeps or improves its ratio",
measured on one machine: the ratio of a row is jitgrad's time over a reference that does not change
between checkouts, so the row keeps its ratio when NEW's time is at most BASE's).

    python bench/cached_history.py BASE[=PYTHON] NEW[=PYTHON] [--repeats 5] [--cases ...] [--json F]

BASE and NEW are checkouts of jitgrad, each installed (editable) in the venv whose interpreter is PYTHON
(default: this interpreter).  Both differentiate the same objectives, this checkout's bench workloads
(bench/first_calls.py's `_case`), so only jitgrad differs.  Each measurement is a fresh process (on-disk
cache off, one BLAS thread, one kernel thread, `JITGRAD_SYNC_COMPILE=1`) that makes `jit_grad(f,
argnums)`, calls it until its kernel runs, then times batches of calls in the process's CPU time
(`time.process_time`: the machine may be shared) and prints the median per call.  Checkouts alternate
within each repeat, in turned order every other repeat.  The table gives each case's median over the
repeats and NEW / BASE.
"""
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ("W1 pendulum n=100", "W1 pendulum n=1000", "W1 rosenbrock n=100", "W2 mlp batch=256",
         "W3 elementwise n=1e+06", "W4 sum(x*x) n=8", "W6 logreg 10000x100", "W7 gmm d=10 k=25 n=1000",
         "W8 softmax batch=512")
BATCH_SECONDS = 0.02
BATCHES = 15


def one(name, checkout):
    """Time case `name`'s cached gradient with the jitgrad of `checkout`; prints one JSON line."""
    import jitgrad
    where = os.path.dirname(os.path.dirname(os.path.abspath(jitgrad.__file__)))
    if os.path.realpath(where) != os.path.realpath(checkout):
        raise SystemExit(f"jitgrad imported from {where}, not from {checkout}")
    sys.path.append(ROOT)       # after jitgrad's import: this checkout's bench, the venv's jitgrad
    from bench.first_calls import _case
    fn, argnums, args = _case(name)
    grad = jitgrad.jit_grad(fn, argnums=argnums)
    for _ in range(3):
        grad(*args)
    getattr(jitgrad, "wait_compiled", lambda: None)()
    start, calls = time.process_time(), 0
    while time.process_time() - start < BATCH_SECONDS:
        grad(*args)
        calls += 1
    per_call = []
    for _ in range(BATCHES):
        start = time.process_time()
        for _ in range(calls):
            grad(*args)
        per_call.append((time.process_time() - start) / calls)
    print(json.dumps({"case": name, "cpu_s": statistics.median(per_call)}))


def summary(results, cases):
    """Markdown table: per case BASE's and NEW's median CPU time per call and NEW / BASE."""
    lines = ["| case | base | new | new / base |", "|---|---|---|---|"]
    for name in cases:
        base, new = (statistics.median(r["cpu_s"] for r in results[(label, name)]) for label in ("base", "new"))
        lines.append(f"| {name} | {_time(base)} | {_time(new)} | {new / base:.3f} |")
    return "\n".join(lines)


def _time(seconds):
    return f"{seconds * 1e3:.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.2f} us"


def main():
    from first_call_history import _checkout, parser_for, run      # (a sibling: ROOT joins sys.path only in `one`)
    parser = parser_for(__doc__, CASES, 5, "cached_history.json")
    args = parser.parse_args()
    if args.one:
        one(args.one, args.checkout)
        return
    if not (args.base and args.new):
        parser.error("BASE and NEW checkouts are required")
    sync = {"JITGRAD_SYNC_COMPILE": "1"}
    configs = [("base", *_checkout(args.base), sync), ("new", *_checkout(args.new), sync)]
    cases = args.cases.split(",")
    results = run(configs, cases, args.repeats, __file__, lambda row: f"{row['cpu_s'] * 1e6:10.2f} us")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": os.getloadavg()[0],
                   "configs": [c[:3] for c in configs],
                   "results": {f"{k[0]} | {k[1]}": v for k, v in results.items()}}, out, indent=1)
    print(summary(results, cases))


if __name__ == "__main__":
    main()
