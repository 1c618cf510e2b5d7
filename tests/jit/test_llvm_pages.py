"""Library pages are handed back (jit/llvmpages.py): only private mappings of shared libraries whose pages are
the file's own are released, at the points JITGRAD_LLVM_PAGES names; "auto" (the default) learns which LLVM
pages each phase of a compile uses and keeps those both use; a fresh process's peak memory is lower than with
"keep", and kernels compiled after releases compute what the reference executor computes."""
import mmap
import os
import subprocess
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.jit import llvmpages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/pagemap is Linux's")

PAGE = llvmpages.PAGE
CHUNK = llvmpages.CHUNK
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILE, ANON, SWAPPED = (1 << 63) | (1 << 61), 1 << 63, 1 << 62      # pagemap entries: present file page, ...
MAPPINGS = [  # (permissions, path, first page, pages, {page: pagemap entry})
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 16, 4, {16: FILE, 17: FILE}),
    ("r-xp", "/site-packages/llvmlite/binding/libllvmlite.so", 20, 8, {23: FILE}),
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 28, 4, {29: FILE, 30: ANON}),    # RELRO
    ("r--p", "/site-packages/llvmlite/binding/libllvmlite.so", 32, 2, {33: SWAPPED}),           # swapped out
    ("rw-p", "/site-packages/llvmlite/binding/libllvmlite.so", 34, 2, {}),                      # data
    ("r-xp", "/usr/lib/libm.so.6", 40, 4, {40: FILE}),
    ("r--s", "/usr/lib/libshared.so", 44, 2, {44: FILE}),                                       # shared
    ("r--p", "/usr/share/data.bin", 46, 2, {46: FILE}),                                         # not a library
    ("rw-p", "", 50, 4, {50: ANON}),
]


def _fake_proc(tmp_path, mappings, entries_by_page):
    maps, pagemap = tmp_path / "maps", tmp_path / "pagemap"
    maps.write_text("".join(f"{first * PAGE:x}-{(first + n) * PAGE:x} {perms} 00000000 fe:00 11 {path}\n"
                            for perms, path, first, n, _ in mappings))
    entries = np.zeros(max(entries_by_page, default=0) + 64, dtype=np.uint64)
    for page, entry in entries_by_page.items():
        entries[page] = entry
    pagemap.write_bytes(entries.tobytes())
    return str(maps), str(pagemap)


def test_only_private_unwritten_mappings_of_libraries_are_candidates(tmp_path):
    maps, pagemap = _fake_proc(tmp_path, MAPPINGS, {p: e for *_, pages in MAPPINGS for p, e in pages.items()})
    assert llvmpages.clean_mappings(maps=maps, pagemap=pagemap) == [(16 * PAGE, 4 * PAGE), (20 * PAGE, 8 * PAGE)]
    assert llvmpages.clean_mappings(llvmpages.SHARED_LIBRARY, maps=maps, pagemap=pagemap) == [
        (16 * PAGE, 4 * PAGE), (20 * PAGE, 8 * PAGE), (40 * PAGE, 4 * PAGE)]
    assert llvmpages.clean_mappings(maps=maps, pagemap=str(tmp_path / "missing")) == []


def test_used_chunks_count_a_chunk_used_when_any_of_its_pages_is_mapped_and_ranges_cover_the_rest(tmp_path):
    # a mapping starting 4 pages into a fault-around chunk: its chunks hold pages [-4, 12), [12, 28), [28, 44)
    first = 3 * CHUNK + 4
    mapping = (first * PAGE, 40 * PAGE)
    _, pagemap = _fake_proc(tmp_path, [], {first + 13: FILE, first + 29: ANON})
    (mask,) = llvmpages.used_chunks([mapping], pagemap=pagemap)
    assert mask.tolist() == [False, True, True]
    assert llvmpages.unused_ranges([mapping], [mask]) == [(first * PAGE, 12 * PAGE)]
    mask[1] = False
    assert llvmpages.unused_ranges([mapping], [mask]) == [(first * PAGE, 28 * PAGE)]
    mask[:] = [True, False, False]
    assert llvmpages.unused_ranges([mapping], [mask]) == [((first + 12) * PAGE, 28 * PAGE)]


