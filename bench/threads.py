"""Single-threaded BLAS, math libraries and jitgrad kernels (every row single-threaded unless it says threads):
call pin_single_thread() before numpy is imported."""
import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "JITGRAD_NUM_THREADS")


def pin_single_thread():
    """Set every known thread-count variable to 1 (unless the user set it) and XLA to one thread."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
