"""The benchmark suite stays runnable: hand-written gradients match finite differences, and
`bench/run.py --tiny` produces its table, JSON and plots with passing numpy/C gradient checks.
No timing assertions."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from bench import peers  # noqa: E402
from bench.timing import gradient_error  # noqa: E402
from bench.trees import flatten, map_leaves  # noqa: E402
from bench.workloads import main_cases  # noqa: E402

TINY_CASES = main_cases("tiny")


def _with_step(case, directions, h):
    """The case's arguments moved by h along `directions` (one per differentiated argument)."""
    wrt = case.argnums if isinstance(case.argnums, tuple) else (case.argnums,)
    args = list(case.args)
    for position, direction in zip(wrt, directions):
        leaves = iter(flatten(direction))
        args[position] = map_leaves(lambda a: a + h * next(leaves), args[position])
    return args


@pytest.mark.parametrize("case", TINY_CASES, ids=lambda c: c.label)
def test_hand_written_gradient_matches_central_differences(case):
    rng = np.random.default_rng(0)
    wrt = case.argnums if isinstance(case.argnums, tuple) else (case.argnums,)
    directions = [map_leaves(lambda a: rng.normal(size=np.shape(a)), case.args[i]) for i in wrt]
    h = 1e-6
    numeric = (case.objective(*_with_step(case, directions, h))
               - case.objective(*_with_step(case, directions, -h))) / (2 * h)
    analytic = sum(float(np.sum(g * d)) for g, d in zip(flatten(case.grad_numpy(*case.args)),
                                                          flatten(directions)))
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic))


@pytest.mark.parametrize("case", TINY_CASES, ids=lambda c: c.label)
def test_c_gradient_matches_numpy(case):
    prepared = peers.prepare_c(case)
    reference = flatten(case.grad_numpy(*case.args))
    assert gradient_error(prepared.leaves(prepared.call()), reference) < 1e-12


def test_gradient_error_flags_a_wrong_gradient():
    reference = [np.array([1.0, 2.0])]
    assert gradient_error([np.array([1.0, 2.0 + 1e-3])], reference) > 1e-7
    assert gradient_error([np.array([1.0])], reference) == float("inf")


def test_tiny_run_writes_table_json_and_plots(tmp_path):
    # torch.compile (10-30 s per compile) and numba (3-10 s to compile the MLP gradient) are left out
    # to keep this test fast; run.py --tiny exercises them.
    impls = ",".join(short for short in peers.SHORT_NAMES if short not in ("torch.compile", "numba"))
    env = {**os.environ, "JITGRAD_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run.py"), "--tiny",
                           "--impls", impls, "--json", str(tmp_path / "out.json"),
                           "--plots", str(tmp_path / "plots")],
                          capture_output=True, text=True, timeout=170, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "median/call" in done.stdout and "W5 first call" in done.stdout
    document = json.loads((tmp_path / "out.json").read_text())
    rows = document["rows"]
    assert {r["workload"] for r in rows} == {"W1", "W2", "W3", "W4", "W6", "W7", "W8"}
    for row in rows:
        if row["impl"] in (peers.REFERENCE, peers.LIMIT):
            assert row["status"] == "ok" and row["grad_err"] < 1e-12, row
            assert row["median_s"] > 0 and row["ratio_numpy"] is not None, row
        if row["status"] == "ok":     # every timed row passed its gradient check
            assert row["grad_err"] <= 1e-7 and row["median_s"] > 0, row
    assert set(document["scaling"]) == {"W1 pendulum steps", "W3 elements"}
    assert document["coldstart"] and document["machine"]["versions"]["numpy"] == np.__version__
    plots = sorted(os.listdir(tmp_path / "plots"))
    assert plots == ["ratios.png", "scaling_W1_pendulum_steps.png", "scaling_W3_elements.png"]


def test_loading_the_c_gradients_keeps_subnormals():
    """The C references are built with -ffast-math but linked without crtfastmath: loading them must
    not switch the process to flush-to-zero (that would change NumPy's and jitgrad's results)."""
    from bench import cbuild
    cbuild.load("w3_elementwise.c")
    assert np.float64(1e-310) * 1.0 != 0.0


def test_make_results_keeps_the_sections_it_does_not_generate(tmp_path):
    from bench import make_results
    old = ("# jitgrad benchmark results\n\n## Headline\n\n- old\n\n## All cases\n\nold table\n\n"
           "## Loops (then)\n\nloop text\n\n### while loops\n\nwhile text\n\n"
           "## Scaling: W3 elements\n\nold scaling\n\n## Transforms (then)\n\ntransform text\n")
    kept = make_results.kept_sections(old)
    assert kept == ("## Loops (then)\n\nloop text\n\n### while loops\n\nwhile text\n\n"
                    "## Transforms (then)\n\ntransform text\n\n")
    assert "old table" not in kept and "old scaling" not in kept