@pytest.fixture
def recorded(monkeypatch):
    """Releases recorded, not made: [(start, length), ...] per _advise call, from a fresh state."""
    calls = []
    monkeypatch.setenv("JITGRAD_SYNC_COMPILE", "0")        # (the tests run with 1)
    monkeypatch.setattr(llvmpages, "_state", {"mappings": [(0x100000, 0x40000), (0x200000, 0x20000)], "failed": False})
    monkeypatch.setattr(llvmpages, "_advise", lambda ranges: calls.append(list(ranges)))
    monkeypatch.setattr(llvmpages, "clean_mappings", lambda library=llvmpages.LIBRARY: [(library, 1)])
    return calls


@linux
@pytest.mark.parametrize("setting", ["auto", "load", "phases", "keep"])
def test_each_setting_releases_at_its_points(monkeypatch, recorded, setting):
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", setting)
    monkeypatch.setattr(llvmpages, "used_chunks", lambda mappings: [np.ones(-(-n // (CHUNK * PAGE)), bool)
                                                                    for _, n in mappings])
    llvmpages.release("load")
    for point in ("passes", "codegen", "compiled"):
        llvmpages.release(point)
    everything = [(0x100000, 0x40000), (0x200000, 0x20000)]
    expected = {"keep": [], "load": [[(".so", 1)]],
                "phases": [[(".so", 1)], everything, everything],
                "auto": [[(".so", 1)], everything, everything, []]}[setting]    # learning: all; then unused
    assert recorded == expected


@linux
def test_auto_learns_once_then_keeps_what_the_next_phase_uses(monkeypatch, recorded):
    monkeypatch.delenv("JITGRAD_LLVM_PAGES", raising=False)
    mappings = llvmpages._state["mappings"]
    passes = [np.array([True, True, False, False]), np.array([True, False])]       # 64 KB chunks
    codegen = [np.array([False, True, True, False]), np.array([False, True])]
    seen = iter([passes, codegen])
    monkeypatch.setattr(llvmpages, "used_chunks", lambda m: next(seen))
    for point in ("passes", "codegen", "compiled"):         # the learning compile
        llvmpages.release(point)
    not_for_passes = llvmpages.unused_ranges(mappings, passes)
    not_for_codegen = llvmpages.unused_ranges(mappings, codegen)
    assert recorded == [mappings, mappings, not_for_passes]
    del recorded[:]
    for point in ("passes", "codegen", "compiled", "compiled"):     # a compile, then a module from the disk
        llvmpages.release(point)
    assert recorded == [not_for_codegen, not_for_passes, not_for_passes]
    assert not_for_codegen == [(0x100000, 0x10000), (0x130000, 0x10000), (0x200000, 0x10000)]


@linux
def test_auto_releases_only_at_import_when_every_compile_is_on_the_user_s_path(monkeypatch, recorded):
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "auto")
    monkeypatch.setenv("JITGRAD_SYNC_COMPILE", "1")
    for point in ("load", "passes", "codegen", "compiled"):
        llvmpages.release(point)
    assert recorded == [[(".so", 1)]]
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "phases")
    llvmpages.release("codegen")
    assert recorded[1:] == [llvmpages._state["mappings"]]


@linux
def test_a_failed_learning_compile_or_a_module_without_passes_releases_everything(monkeypatch, recorded):
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "auto")
    mappings = llvmpages._state["mappings"]
    llvmpages.release("codegen")                 # an O0 module before any with IR passes
    llvmpages.release("compiled")
    llvmpages.release("passes")                  # a compile that fails in its passes ...
    llvmpages.release("compiled")                # ... then a module loaded from the disk cache
    assert recorded == [mappings] * 4 and "learned" not in llvmpages._state
    with pytest.raises(ValueError, match="JITGRAD_LLVM_PAGES='sometimes'"):
        monkeypatch.setenv("JITGRAD_LLVM_PAGES", "sometimes")
        llvmpages.release("load")


@linux
def test_madvise_failing_stops_every_later_release(monkeypatch):
    calls = []
    monkeypatch.setattr(llvmpages, "_state", {"failed": False, "mappings": [(0x10000, 0x4000)]})
    monkeypatch.setattr(llvmpages, "_madvise", lambda: lambda *args: calls.append(args) or -1)
    monkeypatch.setattr(llvmpages, "_process_madvise", lambda ranges: False)
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", "phases")
    llvmpages.release("codegen")             # e.g. EINVAL on locked pages: stop, do not retry every compile
    llvmpages.release("compiled")
    assert calls == [(0x10000, 0x4000, llvmpages.MADV_DONTNEED)] and llvmpages._state["failed"]


