"""W3 (sum(tanh(x) sin(y)^2 + exp(-x^2) y), value and gradient) against the number of threads its big
loops are split across (jit/parallel.py), per size, interleaved in one process: the same kernel run
with 1, 2, ... threads (`parallel.set_num_threads`), and NumPy's hand-written gradient.

    python bench/thread_scaling.py [--sizes 1e5,1e6,1e7] [--threads 1,2] [--reps 11] [--rounds 5]

Prints the median time per call of each thread count, the speedup over one thread, and the load
average before and after (the machine may be shared: a loaded machine cannot show the speedup).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()
os.environ["JITGRAD_SYNC_COMPILE"] = "1"

import jitgrad  # noqa: E402
from bench.timing import gradient_error, interleaved  # noqa: E402
from bench.workloads import w3_elementwise  # noqa: E402
from jitgrad.jit import parallel  # noqa: E402


def with_threads(call, threads):
    def run():
        parallel.set_num_threads(threads)
        return call()
    return run


def measure(n, counts, reps):
    case = w3_elementwise.make_case(n)
    grad = jitgrad.jit_grad(case.objective, argnums=case.argnums)
    want = case.grad_numpy(*case.args)
    for t in counts:
        parallel.set_num_threads(t)
        assert gradient_error(list(grad(*case.args)), list(want)) < 1e-12, t
    calls = {str(t): with_threads(lambda: grad(*case.args), t) for t in counts}     # (str keys: interleaved
    calls["numpy"] = lambda: case.grad_numpy(*case.args)                             # shuffles them as an array)
    times = {(int(k) if k.isdigit() else k): v["median_s"] for k, v in interleaved(calls, reps, 0.05, 60.0).items()}
    one = times[counts[0]]
    cells = "   ".join(f"{t} thread{'s' * (t > 1)} {times[t] * 1e3:8.3f} ms ({one / times[t]:4.2f}x)" for t in counts)
    print(f"W3 n={n:.0e}   numpy {times['numpy'] * 1e3:8.3f} ms   {cells}", flush=True)
    return {t: times[t] for t in counts}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=11)
    opts = parser.parse_args()
    counts = [int(t) for t in opts.threads.split(",")]
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}")
    for n in (int(float(s)) for s in opts.sizes.split(",")):
        measure(n, counts, opts.reps)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
