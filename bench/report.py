"""Output of a run: machine and versions, the printed table, the JSON document, the PNG plots."""
import importlib.metadata
import json
import os
import platform
import subprocess

from . import cbuild

PACKAGES = ("jitgrad", "numpy", "scipy", "llvmlite", "numba", "jax", "jaxlib", "torch", "autograd",
            "matplotlib")


def machine_info():
    """CPU, cores, OS, Python, package versions, gcc and the C flags, BLAS thread settings."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        gcc = "not found"
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": os.getloadavg()[0],
            "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions, "gcc": gcc,
            "cflags": " ".join(cbuild.CFLAGS + cbuild.LIBS),
            "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                        "MKL_NUM_THREADS", "XLA_FLAGS")}}


def seconds(value):
    """A duration with a unit that keeps 3 significant digits ('-' for None)."""
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def ratio(value):
    """A ratio as '1.23x' ('-' for None)."""
    return "-" if value is None else f"{value:.3g}x"


def spread(row):
    """The interquartile range relative to the median, as '±12%'."""
    if row["median_s"] is None:
        return "-"
    return f"±{50 * (row['q3_s'] - row['q1_s']) / row['median_s']:.0f}%"


TABLE_COLUMNS = (  # header, cell function, width
    ("case", lambda r: f"{r['workload']} {r['case']}", 26),
    ("implementation", lambda r: r["impl"], 16),
    ("median/call", lambda r: seconds(r["median_s"]), 11),
    ("IQR", spread, 6),
    ("vs numpy", lambda r: ratio(r["ratio_numpy"]), 9),
    ("vs C", lambda r: ratio(r["ratio_c"]), 8),
    ("first call", lambda r: seconds(r["first_call_s"]), 10),
    ("grad err", lambda r: "-" if r["grad_err"] is None else f"{r['grad_err']:.0e}", 8),
    ("status", lambda r: r["status"] + (f" [{r['note']}]" if r["note"] else ""), 0),
)


def table_lines(rows, markdown=False):
    """The main table as text lines (fixed-width, or a Markdown table)."""
    if markdown:
        lines = ["| " + " | ".join(h for h, _, _ in TABLE_COLUMNS) + " |",
                 "|" + "---|" * len(TABLE_COLUMNS)]
        return lines + ["| " + " | ".join(cell(r).replace("|", "/") for _, cell, _ in TABLE_COLUMNS) + " |"
                        for r in rows]
    lines = ["  ".join(h.ljust(w) for h, _, w in TABLE_COLUMNS)]
    return lines + ["  ".join(cell(r).ljust(w) for _, cell, w in TABLE_COLUMNS) for r in rows]


def coldstart_lines(rows, markdown=False):
    """The W5 cold-process table as text lines."""
    header = ("case", "implementation", "import", "first call (process 1)", "first call (later)",
              "later: min-max", "disk hits", "second call", "status")
    cells = [(r["case"], r["impl"], seconds(r["import_s"]), seconds(r["first_call_s"]),
              seconds(r["later_first_call_s"]), "-".join(map(seconds, r.get("later_range_s") or [None])),
              r.get("disk") or "-", seconds(r["second_call_s"]), r["status"]) for r in rows]
    if markdown:
        return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(c) + " |" for c in cells])
    widths = (26, 16, 9, 22, 18, 17, 9, 11, 0)
    return ["  ".join(h.ljust(w) for h, w in zip(header, widths))] + [
        "  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]


def write_json(document, path):
    """Write the run's document (machine, settings, rows, scaling, coldstart) as JSON."""
    with open(path, "w") as fh:
        json.dump(document, fh, indent=1)


def draw_plots(document, directory):
    """ratios.png (time per call / NumPy hand-written, per case) and one PNG per scaling series."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(directory, exist_ok=True)
    written = []
    rows = [r for r in document["rows"] if r["ratio_numpy"] is not None]
    cases = list(dict.fromkeys(f"{r['workload']} {r['case']}" for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    if cases:
        fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(cases)), 5))
        width = 0.8 / len(impls)
        for k, impl in enumerate(impls):
            found = {f"{r['workload']} {r['case']}": r["ratio_numpy"] for r in rows if r["impl"] == impl}
            xs = [i + k * width for i, c in enumerate(cases) if c in found]
            ax.bar(xs, [found[c] for c in cases if c in found], width, label=impl)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))], cases, rotation=30, ha="right")
        ax.set_ylabel("time per gradient / NumPy hand-written (lower is better)")
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        written.append(os.path.join(directory, "ratios.png"))
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    for series, series_rows in document.get("scaling", {}).items():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for impl in dict.fromkeys(r["impl"] for r in series_rows):
            points = [r for r in series_rows if r["impl"] == impl and r["status"] == "ok"]
            for ax, key in zip(axes, ("median_s", "first_call_s")):
                ax.plot([p["scale"] for p in points], [p[key] for p in points], marker="o", label=impl)
        for ax, title in zip(axes, ("time per gradient call", "first call (trace + compile + run)")):
            ax.set(xscale="log", yscale="log", xlabel=series, ylabel="seconds", title=title)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        written.append(os.path.join(directory, f"scaling_{series.replace(' ', '_')}.png"))
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
