"""Library pages handed back: the clean pages of the shared libraries loaded when jitgrad is imported, and
at every compile the pages of libllvmlite.so that the next phase of LLVM does not use, are unmapped from the
process, lowering its peak memory.

libllvmlite.so maps ~150 MB of code and read-only data.  LLVM's static initialisers (at import), the IR pass
pipeline and the code generator each touch pages scattered over it, and the kernel maps every touched page
with its neighbours (64 KB fault-around, which `MADV_RANDOM` does not change): measured on W1's
100,000-step gradient, 36 MB after the import, ~30 MB for the passes (the IR parser's pages included), ~39 MB
for the code generator, 51 MB both (19 MB of them used by both), the larger part of the process's peak.  These
pages are clean copies of the file: `release()` unmaps them with madvise(MADV_DONTNEED) (they stay in the page
cache, shared with every process that maps the library, and reclaimable); what is used again is mapped back
on demand, at the cost of a minor page fault per 64 KB (~2-4 us).

`JITGRAD_LLVM_PAGES` says when (engine.py calls `release` at each point):
- "auto" (default): at import, the clean pages of every shared library loaded by then (what loading touched:
  LLVM's static initialisers, OpenSSL's set-up, ...).  At each compile, before the code generator runs, the
  LLVM pages it does not use, and after it, those the IR passes do not use: the pages both phases use stay
  mapped, so LLVM's share of the peak is that of its larger phase (~39 MB, not 51) while each compile maps
  back only the pages one phase alone uses (~31 MB, ~500 faults, not 70 MB).  Which pages each phase uses is
  learned once per process, from /proc/self/pagemap, on the first compile that runs the IR passes (it
  releases everything before each phase).  Not with JITGRAD_SYNC_COMPILE=1 (`tiered`): then only at import.
  W1, 100,000 steps (bench/loop_scaling.py): peak 106 -> 84 MB.
  Cost, measured: ~2 ms of CPU per compile (the releases ~1 ms, ~500 faults), ~4-6 ms on the learning one:
  off the user's path for a tiered first call (the kernel compiles in the background), on it for one
  compiled first by the 50 ms rule (W1's first call: +4-9 ms, 5-12%, at load 7).
- "load": only the release at import (W1: 99 MB; no cost measured).
- "phases": at import, and every LLVM page before each compile's code generator and after it: the lowest
  peak (W1: 83 MB), but each compile maps back everything it uses (~1,100 faults, ~3-4 ms of CPU).
- "keep": never (W1: 122 MB).

Large numbers of ranges are released by one process_madvise call on this process's pidfd where the kernel
takes MADV_DONTNEED from it (Linux 6.x), else by one madvise call each (~7 us each, a TLB flush per call).

Only private mappings whose pages are exactly the file's are released: not writable and holding no anonymous
(copied-on-write) page when first looked at (the relocated RELRO and data mappings are kept; /proc/self/maps
and /proc/self/pagemap tell, read once: /proc/self/smaps would cost 5-12 ms).  Elsewhere than Linux, or where
/proc or madvise is missing, this does nothing.
"""
import ctypes
import functools
import mmap
import os
import sys

import numpy as np

LIBRARY = "libllvmlite"
SHARED_LIBRARY = ".so"      # in a mapped file's name: a shared library (libc.so.6, x.cpython-311-...so)
MADV_DONTNEED = 4
SETTINGS = ("auto", "load", "phases", "keep")
POINTS = ("load", "passes", "codegen", "compiled")
PAGE = mmap.PAGESIZE
CHUNK = 16                  # pages one read fault maps (fault-around): what is used is tracked by chunk
_state = {}


