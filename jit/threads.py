"""The thread count of split loops (parallel.py) and the native symbols the split code calls: the
i64 cell `jg_num_threads` every kernel reads at run time, set from JITGRAD_NUM_THREADS (a positive
integer; default: the number of cores this process may run on, os.sched_getaffinity) or by
`set_num_threads`.  Imports nothing of jit/ (the engine registers `symbols()` when it starts)."""
import ctypes
import os

MAX_THREADS = 64


def _default_threads():
    setting = os.environ.get("JITGRAD_NUM_THREADS", "").strip()
    if setting:
        n = int(setting) if setting.isdigit() else 0
        if n < 1:
            raise ValueError(f"JITGRAD_NUM_THREADS must be a positive integer, got {setting!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_threads = ctypes.c_int64(min(_default_threads(), MAX_THREADS))


def num_threads():
    """The number of threads a big loop is split across."""
    return _threads.value


def set_num_threads(n):
    """Split big loops across `n` threads (1..MAX_THREADS) from now on, in every kernel."""
    if not 1 <= int(n) <= MAX_THREADS:
        raise ValueError(f"the number of threads must be in 1..{MAX_THREADS}, got {n!r}")
    _threads.value = int(n)


def symbols():
    """External symbols the split loops use: pthread_create/join and the thread-count cell; and the
    allocation calls of stacks of a run-time number of rows (loops.py)."""
    libc = ctypes.CDLL(None)
    return {**{f"jg_{name}": ctypes.cast(getattr(libc, name), ctypes.c_void_p).value
               for name in ("malloc", "realloc", "free", "malloc_usable_size")},
            "jg_pthread_create": ctypes.cast(libc.pthread_create, ctypes.c_void_p).value,
            "jg_pthread_join": ctypes.cast(libc.pthread_join, ctypes.c_void_p).value,
            "jg_num_threads": ctypes.addressof(_threads)}
