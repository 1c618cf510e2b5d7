"""Loops against the trip count: W1 pendulum's first call, cached call and peak memory, one fresh
process per trip count, jitgrad's on-disk cache off.

    python bench/loop_scaling.py [--steps 10,100,...] [--limit S] [--out bench/out/loop_scaling.json]
    python bench/loop_scaling.py --reuse 1000,10000,100000

`--reuse`: one process, one gradient function, called at each trip count in turn: the first count is
traced, the others use the trace's form reading the count at run time (README, Loops); for each count,
its first call (the first other count compiles that form) and median cached call, against the C
gradient's, and the traces and promoted forms so far (traces stays 1).

`--vs-fresh 1000 --steps 100,10000`: one process; a gradient traced at 1,000 steps, then called at each
count (its form reading the count at run time) against a fresh trace made for that count: the ratio of
their CPU times (time.thread_time, interleaved, the median of 7 rounds).

Each point runs `python bench/loop_scaling.py --one N` in a new process, which prints one JSON line:
import time, first call (trace + differentiate + compile + run), the median cached call, the hand-written
C gradient's median call, the relative gradient error against the hand-written NumPy gradient, the
peak resident memory of the process and how much the first call added to it, and the rolled loops of the trace.
Memory is explained by its parts (`memory`: /proc/self/status after `import jitgrad` and after the first
call): the peak (VmHWM), anonymous pages (RssAnon: the process's own memory: Python, NumPy, jitgrad's
modules, traces, tapes, machine code) and file-backed pages (RssFile: shared libraries' code and data mapped
from disk, shared with every process mapping them and reclaimable), of which libllvmlite.so's (LLVM: its
static initializers at import, the pass pipeline and code generator at the first compile) counted apart
from /proc/self/smaps.  A point whose
first call passes `--limit` seconds is recorded as such, and the larger trip counts are skipped.
Writes JSON and a plot of first call (and cached call / C) against the trip count.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
STEPS = (10, 100, 1_000, 10_000, 100_000, 1_000_000)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


STATUS_FIELDS = {"VmHWM": "peak_mb", "VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}


def memory_parts():
    """This process's resident memory in MB by part (see the module docstring); {} where /proc is not."""
    parts = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in STATUS_FIELDS:
                    parts[STATUS_FIELDS[key]] = int(value.split()[0]) / 1024.0
        llvm, current = 0, False
        with open("/proc/self/smaps") as f:
            for line in f:
                first = line.split(maxsplit=1)[0]
                if not first.endswith(":"):          # a mapping's header line: address range, ..., path
                    current = "libllvmlite" in line
                elif first == "Rss:" and current:
                    llvm += int(line.split()[1])
        parts["llvm_file_mb"] = llvm / 1024.0
    except OSError:
        return {}
    return parts


