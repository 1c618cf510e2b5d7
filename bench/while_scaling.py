"""A `while` loop against its trip count: a damped pendulum integrated until its energy falls below a
level (the trip count is data: set by the level), its gradient's first call, cached call, a call whose
loop runs 1.3x as long (same trace: no retrace), and peak memory, one fresh process per trip count,
jitgrad's on-disk cache off.

    python bench/while_scaling.py [--steps 10,100,...] [--out bench/out/while_scaling.json]

Each point runs `python bench/while_scaling.py --one N` in a new process (one JSON line).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.loop_scaling import OUT, _median_call, _peak_rss_mb  # noqa: E402  (pins one BLAS thread)
import numpy as np  # noqa: E402

DT = 0.01
STEPS = (10, 100, 1_000, 10_000, 100_000, 1_000_000)


def settle(p, level):
    """dt * sum of theta**2 over the Euler steps taken until the pendulum's energy is below `level`."""
    g_over_l, damping, theta, omega = p[0], p[1], p[2], p[3]
    loss = 0.0
    while 0.5 * omega * omega + g_over_l * (1.0 - np.cos(theta)) > level:
        omega = omega - DT * (g_over_l * np.sin(theta) + damping * omega)      # semi-implicit Euler: the
        theta = theta + DT * omega                                             # energy decays as exp(-damping t)
        loss = loss + theta * theta
    return loss * DT


def problem(steps, longer=1.0):
    """(parameters, level): the damping makes the energy (~ exp(-damping t)) fall below the level after
    about `steps` Euler steps, `longer` times as many with the same parameters."""
    p = (9.81, 2.0 / (steps * DT), 1.0, 0.0)
    return p, p[0] * (1.0 - math.cos(p[2])) * math.exp(-2.0 * longer)


def count_steps(p, level):
    """The Euler steps `settle` takes (plain Python)."""
    g_over_l, damping, theta, omega = p
    n = 0
    while 0.5 * omega * omega + g_over_l * (1.0 - math.cos(theta)) > level:
        omega = omega - DT * (g_over_l * math.sin(theta) + damping * omega)
        theta = theta + DT * omega
        n += 1
    return n


def one(steps):
    os.environ["JITGRAD_DISK_CACHE"] = "0"
    import jitgrad
    params, level = problem(steps)
    longer = problem(steps, 1.3)[1]
    p = np.array(params)
    grad = jitgrad.jit_grad(settle, argnums=(0, 1))
    t0 = time.perf_counter()
    grad(p, level)
    first = time.perf_counter() - t0
    cached = _median_call(lambda: grad(p, level))
    cached_longer = _median_call(lambda: grad(p, longer))
    info = grad.cache_info()
    return {"steps": count_steps(params, level), "steps_longer": count_steps(params, longer), "first_call_s": first,
            "cached_call_s": cached, "cached_longer_s": cached_longer, "traces": info.traces,
            "peak_rss_mb": _peak_rss_mb(), "loops": [str(loop) for p in info.paths for loop in p.loops]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--out", default=os.path.join(OUT, "while_scaling.json"))
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return None
    rows = []
    for n in [int(s) for s in args.steps.split(",")]:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", str(n)], capture_output=True,
                              text=True)
        if done.returncode:
            rows.append({"steps": n, "status": "failed: " + done.stderr.strip().splitlines()[-1]})
            break
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['steps']:>9} steps: first call {row['first_call_s']:.3f} s, cached "
              f"{row['cached_call_s'] * 1e6:.1f} us, {row['steps_longer']} steps "
              f"{row['cached_longer_s'] * 1e6:.1f} us, traces {row['traces']}, "
              f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
