"""Run the jitgrad benchmark suite: `python bench/run.py [--full|--tiny] [--only W1,W3] [--json F]`.

Quick mode by default. Prints the machine and versions and a table per case (time per gradient call,
ratios to the NumPy hand-written gradient and to the C limit, first-call time, gradient error,
status), then the scaling sweeps and the W5 cold-process table; writes JSON and PNG plots.
"""
import argparse
import datetime
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()   # before numpy is imported anywhere
# First calls must compile, not read an on-disk cache of an earlier run (torch inductor's, jitgrad's
# machine code): both point to fresh directories.  W5 gives each group of cold processes its own, so
# its later processes show the warm-cache cost.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="jitgrad-bench-inductor-"))
os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-bench-kernels-")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_const", dest="mode", const="full", help="full sizes and repeats")
    size.add_argument("--tiny", action="store_const", dest="mode", const="tiny", help="a few calls (CI)")
    parser.add_argument("--only", help="comma-separated workload ids, e.g. W1,W3 (W5 = cold processes)")
    parser.add_argument("--impls", help="comma-separated implementations: numpy,c,numba,jitgrad,jax,"
                                        "torch,torch.compile,autograd (default: all)")
    parser.add_argument("--json", default=os.path.join(OUT_DIR, "results.json"), help="JSON output path")
    parser.add_argument("--plots", default=OUT_DIR, help="directory for the PNG plots ('' for none)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling sweeps")
    parser.add_argument("--no-coldstart", action="store_true", help="skip W5's cold processes")
    parser.set_defaults(mode="quick")
    return parser.parse_args(argv)


def selected_impls(option, peers):
    """Implementation names in table order, restricted by --impls."""
    if not option:
        return list(peers.PEERS)
    wanted = set()
    for short in option.split(","):
        if short.strip() not in peers.SHORT_NAMES:
            raise SystemExit(f"unknown implementation {short!r}; choose from {', '.join(peers.SHORT_NAMES)}")
        wanted.add(peers.SHORT_NAMES[short.strip()])
    return [name for name in peers.PEERS if name in wanted | {peers.REFERENCE}]


def main(argv=None):
    """Run the suite and return the JSON document."""
    args = parse_args(argv)
    from bench import cbuild, harness, peers, report
    from bench.workloads import main_cases, scaling_cases
    only = None if not args.only else {w.strip().upper() for w in args.only.split(",")}
    settings = harness.SETTINGS[args.mode]
    impls = selected_impls(args.impls, peers)
    machine = report.machine_info()
    started = time.perf_counter()
    print(f"jitgrad bench, {args.mode} mode, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"{machine['cpu']}, {machine['cores']} cores, {machine['platform']}, Python {machine['python']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    print(f"C: {machine['gcc']}, {machine['cflags']}; threads: {machine['threads']}\n")
    print("\n".join(report.table_lines([])))
    rows, measured, family_rows = [], {}, {}
    for case in main_cases(args.mode, only):   # a family: the same objective at growing sizes
        family = (case.workload, case.name.split(" n=")[0])
        skips = harness.projected_skips(family_rows.get(family), case, settings)
        case_rows = family_rows[family] = measured[case.label] = harness.run_case(case, impls, settings, skips)
        rows += case_rows
        print("\n".join(report.table_lines(case_rows)[1:]), flush=True)
    scaling = {}
    if not args.no_scaling:
        for series, cases in scaling_cases(args.mode, only).items():
            scaling[series] = harness.run_series(cases, impls, settings, measured)
            print(f"\nscaling: {series}")
            print("\n".join(report.table_lines(scaling[series])), flush=True)
    coldstart = []
    if not args.no_coldstart and (only is None or "W5" in only):
        labels = [c.label for c in main_cases(args.mode, {"W1", "W2"}) if "rosenbrock" not in c.name]
        pendulum = [label for label in labels if label.startswith("W1")]
        labels = pendulum[-1:] if args.mode == "tiny" else [pendulum[-1], labels[-1]]   # W1 1,000 steps, W2
        processes = {"tiny": 1, "quick": 4, "full": 6}[args.mode]
        cold_impls = [i for i in harness.COLD_IMPLS if i in impls
                      and (args.mode == "full" or i != "torch.compile")]   # its compile is 10-30 s
        coldstart = harness.run_coldstart(labels, cold_impls, processes, settings, measured)
        print("\nW5 first call in fresh processes")
        print("\n".join(report.coldstart_lines(coldstart)), flush=True)
    document = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "mode": args.mode,
                "machine": machine, "settings": settings, "tolerance": harness.TOLERANCE,
                "c_build_s": dict(cbuild.build_seconds),
                "rows": rows, "scaling": scaling, "coldstart": coldstart,
                "wall_s": time.perf_counter() - started}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    report.write_json(document, args.json)
    print(f"\nwrote {args.json}")
    if args.plots:
        for path in report.draw_plots(document, args.plots):
            print(f"wrote {path}")
    print(f"total {document['wall_s']:.0f} s")
    return document


if __name__ == "__main__":
    main()
