"""A spectral loss through np.fft: the gradient of a windowed, weighted power spectrum and of a
spectral-derivative penalty, per size, side by side in one run: NumPy's hand-written gradient, jitgrad
with complex arithmetic and the FFTs compiled (pairs of doubles: jit/complexops.py; numpy.fft's pocketfft
loops called from the kernel: jit/fftcall.py) and jitgrad with every complex node a host call (as before
complexops; `complexops.NATIVE = False`, the FFTs through numpy.fft's Python functions).  The host-call
column runs today's trace, whose real-transform cotangents (ir/fft_rules.py) bring more complex nodes
(each one more host call) than the traces of the issue's time, which are measured on that commit.

    python bench/spectral.py [--sizes 64,256,4096] [--reps 15] [--clock cpu|wall]

Prints one line per (loss, size): medians of interleaved repeats (bench/timing.py; CPU time of the
thread by default, steadier than wall-clock time on a shared machine) and the ratios.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.threads import pin_single_thread  # noqa: E402

pin_single_thread()
os.environ["JITGRAD_SYNC_COMPILE"] = "1"       # the kernel is planned while complexops.NATIVE is set
import numpy as np  # noqa: E402

import jitgrad  # noqa: E402
from bench.timing import gradient_error, interleaved  # noqa: E402
from jitgrad.jit import complexops  # noqa: E402


def problem(n):
    """(x, window, weights, wavenumbers) of size n."""
    rng = np.random.default_rng(5)
    k = np.fft.fftfreq(n) * n
    return rng.standard_normal(n), np.hanning(n), 1.0 / (1.0 + k * k), k


def power(x, window, weight, k):
    """sum_k weight_k |FFT(x * window)_k|^2."""
    return np.sum(weight * np.abs(np.fft.fft(x * window)) ** 2)


def power_grad(x, window, weight, k):
    """Hand-written: 2 window * Re(n * IFFT(weight * F))."""
    F = np.fft.fft(x * window)
    return 2.0 * window * np.real(np.fft.ifft(weight * F)) * x.size


def derivative(x, window, weight, k):
    """sum window * (d/dt x)^2 (the derivative taken spectrally) + sum weight |F|^2 / n."""
    F = np.fft.fft(x)
    d = np.real(np.fft.ifft(1j * k * F))
    return np.sum(window * d * d) + np.sum(weight * np.real(F * np.conj(F))) / x.size


def derivative_grad(x, window, weight, k):
    """Hand-written gradient of `derivative`."""
    F = np.fft.fft(x)
    d = np.real(np.fft.ifft(1j * k * F))
    back = np.real(np.fft.ifft(-1j * k * np.fft.fft(2.0 * window * d)))
    return back + 2.0 * np.real(np.fft.ifft(weight * F))


def measure(loss, hand, n, reps, clock):
    args = problem(n)
    jitted = {}
    for label, native in (("native", True), ("host calls", False)):
        complexops.NATIVE = native      # read when the first call compiles the kernel
        jitted[label] = g = jitgrad.jit_grad(lambda x, w, s, k: loss(x, w, s, k))
        err = gradient_error([g(*args)], [hand(*args)])
        assert err < 1e-9, (label, err)
    complexops.NATIVE = True
    calls = {"numpy (hand)": lambda: hand(*args), **{k: (lambda g=g: g(*args)) for k, g in jitted.items()}}
    times = {k: v["median_s"] for k, v in interleaved(calls, reps, 0.02, 20.0, clock=clock).items()}
    print(f"{loss.__name__:10s} n={n:<6d} numpy {times['numpy (hand)'] * 1e6:9.1f} us   "
          f"jitgrad host calls {times['host calls'] * 1e6:9.1f} us   native {times['native'] * 1e6:9.1f} us   "
          f"native vs host calls {times['host calls'] / times['native']:5.2f}x   "
          f"vs numpy {times['native'] / times['numpy (hand)']:5.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,4096")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time the samples in CPU time of the thread (default) or wall-clock time")
    opts = parser.parse_args()
    clock = time.thread_time if opts.clock == "cpu" else time.perf_counter
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {opts.clock} time")
    for loss, hand in ((power, power_grad), (derivative, derivative_grad)):
        for n in map(int, opts.sizes.split(",")):
            measure(loss, hand, n, opts.reps, clock)


if __name__ == "__main__":
    main()
