"""LLVM's library pages are handed back between compiles (jit/llvmpages.py): only mappings whose pages are the
file's own are released, the library's resident pages drop after a compile, and kernels compiled after a
release (its code mapped back on demand) still compute what the reference executor computes."""
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.jit import llvmpages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")

SMAPS = """\
7f0000000000-7f0000365000 r--p 00000000 fe:00 11 /site-packages/llvmlite/binding/libllvmlite.so
Rss:                3480 kB
Anonymous:             0 kB
7f0000365000-7f0005394000 r-xp 00365000 fe:00 11 /site-packages/llvmlite/binding/libllvmlite.so
Rss:               22000 kB
Anonymous:             0 kB
7f0009677000-7f000983c000 r--p 09677000 fe:00 11 /site-packages/llvmlite/binding/libllvmlite.so
Rss:                1812 kB
Anonymous:          1800 kB
7f000983c000-7f0009865000 rw-p 0983c000 fe:00 11 /site-packages/llvmlite/binding/libllvmlite.so
Rss:                 160 kB
Anonymous:             0 kB
7f000a000000-7f000a100000 r-xp 00000000 fe:00 12 /usr/lib/libm.so.6
Rss:                 600 kB
Anonymous:             0 kB
7f000b000000-7f000b021000 rw-p 00000000 00:00 0
Rss:                 132 kB
Anonymous:           132 kB
"""


def test_only_unwritten_read_only_mappings_of_the_library_are_candidates(tmp_path):
    smaps = tmp_path / "smaps"
    smaps.write_text(SMAPS)
    found = llvmpages.clean_mappings(smaps=str(smaps))
    # kept: the relocated RELRO mapping (anonymous pages), the writable data, other files, anonymous memory
    assert found == [(0x7f0000000000, 0x365000), (0x7f0000365000, 0x7f0005394000 - 0x7f0000365000)]
    assert llvmpages.clean_mappings(smaps=str(tmp_path / "missing")) == []


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
def test_a_compile_leaves_little_of_the_library_resident_and_later_kernels_are_right():
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
def test_release_advises_every_clean_mapping_unless_kept_and_stops_after_a_failure(monkeypatch):
    calls = []
    result = {"value": 0}
    monkeypatch.setitem(llvmpages._state, "mappings", [(0x10000, 0x4000), (0x40000, 0x8000)])
    monkeypatch.setitem(llvmpages._state, "madvise", lambda *args: calls.append(args) or result["value"])
    monkeypatch.setitem(llvmpages._state, "failed", False)
    monkeypatch.delenv("JITGRAD_KEEP_LLVM_PAGES", raising=False)
    llvmpages.release()
    assert calls == [(0x10000, 0x4000, llvmpages.MADV_DONTNEED), (0x40000, 0x8000, llvmpages.MADV_DONTNEED)]
    monkeypatch.setenv("JITGRAD_KEEP_LLVM_PAGES", "1")
    llvmpages.release()
    assert len(calls) == 2
    monkeypatch.setenv("JITGRAD_KEEP_LLVM_PAGES", "0")
    result["value"] = -1                    # e.g. EINVAL on locked pages: stop, do not retry every compile
    llvmpages.release()
    assert len(calls) == 3
    llvmpages.release()
    assert len(calls) == 3