def _present_pages(start, pages):
    with open("/proc/self/pagemap", "rb") as entries:
        entries.seek(start // PAGE * 8)
        return int(np.count_nonzero(np.frombuffer(entries.read(pages * 8), dtype=np.uint64) >> np.uint64(63)))


@linux
def test_many_ranges_are_released_in_one_call_and_a_forked_child_opens_its_own_pidfd(tmp_path, monkeypatch):
    path = tmp_path / "file"
    path.write_bytes(os.urandom(64 * CHUNK * PAGE))
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    view = np.frombuffer(mapped, dtype=np.uint8)
    start = view.ctypes.data
    assert int(view[::PAGE].astype(np.int64).sum()) >= 0          # every page mapped
    assert _present_pages(start, 64 * CHUNK) == 64 * CHUNK
    one_by_one = []
    real = llvmpages._madvise()
    monkeypatch.setattr(llvmpages, "_madvise", lambda: lambda *args: one_by_one.append(args) or real(*args))
    monkeypatch.setitem(llvmpages._state, "pidfd", (-1, -1))         # as in a child forked after a release
    monkeypatch.setitem(llvmpages._state, "failed", False)
    ranges = [(start + i * 2 * CHUNK * PAGE, CHUNK * PAGE) for i in range(32)]      # every other chunk
    llvmpages._advise(ranges)
    pid, fd = llvmpages._state["pidfd"]
    assert not llvmpages._state["failed"] and pid == os.getpid()
    assert len(one_by_one) == (0 if fd >= 0 else len(ranges))       # process_madvise where the kernel has it
    assert all(_present_pages(first, CHUNK) == 0 for first, _ in ranges)
    assert bytes(view) == path.read_bytes()                          # mapped back on demand: the file's bytes
    del view
    mapped.close()


def _run(code, setting):
    env = dict(os.environ, JITGRAD_LLVM_PAGES=setting, JITGRAD_DISK_CACHE="0", JITGRAD_SYNC_COMPILE="0")
    env.pop("JITGRAD_LLVM_PAGES") if setting is None else None
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return [float(x) for x in done.stdout.split()]


@linux
def test_import_releases_what_loading_the_libraries_touched_unless_kept():
    probe = ("import jitgrad\n"
             "from tests.jit.test_llvm_pages import _library_rss_kb\n"
             "print(_library_rss_kb().get('r-xp', 0))\n")
    (kept,), (released,) = _run(probe, "keep"), _run(probe, None)
    assert released < 2 * 1024 and kept > 8 * 1024, (released, kept)     # ~0 against ~21 MB measured


PEAK = """
import numpy as np, jitgrad
def peak_kb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
for k in (3, 4):              # two compiles: the second maps back what the first one's releases unmapped
    jitgrad.jit_grad(lambda x: np.sum(np.sin(x * k) ** 2))(np.linspace(0.0, 1.0, 5 + k))
    jitgrad.wait_compiled()
from tests.jit.test_llvm_pages import _library_rss_kb
print(peak_kb(), sum(_library_rss_kb().values()))
"""


@linux
def test_a_fresh_process_peaks_lower_by_default_than_keeping_llvm_s_pages():
    (kept_peak, kept_llvm), (peak, llvm) = _run(PEAK, "keep"), _run(PEAK, None)
    # measured: ~125 MB kept against ~85 MB; LLVM ~70 MB resident kept against ~20 MB (the pages both phases use)
    assert peak < kept_peak - 20 * 1024, (peak, kept_peak)
    assert llvm < 32 * 1024 < kept_llvm, (llvm, kept_llvm)


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
@pytest.mark.parametrize("setting", ["auto", "phases"])
def test_kernels_compiled_after_releases_compute_what_the_reference_executor_computes(monkeypatch, setting):
    monkeypatch.setenv("JITGRAD_LLVM_PAGES", setting)
    monkeypatch.setattr(llvmpages, "tiered", lambda: True)     # (compiles stay synchronous here)

    def loss(x, k):
        total = 0.0
        for i in range(k):
            total = total + np.sin(x * (i + 1.25)) * np.cos(x)
        return np.sum(total ** 2)

    x = np.linspace(-1.0, 1.0, 7)
    for k in (3, 4, 5):              # compiles after the first one's pages were released
        compiled = jitgrad.jit_grad(loss)(x, k)
        reference = jitgrad.jit_grad(loss, jit=False)(x, k)
        assert np.allclose(compiled, reference, rtol=1e-12, atol=1e-14)
    assert not llvmpages._state.get("failed")