def clean_mappings(library=LIBRARY, maps="/proc/self/maps", pagemap="/proc/self/pagemap"):
    """(start, length) of the private mappings whose file name contains `library` (from a /proc/PID/maps
    text) that are not writable and hold no anonymous (copied-on-write) page, resident or swapped (its
    `pagemap`: an entry present or swapped and not a file page); [] where either cannot be read."""
    found = []
    try:
        with open(maps) as lines, open(pagemap, "rb") as entries:
            for line in lines:
                fields = line.split()
                if (len(fields) < 6 or library not in os.path.basename(fields[5]) or "w" in fields[1]
                        or not fields[1].endswith("p")):
                    continue
                start, end = (int(part, 16) for part in fields[0].split("-"))
                entries.seek(start // PAGE * 8)
                flags = np.frombuffer(entries.read((end - start) // PAGE * 8), dtype=np.uint64) >> np.uint64(61)
                if not np.any(((flags & np.uint64(6)) != 0) & ((flags & np.uint64(1)) == 0)):
                    found.append((start, end - start))
    except (OSError, ValueError):
        return []
    return found


def used_chunks(mappings, pagemap="/proc/self/pagemap"):
    """For each mapping (start, length): a mask of the 64 KB chunks (CHUNK pages, aligned as fault-around
    aligns them) it overlaps, True where a page of the chunk is mapped now."""
    masks = []
    with open(pagemap, "rb") as entries:
        for start, length in mappings:
            entries.seek(start // PAGE * 8)
            lead, pages = start // PAGE % CHUNK, length // PAGE
            present = np.zeros(-(-(lead + pages) // CHUNK) * CHUNK, dtype=np.uint64)
            present[lead:lead + pages] = np.frombuffer(entries.read(pages * 8), dtype=np.uint64)
            masks.append((present.reshape(-1, CHUNK) >> np.uint64(63)).any(axis=1))
    return masks


class Ranges(list):
    """(start, length) address ranges, with process_madvise's iovec arrays for them built once."""

    @functools.cached_property
    def vectors(self):
        return [((_Iovec * len(part))(*part), len(part), sum(length for _, length in part))
                for part in (self[first:first + IOV_MAX] for first in range(0, len(self), IOV_MAX))]


def unused_ranges(mappings, kept):
    """The Ranges of `mappings` outside the chunks that their masks in `kept` (from used_chunks) mark."""
    ranges = Ranges()
    for (start, length), mask in zip(mappings, kept):
        edges = np.flatnonzero(np.diff(np.concatenate([[False], ~mask, [False]]).astype(np.int8)))
        base = start // (CHUNK * PAGE) * CHUNK * PAGE         # the first chunk's address
        for first, last in edges.reshape(-1, 2).tolist():
            low, high = max(start, base + first * CHUNK * PAGE), min(start + length, base + last * CHUNK * PAGE)
            ranges.append((low, high - low))
    return ranges


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


SYS_PIDFD_OPEN, SYS_PROCESS_MADVISE, IOV_MAX = 434, 440, 1024
SYSCALL_MACHINES = ("x86_64", "aarch64", "riscv64", "ppc64le", "s390x")   # (where those are the numbers)


def _libc():
    """libc with madvise's argument types and syscall's result type, or None."""
    if "libc" not in _state:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            libc.syscall.restype = ctypes.c_long
        except (OSError, AttributeError):
            libc = None
        _state["libc"] = libc
    return _state["libc"]


def _madvise():
    """libc's madvise, or None."""
    libc = _libc()
    return None if libc is None else libc.madvise


def _process_madvise(ranges):
    """madvise(MADV_DONTNEED) of `ranges` by process_madvise on this process's pidfd, IOV_MAX ranges a call
    (one system call and one TLB flush per call, where madvise takes one per range: ~7 us each measured); False
    where the kernel does not take this advice from it (before Linux 6.x, or no pidfd_open)."""
    libc = _libc()
    pid, fd = _state.get("pidfd", (None, -1))
    if pid != os.getpid():              # (a forked child has its own pages)
        known = os.uname().machine in SYSCALL_MACHINES
        fd = libc.syscall(SYS_PIDFD_OPEN, ctypes.c_int(os.getpid()), ctypes.c_uint(0)) if known else -1
        _state["pidfd"] = (os.getpid(), fd)
    if fd < 0:
        return False
    for vector, count, total in (ranges if isinstance(ranges, Ranges) else Ranges(ranges)).vectors:
        done = libc.syscall(SYS_PROCESS_MADVISE, ctypes.c_int(fd), vector, ctypes.c_size_t(count),
                            ctypes.c_int(MADV_DONTNEED), ctypes.c_uint(0))
        if done != total:
            _state["pidfd"] = (os.getpid(), -1)      # (madvise, range by range, does it all again)
            return False
    return True


def setting():
    """`JITGRAD_LLVM_PAGES`: "auto" (default), "load", "phases" or "keep" (see the module docstring)."""
    value = os.environ.get("JITGRAD_LLVM_PAGES", "").strip().lower() or "auto"
    if value not in SETTINGS:
        raise ValueError(f"JITGRAD_LLVM_PAGES={value!r}: expected one of {', '.join(SETTINGS)}")
    return value


def _advise(ranges):
    """madvise(MADV_DONTNEED) each range (by `_process_madvise` where it can); a failure stops every later
    release."""
    madvise = _madvise()
    if madvise is None:
        _state["failed"] = True
        return
    if len(ranges) > 1 and _process_madvise(ranges):
        return
    for start, length in ranges:
        if madvise(start, length, MADV_DONTNEED) != 0:
            _state["failed"] = True
            return


def release(when="load"):
    """Unmap the clean library pages that the setting releases at point `when` (one of POINTS: "load" once
    llvmlite has loaded; "passes" before a compile parses its IR and runs the IR passes, "codegen" before its
    machine code is made, "compiled" after a module's code is made or loaded).  The mappings are found once;
    a failing madvise stops further releases."""
    wanted = setting()
    if when not in POINTS:
        raise ValueError(f"release point {when!r}: expected one of {', '.join(POINTS)}")
    if wanted == "keep" or not sys.platform.startswith("linux") or _state.get("failed"):
        return
    if "mappings" not in _state:
        _state["mappings"] = clean_mappings()
    if when == "load":
        _advise(clean_mappings(SHARED_LIBRARY))
    elif not _state["mappings"]:
        return
    elif wanted == "phases" and when != "passes":
        _advise(_state["mappings"])
    elif wanted == "auto" and tiered():
        _phase(when, _state["mappings"])


def tiered():
    """Whether new traces compile in the background (JITGRAD_SYNC_COMPILE unset or 0, jitgrad/backend.py): then
    a compile on the user's path is one whose first call is long anyway (a trace the reference executor would
    take over 50 ms on, a long loop fast-forwarded), and "auto" releases at each compile; with
    JITGRAD_SYNC_COMPILE=1 every compile is on the user's path, and "auto" releases only at import."""
    return os.environ.get("JITGRAD_SYNC_COMPILE", "") in ("", "0")


def _phase(when, mappings):
    """The "auto" setting's release at compile point `when` (see the module docstring)."""
    learned = _state.get("learned")        # (ranges the IR passes do not use, ranges the code generator does not)
    if learned is None and when == "passes":
        _advise(mappings)                  # learning: what is mapped after each phase is what it used
        _state["learning"] = True
    elif learned is None and not _state.get("learning"):
        _advise(mappings)                  # (a module without IR passes before any with them: as "phases")
    elif learned is None and when == "codegen":
        _state["passes_used"] = used_chunks(mappings)
        _advise(mappings)
    elif learned is None:                  # "compiled" at the end of the learning compile
        passes = _state.pop("passes_used", None)
        _state["learning"] = False
        if passes is None:                 # (the compile failed before its code generator)
            _advise(mappings)
            return
        learned = _state["learned"] = (unused_ranges(mappings, passes),
                                       unused_ranges(mappings, used_chunks(mappings)))
        _advise(learned[0])
    elif when == "codegen":
        _advise(learned[1])
    elif when == "compiled":
        _advise(learned[0])