def _median_call(call, budget_s=1.0, reps=15):
    """Median seconds of one call over `reps` samples (each sample several calls when calls are short)."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-9)
    per_sample = max(1, int(budget_s / reps / once))
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(per_sample):
            call()
        samples.append((time.perf_counter() - start) / per_sample)
    samples.sort()
    return samples[len(samples) // 2]


def one(steps):
    """Measure trip count `steps` in this process; returns the JSON-able dict."""
    os.environ["JITGRAD_DISK_CACHE"] = "0"
    start = time.perf_counter()
    import jitgrad
    from bench import cbuild
    from bench.timing import gradient_error
    from bench.workloads import w1_pendulum
    imported = time.perf_counter()
    after_import = memory_parts()
    case = w1_pendulum.make_case(steps)
    p, n = case.args
    grad = jitgrad.jit_grad(w1_pendulum.pendulum)
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    g = grad(p, n)
    first = time.perf_counter() - t0
    jitgrad.wait_compiled()    # a tiered first call's kernel compiles in the background: count its
    rss_after = _peak_rss_mb()  # memory, and time it (not the reference executor) as the cached call
    after_first = memory_parts()
    cached = _median_call(lambda: grad(p, n))
    c_call = case.c_binder(cbuild.load(case.c_source), case.args)
    c_time = _median_call(c_call)
    reference = w1_pendulum.pendulum_grad(p, n)
    info = grad.cache_info()
    path = info.paths[0] if info.paths else None
    return {"steps": steps, "import_s": imported - start, "first_call_s": first, "cached_call_s": cached,
            "c_call_s": c_time, "vs_c": cached / c_time, "grad_err": gradient_error([g], [reference]),
            "peak_rss_mb": rss_after, "first_call_rss_mb": rss_after - rss_before,
            "memory": {"after_import": after_import, "after_first_call": after_first},
            "trace_nodes": getattr(path, "ops", None), "backend": getattr(path, "backend", None),
            "loops": [str(loop) for loop in getattr(path, "loops", ())]}


def reuse(steps):
    """One gradient function called at each trip count of `steps` in turn (see the module docstring)."""
    os.environ["JITGRAD_DISK_CACHE"] = "0"
    import jitgrad
    from bench import cbuild
    from bench.workloads import w1_pendulum
    grad = jitgrad.jit_grad(w1_pendulum.pendulum)
    rows = []
    for steps in steps:
        case = w1_pendulum.make_case(steps)
        p, n = case.args
        start = time.perf_counter()
        grad(p, n)
        first = time.perf_counter() - start
        jitgrad.wait_compiled()
        cached = _median_call(lambda: grad(p, n))
        c_time = _median_call(case.c_binder(cbuild.load(case.c_source), case.args))
        info = grad.cache_info()
        rows.append({"steps": steps, "first_call_s": first, "cached_call_s": cached, "vs_c": cached / c_time,
                     "traces": info.traces, "promoted": info.promoted})
        print(f"{steps:>9} steps: first call {first:.3f} s, cached {cached * 1e6:.1f} us ({cached / c_time:.2f}x C), "
              f"traces {info.traces}, promoted {info.promoted}", flush=True)
    return rows


def vs_fresh(traced, steps, rounds=7):
    """The run-time form of a trace made at `traced` steps against fresh traces (module docstring)."""
    os.environ["JITGRAD_DISK_CACHE"] = "0"
    import numpy as np
    import jitgrad
    from bench.workloads import w1_pendulum
    p = w1_pendulum.make_case(traced).args[0]
    run_time = jitgrad.jit_grad(w1_pendulum.pendulum)
    run_time(p, traced)

    def cpu(fn, n, reps):
        start = time.thread_time()
        for _ in range(reps):
            fn(p, n)
        return (time.thread_time() - start) / reps
    for n in steps:
        fresh = jitgrad.jit_grad(w1_pendulum.pendulum)
        assert np.allclose(run_time(p, n), fresh(p, n), rtol=1e-9, atol=1e-12)
        reps = max(3, 200_000 // max(n, 1))
        times = [(cpu(run_time, n, reps), cpu(fresh, n, reps)) for _ in range(rounds)]
        ratio = float(np.median([a / b for a, b in times]))
        print(f"{n:>9} steps: run-time form {np.median([a for a, _ in times]) * 1e6:.1f} us, fresh trace "
              f"{np.median([b for _, b in times]) * 1e6:.1f} us: {ratio:.3f}x (traces {run_time.cache_info().traces}, "
              f"promoted {run_time.cache_info().promoted})", flush=True)


def describe_memory(memory):
    """One line: the peak and its parts after import and after the first call."""
    def parts(m):
        return (f"peak {m['peak_mb']:.0f} MB = anonymous {m['anon_mb']:.0f} + file-backed {m['file_mb']:.0f} "
                f"(libllvmlite.so {m['llvm_file_mb']:.0f})")
    if not memory.get("after_first_call"):
        return "memory parts: not available (no /proc)"
    after_import, after_first = parts(memory["after_import"]), parts(memory["after_first_call"])
    return f"after import jitgrad: {after_import}; after the first call: {after_first}"


def sweep(steps, limit):
    rows = []
    for n in steps:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", str(n)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit + 120)
        except subprocess.TimeoutExpired:
            rows.append({"steps": n, "status": f"first call > {limit:g} s (killed)"})
            break
        if done.returncode:
            rows.append({"steps": n, "status": "failed: " + done.stderr.strip().splitlines()[-1]})
            break
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["status"] = "ok"
        rows.append(row)
        print(f"{n:>9} steps: first call {row['first_call_s']:.3f} s, cached {row['cached_call_s'] * 1e6:.1f} us "
              f"({row['vs_c']:.2f}x C), peak RSS {row['peak_rss_mb']:.0f} MB "
              f"(+{row['first_call_rss_mb']:.0f} MB in the first call), grad err {row['grad_err']:.1e}",
              flush=True)
        print("          " + describe_memory(row.get("memory", {})), flush=True)
        if row["first_call_s"] > limit:
            rows.append({"steps": "larger", "status": f"skipped: first call > {limit:g} s"})
            break
    return rows


def plot(rows, path, before=None):
    """First call and cached call / C against the trip count; `before`: rows of an earlier run to draw
    beside them (e.g. the code before loop rolling)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r.get("status") == "ok"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog([r["steps"] for r in ok], [r["first_call_s"] for r in ok], "o-", label="jitgrad first call")
    old = [r for r in before or () if r.get("status") == "ok"]
    if old:
        left.loglog([r["steps"] for r in old], [r["first_call_s"] for r in old], "s--", label="before")
        right.semilogx([r["steps"] for r in old], [r["vs_c"] for r in old], "s--", label="before")
    left.set_ylim(0.05, 100)
    left.legend()
    left.set_xlabel("trip count (Euler steps)")
    left.set_ylabel("seconds")
    left.set_title("W1 pendulum: first call (fresh process)")
    left.grid(True, which="both", alpha=0.3)
    right.semilogx([r["steps"] for r in ok], [r["vs_c"] for r in ok], "o-", label="jitgrad")
    right.legend()
    right.axhline(1.0, color="gray", lw=0.8)
    right.set_xlabel("trip count (Euler steps)")
    right.set_ylabel("cached call / hand-written C")
    right.set_title("W1 pendulum: cached call vs C")
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--limit", type=float, default=60.0, help="stop the sweep after a first call this slow")
    parser.add_argument("--out", default=os.path.join(OUT, "loop_scaling.json"))
    parser.add_argument("--before", help="JSON of an earlier run, drawn beside this one in the plot")
    parser.add_argument("--reuse", help="trip counts called in turn in one process (the first traced)")
    parser.add_argument("--vs-fresh", type=int, help="the trace's count: its run-time form against fresh traces")
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return None
    if args.vs_fresh:
        return vs_fresh(args.vs_fresh, [int(s) for s in args.steps.split(",")])
    if args.reuse:
        return reuse([int(s) for s in args.reuse.split(",")])
    rows = sweep([int(s) for s in args.steps.split(",")], args.limit)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, f, indent=1)
    before = json.load(open(args.before))["rows"] if args.before else None
    plot(rows, os.path.splitext(args.out)[0] + ".png", before)
    print(f"wrote {args.out} and its plot")
    return rows


if __name__ == "__main__":
    main()
