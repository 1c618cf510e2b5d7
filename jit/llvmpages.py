"""LLVM's library pages handed back between compiles, so that the process's peak resident memory is what one
phase of LLVM touches, not the union of all of them.

libllvmlite.so maps ~150 MB of code and read-only data.  LLVM's static initialisers (at import), the IR pass
pipeline and the code generator each touch pages scattered over it, and the kernel maps every touched page
with its neighbours (64 KB fault-around): measured on W1's 100,000-step gradient, 36 MB after the import and
70 MB after the first compile, the larger part of the process's peak (122 MB).  These pages are clean copies
of the file: `release()` unmaps them from this process with madvise(MADV_DONTNEED) (they stay in the page
cache, shared with every process that maps the library, and reclaimable) and the next phase maps back the
ones it uses, at the cost of minor page faults (~4 ms of CPU per compiled module, measured: see
bench/RESULTS.md).  The engine calls it after LLVM's set-up, after a module's IR passes and after its machine
code is made or loaded (engine.py).  `JITGRAD_KEEP_LLVM_PAGES=1` keeps the pages mapped.

Only mappings whose pages are exactly the file's are released: not writable and holding no anonymous
(copied-on-write) page when first looked at (the relocated RELRO and data mappings are kept).  Elsewhere than
Linux, or where /proc or madvise is missing, this does nothing.
"""
import ctypes
import os
import sys

LIBRARY = "libllvmlite"
MADV_DONTNEED = 4
_state = {}


def clean_mappings(library=LIBRARY, smaps="/proc/self/smaps"):
    """(start, length) of the mappings of `library` that are not writable and hold no anonymous page, from
    `smaps` (a /proc/PID/smaps text); [] where it cannot be read."""
    found, current = [], None
    try:
        with open(smaps) as lines:
            for line in lines:
                first = line.split(maxsplit=1)[0]
                if not first.endswith(":"):        # a mapping's header: range, permissions, ..., path
                    fields = line.split()
                    current = fields if library in line and "w" not in fields[1] else None
                elif first == "Anonymous:" and current is not None and int(line.split()[1]) == 0:
                    start, end = (int(part, 16) for part in current[0].split("-"))
                    found.append((start, end - start))
    except OSError:
        return []
    return found


def _madvise():
    """libc's madvise with its argument types, or None."""
    if "madvise" not in _state:
        try:
            function = ctypes.CDLL(None, use_errno=True).madvise
            function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        except (OSError, AttributeError):
            function = None
        _state["madvise"] = function
    return _state["madvise"]


def release():
    """Unmap the clean pages of LLVM's library from this process (see the module docstring).  The mappings
    are found once, after LLVM is loaded and initialised; a failing madvise stops further releases."""
    if (not sys.platform.startswith("linux") or _state.get("failed")
            or os.environ.get("JITGRAD_KEEP_LLVM_PAGES", "") not in ("", "0")):
        return
    if "mappings" not in _state:
        _state["mappings"] = clean_mappings()
    madvise = _madvise()
    if madvise is None:
        _state["failed"] = True
        return
    for start, length in _state["mappings"]:
        if madvise(start, length, MADV_DONTNEED) != 0:
            _state["failed"] = True
            return
