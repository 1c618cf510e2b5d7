"""LLVM's library pages handed back: the clean pages of libllvmlite.so that LLVM touched are unmapped from the
process once it has loaded (and, if asked, between the phases of every compile), lowering its peak memory.

libllvmlite.so maps ~150 MB of code and read-only data.  LLVM's static initialisers (at import), the IR pass
pipeline and the code generator each touch pages scattered over it, and the kernel maps every touched page
with its neighbours (64 KB fault-around): measured on W1's 100,000-step gradient, 36 MB after the import and
70 MB after the first compile, the larger part of the process's peak (122 MB).  These pages are clean copies
of the file: `release()` unmaps them from this process with madvise(MADV_DONTNEED) (they stay in the page
cache, shared with every process that maps the library, and reclaimable); what LLVM uses again is mapped
back on demand, at the cost of minor page faults.

`JITGRAD_LLVM_PAGES` says when (engine.py calls `release`):
- "load" (default): once, when llvmlite has loaded (at `import jitgrad`): the static initialisers' pages,
  most of which no compile uses.  Measured (W1, 100,000 steps): peak 121 -> 105 MB; ~3.5 ms of CPU at
  import, the first call unchanged (~220 more minor faults).
- "phases": also after each module's IR passes and after its machine code is made or loaded, so that the
  peak is what one phase touches: 121 -> 89 MB, but ~4-7 ms more CPU per compiled module (each phase maps its
  pages back), ~10% of that gradient's first call.
- "keep": never.

Only mappings whose pages are exactly the file's are released: not writable and holding no anonymous
(copied-on-write) page when first looked at (the relocated RELRO and data mappings are kept; /proc/self/maps
and /proc/self/pagemap tell, read once: /proc/self/smaps would cost 5-12 ms).  Elsewhere than
Linux, or where /proc or madvise is missing, this does nothing.
"""
import ctypes
import mmap
import os
import sys

import numpy as np

LIBRARY = "libllvmlite"
MADV_DONTNEED = 4
SETTINGS = ("load", "phases", "keep")
PAGE = mmap.PAGESIZE
_state = {}


def clean_mappings(library=LIBRARY, maps="/proc/self/maps", pagemap="/proc/self/pagemap"):
    """(start, length) of the mappings of `library` (from a /proc/PID/maps text) that are not writable and hold
    no anonymous (copied-on-write) page, resident or swapped (its `pagemap`: an entry present or swapped and
    not a file page); [] where either cannot be read."""
    found = []
    try:
        with open(maps) as lines, open(pagemap, "rb") as entries:
            for line in lines:
                fields = line.split()
                if library not in line or "w" in fields[1]:
                    continue
                start, end = (int(part, 16) for part in fields[0].split("-"))
                entries.seek(start // PAGE * 8)
                flags = np.frombuffer(entries.read((end - start) // PAGE * 8), dtype=np.uint64) >> np.uint64(61)
                if not np.any(((flags & np.uint64(6)) != 0) & ((flags & np.uint64(1)) == 0)):
                    found.append((start, end - start))
    except (OSError, ValueError):
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


def setting():
    """`JITGRAD_LLVM_PAGES`: "load" (default: released once, after llvmlite loads), "phases" (also between
    LLVM's phases of every compile) or "keep" (never released)."""
    value = os.environ.get("JITGRAD_LLVM_PAGES", "").strip().lower() or "load"
    if value not in SETTINGS:
        raise ValueError(f"JITGRAD_LLVM_PAGES={value!r}: expected one of {', '.join(SETTINGS)}")
    return value


def release(when="load"):
    """Unmap the clean pages of LLVM's library from this process (see the module docstring) if the setting
    asks for releases `when` ("load" or "phases").  The mappings are found once; a failing madvise stops
    further releases."""
    wanted = setting()
    if (wanted == "keep" or (when == "phases" and wanted != "phases") or not sys.platform.startswith("linux")
            or _state.get("failed")):
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
