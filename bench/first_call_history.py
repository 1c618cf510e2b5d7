"""First calls of two checkouts side by side (issue 15: "the median over the bench's first calls at least 3x
lower than today", today being the commit the issue was filed at).

    python bench/first_call_history.py BASE[=PYTHON] NEW[=PYTHON] [--repeats 3] [--cases ...] [--json F]

BASE and NEW are checkouts of jitgrad, each installed (editable) in the venv whose interpreter is PYTHON
(default: this interpreter).  Both run the same objectives, this checkout's bench workloads and the Kalman
filters of bench/first_calls.py, so only jitgrad differs.  Each first call is measured in a fresh process
(on-disk cache off in a fresh directory, one BLAS thread, one kernel thread) after a warm-up on an unrelated
function, as bench/run.py's "first call" column is (the process's imports and LLVM's set-up paid before):
`jit_grad(f, argnums)` made and called once.  BASE is measured as it ships; NEW as it ships (tiered: the
reference executor answers while the kernel compiles) and with `JITGRAD_SYNC_COMPILE=1` (trace,
differentiate, compile, run).  Configurations alternate within each repeat.  The table gives each case's median over the
repeats, then the median over the cases and its ratio to BASE's; the gradients' norms are compared too.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ("W1 pendulum n=100", "W1 pendulum n=1000", "W1 rosenbrock n=100", "W2 mlp batch=256",
         "W3 elementwise n=1e+06", "W4 sum(x*x) n=8", "W6 logreg 10000x100", "W7 gmm d=10 k=25 n=1000",
         "kalman 20", "kalman 100")
BENCH_CASES = CASES[:8]          # bench/run.py's main table when issue 15 was filed


def one(name, checkout):
    """Measure case `name` with the jitgrad of `checkout` in this fresh process; prints one JSON line."""
    import numpy as np
    import jitgrad      # imported before this checkout's root joins sys.path: the venv's install is measured
    where = os.path.dirname(os.path.dirname(os.path.abspath(jitgrad.__file__)))
    if os.path.realpath(where) != os.path.realpath(checkout):
        raise SystemExit(f"jitgrad imported from {where}, not from {checkout}")
    sys.path.append(ROOT)
    from bench.first_calls import _case
    fn, argnums, args = _case(name)
    wait = getattr(jitgrad, "wait_compiled", lambda: None)
    jitgrad.jit_grad(lambda w, x: np.sum(np.tanh(x @ w) ** 2))(np.ones((3, 2)), np.ones((4, 3)))
    wait()
    start, cpu = time.perf_counter(), time.thread_time()
    grads = jitgrad.jit_grad(fn, argnums=argnums)(*args)
    first, first_cpu = time.perf_counter() - start, time.thread_time() - cpu
    wait()
    flat = grads if isinstance(grads, tuple) else (grads,)
    norm = float(np.sqrt(sum(np.sum(np.square(np.asarray(g, dtype=float))) for g in flat)))
    print(json.dumps({"case": name, "first_s": first, "first_cpu_s": first_cpu, "grad_norm": norm}))


def _configs(base, new):
    """(label, checkout, python, extra environment) per configuration measured."""
    configs = [("base", *base, {})]
    configs += [("new tiered", *new, {"JITGRAD_SYNC_COMPILE": "0"}), ("new sync", *new, {"JITGRAD_SYNC_COMPILE": "1"})]
    return configs


def run(configs, cases, repeats, script=__file__, show=lambda row: f"{row['first_s'] * 1e3:8.1f} ms"):
    """{(label, case): [result dicts]} measured in alternating fresh processes (`script --one case
    --checkout ...`, which prints one JSON line; `show(row)` is its progress line)."""
    results = {}
    for r in range(repeats):
        for name in cases:
            order = configs if r % 2 == 0 else configs[::-1]
            for label, checkout, python, extra in order:
                env = dict(os.environ, JITGRAD_DISK_CACHE="0", JITGRAD_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                           OMP_NUM_THREADS="1", JITGRAD_CACHE_DIR=tempfile.mkdtemp(prefix="jitgrad-history-"), **extra)
                command = [python, os.path.abspath(script), "--one", name, "--checkout", checkout]
                out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
                if out.returncode:
                    raise RuntimeError(f"{label} {name}: {out.stderr[-2000:]}")
                row = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((label, name), []).append(row)
                print(f"  {label:10s} {name:24s} {show(row)}", file=sys.stderr, flush=True)
    return results


def summary(results, configs, cases):
    """Markdown table: per case the median first call (wall time; the calling thread's CPU time in brackets)
    of each configuration, then the medians over the cases and their ratios to BASE's."""
    labels = [c[0] for c in configs]
    med = {(label, name, key): statistics.median(r[key] for r in results[(label, name)])
           for label in labels for name in cases for key in ("first_s", "first_cpu_s")}

    def cells(value):
        return " | ".join(f"{value(label, 'first_s') * 1e3:.1f} ms ({value(label, 'first_cpu_s') * 1e3:.1f})"
                          for label in labels)
    lines = ["| case | " + " | ".join(labels) + " | gradient norms agree |", "|---" * (len(labels) + 2) + "|"]
    for name in cases:
        norms = [results[(label, name)][0]["grad_norm"] for label in labels]
        agree = max(norms) - min(norms) <= 1e-8 * max(1.0, abs(max(norms)))
        lines.append(f"| {name} | {cells(lambda label, key: med[(label, name, key)])} | "
                     f"{'yes' if agree else 'NO: ' + ', '.join(f'{n:.6g}' for n in norms)} |")
    for title, group in (("median over the bench's cases", [c for c in cases if c in BENCH_CASES]),
                         ("median over all cases", cases)):
        if not group:
            continue
        over = {(label, key): statistics.median(med[(label, name, key)] for name in group)
                for label in labels for key in ("first_s", "first_cpu_s")}
        ratios = "; ".join(f"{label}: {over[(labels[0], 'first_s')] / over[(label, 'first_s')]:.2f}x lower "
                           f"({over[(labels[0], 'first_cpu_s')] / over[(label, 'first_cpu_s')]:.2f}x in CPU)"
                           for label in labels[1:])
        lines.append(f"| **{title}** ({len(group)}) | {cells(lambda label, key: over[(label, key)])} | {ratios} |")
    return "\n".join(lines)


def _checkout(spec):
    path, _, python = spec.partition("=")
    return os.path.abspath(path), python or sys.executable


def _report(path):
    """The table of a JSON file this script wrote."""
    with open(path) as f:
        document = json.load(f)
    results = {tuple(key.split(" | ")): rows for key, rows in document["results"].items()}
    configs = [tuple(c) for c in document["configs"]]
    cases = list(dict.fromkeys(name for _, name in results))
    return summary(results, configs, cases)


def parser_for(doc, cases, repeats, json_name):
    """The command line of a script comparing two checkouts (this one, bench/cached_history.py)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("base", nargs="?")
    parser.add_argument("new", nargs="?")
    parser.add_argument("--one")
    parser.add_argument("--checkout")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--cases", default=",".join(cases))
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "out", json_name))
    return parser


def main():
    parser = parser_for(__doc__, CASES, 3, "first_call_history.json")
    parser.add_argument("--report", help="print the table of a JSON file written earlier and stop")
    args = parser.parse_args()
    if args.one:
        one(args.one, args.checkout)
        return
    if args.report:
        print(_report(args.report))
        return
    if not (args.base and args.new):
        parser.error("BASE and NEW checkouts are required")
    configs, cases = _configs(_checkout(args.base), _checkout(args.new)), args.cases.split(",")
    results = run(configs, cases, args.repeats)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": os.getloadavg()[0],
                   "configs": [c[:3] for c in configs],
                   "results": {f"{k[0]} | {k[1]}": v for k, v in results.items()}}, out, indent=1)
    print(summary(results, configs, cases))


if __name__ == "__main__":
    main()
