"""Compile the hand-written C gradients (bench/c/*.c) with gcc into a cache dir and bind them via ctypes.

Flags: -O3 -march=native -ffast-math -fopenmp-simd, linked with libmvec, so that `#pragma omp simd`
loops call glibc's vector exp/sin/tanh (_ZGVeN8v_*); measured: without -ffast-math gcc keeps scalar calls.
Compiling and linking are separate steps so that -ffast-math does not link crtfastmath.o: loading such a
library would switch the whole process to flush-to-zero and change NumPy's and jitgrad's results.
"""
import ctypes
import hashlib
import os
import subprocess
import time

import numpy as np

C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")
CFLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-fPIC"]
LIBS = ["-lmvec", "-lm"]
_loaded = {}
build_seconds = {}   # source name -> gcc wall time in this process (0.0 when taken from the cache)


def cache_dir():
    """Where compiled libraries are kept ($JITGRAD_BENCH_CACHE or ~/.cache/jitgrad-bench)."""
    root = os.environ.get("JITGRAD_BENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                   "jitgrad-bench")
    os.makedirs(root, exist_ok=True)
    return root


def load(source):
    """Compile bench/c/<source> (if not cached) and return the loaded ctypes.CDLL."""
    if source in _loaded:
        return _loaded[source]
    with open(os.path.join(C_DIR, source), "rb") as fh:
        text = fh.read()
    key = hashlib.sha256(text + " ".join(CFLAGS + LIBS).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"{os.path.splitext(source)[0]}-{key}.so")
    start = time.perf_counter()
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        subprocess.run(["gcc", *CFLAGS, "-c", "-o", f"{tmp}.o", os.path.join(C_DIR, source)],
                       check=True, capture_output=True, text=True)
        subprocess.run(["gcc", "-shared", "-o", tmp, f"{tmp}.o", *LIBS], check=True, capture_output=True, text=True)
        os.remove(f"{tmp}.o")
        os.replace(tmp, path)
    build_seconds[source] = time.perf_counter() - start
    _loaded[source] = ctypes.CDLL(path)
    return _loaded[source]


def _c_arg(value):
    if isinstance(value, np.ndarray):
        if not (value.flags.c_contiguous and value.dtype == np.float64):
            raise TypeError("C gradients take C-contiguous float64 arrays")
        return ctypes.c_void_p(value.ctypes.data)
    if isinstance(value, (bool, int, np.integer)):
        return ctypes.c_long(int(value))
    if isinstance(value, (float, np.floating)):
        return ctypes.c_double(float(value))
    if isinstance(value, ctypes.c_void_p):
        return value
    raise TypeError(f"cannot pass {type(value).__name__} to C")


def bind(lib, name, *args, result=None):
    """A zero-argument closure calling lib.<name>(*args) and returning `result` (the output buffers).

    The ctypes conversions are done once: arrays become data pointers (the closure keeps the arrays
    alive), ints c_long, floats c_double. The C function returns void and writes into the outputs.
    """
    fn = getattr(lib, name)
    fn.restype = None
    converted = [_c_arg(a) for a in args]

    def call(keep=args):
        fn(*converted)
        return result
    return call


def outputs_like(*arrays):
    """Fresh zeroed float64 output buffers shaped like `arrays`."""
    return tuple(np.zeros(np.shape(a)) for a in arrays)
