"""LLVM's library pages are handed back (jit/llvmpages.py): only mappings whose pages are the file's own are
released, when JITGRAD_LLVM_PAGES says so; with "phases" the library's resident pages drop after a compile,
and kernels compiled after a release (its code mapped back on demand) compute what the reference executor
computes."""
import os
import subprocess
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.jit import llvmpages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")

PAGE = llvmpages.PAGE
FILE, ANON, SWAPPED = (1 << 63) | (1 << 61), 1 << 63, 1 << 62      # pagemap entries: present file page, ...
MAPPINGS = [  # (permissions, path, first page, pages, {page: pagemap entry})
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 16, 4, {16: FILE, 17: FILE}),
    ("r-xp", "/site-packages/llvmlite/binding/libllvmlite.so", 20, 8, {23: FILE}),
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 28, 4, {29: FILE, 30: ANON}),    # RELRO
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 32, 2, {33: SWAPPED}),           # swapped out
    ("rw-p", "/site-packages/llvmlite/binding/libllvmlite.so", 34, 2, {}),                      # data
    ("r-xp", "/usr/lib/libm.so.6", 40, 4, {40: FILE}),
    ("rw-p", "", 50, 4, {50: ANON}),
]


def test_only_unwritten_read_only_mappings_of_the_library_are_candidates(tmp_path):
    maps, pagemap = tmp_path / "maps", tmp_path / "pagemap"
    maps.write_text("".join(f"{first * PAGE:x}-{(first + n) * PAGE:x} {perms} 00000000 fe:00 11 {path}\n"
                            for perms, path, first, n, _ in MAPPINGS))
    entries = np.zeros(64, dtype=np.uint64)
    for *_, pages in MAPPINGS:
        for page, entry in pages.items():
            entries[page] = entry
    pagemap.write_bytes(entries.tobytes())
    found = llvmpages.clean_mappings(maps=str(maps), pagemap=str(pagemap))
    assert found == [(16 * PAGE, 4 * PAGE), (20 * PAGE, 8 * PAGE)]
    assert llvmpages.clean_mappings(maps=str(maps), pagemap=str(tmp_path / "missing")) == []


def _library_rss_kb():
    """Resident kB of libllvmlite.so's mappings in this process, by permissions."""
    rss, current = {}, None
    with open("/proc/self/smaps") as lines:
        for line in lines:
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):
                fields = line.split()
                current = fields[1] if llvmpages.LIBRARY in line else None
            elif first == "Rss:" and current is not None:
                rss[current] = rss.get(current, 0) + int(line.split()[1])
    return rss


@linux
def test_a_compile_leaves_little_of_the_library_resident_and_later_kernels_are_right(monkeypatch):
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "phases")
    def loss(x, k):
        total = 0.0
        for i in range(k):
            total = total + np.sin(x * (i + 1.25)) * np.cos(x)
        return np.sum(total ** 2)

    x = np.linspace(-1.0, 1.0, 7)
    for k in (3, 4):                       # two compiles, the second after the first one's pages were released
        compiled = jitgrad.jit_grad(loss)(x, k)
        reference = jitgrad.jit_grad(loss, jit=False)(x, k)
        assert np.allclose(compiled, reference, rtol=1e-12, atol=1e-14)
    rss = _library_rss_kb()
    # a compile maps 40-70 MB of the library's code (r-xp 20-50 MB of it); released, little stays
    assert rss["r-xp"] < 8 * 1024, rss
    assert not llvmpages._state.get("failed")


@linux
def test_release_advises_every_clean_mapping_when_the_setting_asks_and_stops_after_a_failure(monkeypatch):
    calls = []
    result = {"value": 0}
    monkeypatch.setitem(llvmpages._state, "mappings", [(0x10000, 0x4000), (0x40000, 0x8000)])
    monkeypatch.setitem(llvmpages._state, "madvise", lambda *args: calls.append(args) or result["value"])
    monkeypatch.setitem(llvmpages._state, "failed", False)
    monkeypatch.delenv("JITGRAD_LLVM_PAGES", raising=False)         # default "load"
    llvmpages.release("phases")
    assert calls == []
    llvmpages.release()
    assert calls == [(0x10000, 0x4000, llvmpages.MADV_DONTNEED), (0x40000, 0x8000, llvmpages.MADV_DONTNEED)]
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "keep")
    llvmpages.release()
    assert len(calls) == 2
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "Phases")
    llvmpages.release("phases")
    assert len(calls) == 4
    result["value"] = -1                    # e.g. EINVAL on locked pages: stop, do not retry every compile
    llvmpages.release("phases")
    assert len(calls) == 5
    llvmpages.release("phases")
    assert len(calls) == 5
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "sometimes")
    with pytest.raises(ValueError, match="JITGRAD_LLVM_PAGES='sometimes'"):
        llvmpages.release()


@linux
def test_import_releases_what_llvm_s_static_initialisers_touched_unless_kept():
    probe = ("import jitgrad\n"
             "from tests.jit.test_llvm_pages import _library_rss_kb\n"
             "print(_library_rss_kb().get('r-xp', 0))\n")

    def text_kb(setting):
        env = dict(os.environ, JITGRAD_LLVM_PAGES=setting)
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        return int(done.stdout.split()[-1])
    kept, released = text_kb("keep"), text_kb("load")
    assert released < 2 * 1024 and kept > 8 * 1024, (released, kept)     # ~0 against ~21 MB measured
