"""The on-disk cache of machine code (jit/diskcache.py, jit/engine.py) and the `jitgrad cache` CLI.

Processes matter here: a module is looked up on disk only when this process has not compiled the same
text already, so reuse, address exclusion and corruption recovery are checked in fresh subprocesses.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import jitgrad
from jitgrad import cli
from jitgrad.ir import Builder
from jitgrad.jit import compile_trace, diskcache, engine
from jitgrad.jit.kernel import restore_kernel

# constants (read through the wrapper's `self`), BLAS gemm, a host-called sort, libm math: every kind of
# external reference a kernel makes
SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import jitgrad
    from jitgrad.jit import diskcache

    W = np.linspace(-1.0, 1.0, 24 * 24).reshape(24, 24)

    @jitgrad.value_and_grad
    def loss(x, scale):
        y = np.tanh(W @ x) * np.array([0.5, 1.5, 2.5, 3.5] * 6)[:, None]
        return np.sum(np.sort(y, axis=0)[-3:] ** 2) * scale + np.sum(np.exp(-x * x))

    x = np.cos(np.arange(24 * 24.0)).reshape(24, 24)
    value, grad = loss(x, 0.75)
    reference = jitgrad.value_and_grad(loss.__wrapped__, jit=False)(x, 0.75)
    print(json.dumps({"value": float(value).hex(), "grad": grad.tobytes().hex(),
                      "close": bool(np.allclose(grad, reference[1], rtol=1e-12, atol=1e-12)),
                      "session": diskcache.session, "machine_code": loss.cache_info().paths[0].machine_code}))
""")

# a module whose text embeds a literal address: it must never be stored or loaded
ADDRESS_SCRIPT = textwrap.dedent("""
    import json
    from jitgrad.jit import diskcache, engine
    text = ("define i64 @jg_kernel_entry(ptr %args) {\\n  %p = inttoptr i64 4096 to ptr\\n"
            "  %r = ptrtoint ptr %p to i64\\n  ret i64 %r\\n}\\n")
    module = engine.compile_ir(text, "jg_kernel_entry", 2, {"function": "with_address"})
    print(json.dumps({"origin": module.origin, "session": diskcache.session}))
""")


def _run(script, cache_dir, **env):
    full_env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache_dir), OPENBLAS_NUM_THREADS="1", **env)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=full_env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory for this test (environment of this process and its children)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(directory))
    monkeypatch.delenv("JITGRAD_DISK_CACHE", raising=False)
    monkeypatch.delenv("JITGRAD_CACHE_MAX_MB", raising=False)
    return directory


def test_second_process_loads_the_object_and_a_corrupt_entry_is_replaced(cache_dir):
    first = _run(SCRIPT, cache_dir)
    assert first["machine_code"] == "compiled" and first["close"]
    assert first["session"]["stores"] == 1 and first["session"]["hits"] == 0
    assert first["session"]["uncacheable"] == 0        # constants, BLAS and host calls are all symbolic
    second = _run(SCRIPT, cache_dir)
    assert second["machine_code"] == "disk"
    assert second["session"]["hits"] == 1 and second["session"]["stores"] == 0
    assert (second["value"], second["grad"]) == (first["value"], first["grad"])   # bit-identical
    [obj] = cache_dir.glob("*.o")
    obj.write_bytes(obj.read_bytes()[: obj.stat().st_size // 2])                  # truncated
    third = _run(SCRIPT, cache_dir)
    assert third["machine_code"] == "compiled"
    assert third["session"]["corrupt"] == 1 and third["session"]["stores"] == 1
    assert (third["value"], third["grad"]) == (first["value"], first["grad"])
    fourth = _run(SCRIPT, cache_dir)
    assert fourth["machine_code"] == "disk" and fourth["grad"] == first["grad"]


def test_concurrent_processes(cache_dir):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    running = [subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(3)]
    runs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in running]
    assert all(p.returncode == 0 for p in running)
    assert len({(r["value"], r["grad"]) for r in runs}) == 1 and all(r["close"] for r in runs)
    assert len(diskcache.entries()) == 1 and not list(cache_dir.glob(".tmp-*"))
    assert _run(SCRIPT, cache_dir)["machine_code"] == "disk"


def test_module_with_an_address_is_never_stored_or_loaded(cache_dir):
    for _ in range(2):
        run = _run(ADDRESS_SCRIPT, cache_dir)
        assert run["origin"] == "compiled"
        assert run["session"]["uncacheable"] == 1
        assert run["session"]["hits"] == run["session"]["stores"] == 0
    assert diskcache.entries() == [] and diskcache.info()["stats"]["uncacheable"] == 2


def test_address_detection():
    assert diskcache.has_addresses("store ptr inttoptr (i64 140233 to ptr), ptr %s")
    assert diskcache.has_addresses("%p = inttoptr i64 4096 to ptr")
    assert not diskcache.has_addresses("%p = inttoptr i64 %x to ptr\ncall i64 @jg_host(i64 3, ptr %a)")


def _unique_function(n):
    """A fresh function whose kernel text no other test compiles (its array input has length n)."""
    weights = np.arange(1.0, n + 1.0)

    def f(x):
        return np.sum(np.sin(x) * weights * 1.25)
    return f


def test_disabled_by_environment(cache_dir, monkeypatch):
    monkeypatch.setenv("JITGRAD_DISK_CACHE", "0")
    before = dict(diskcache.session)
    g = jitgrad.jit_grad(_unique_function(37))
    x = np.linspace(0.0, 1.0, 37)
    np.testing.assert_allclose(g(x), np.cos(x) * np.arange(1.0, 38.0) * 1.25, rtol=1e-13)
    assert g.cache_info().paths[0].machine_code == "compiled"
    assert diskcache.session == before and not cache_dir.exists()


def test_equal_module_in_one_process_is_compiled_once(cache_dir):
    f = _unique_function(41)
    x = np.linspace(0.0, 1.0, 41)
    first, second = jitgrad.jit_grad(f), jitgrad.jit_grad(f)
    np.testing.assert_array_equal(first(x), second(x))
    assert first.cache_info().paths[0].machine_code == "compiled"
    assert second.cache_info().paths[0].machine_code == "memory"
    [entry] = diskcache.entries()
    assert (entry["function"], entry["kind"], entry["signature"]) == ("_unique_function.<locals>.f", "grad",
                                                                      "float64[41]")
    assert entry["location"].endswith(f"test_diskcache.py:{f.__code__.co_firstlineno}") and entry["ops"] > 0


def _with_constant(c):
    def f(x):
        return np.sum(np.sin(x) * np.array([c, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))   # a const node, passed by pointer
    return f


def test_equal_module_with_other_constants_reads_its_own(cache_dir):
    x = np.linspace(0.0, 1.0, 7)
    grads = [jitgrad.jit_grad(_with_constant(c)) for c in (1.0, -3.0)]
    for g, c in zip(grads, (1.0, -3.0)):
        expected = np.cos(x) * np.array([c, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
        np.testing.assert_allclose(g(x), expected, rtol=1e-13)
        np.testing.assert_allclose(g(x[::-1].copy()[::-1]), expected, rtol=1e-13)   # the checked path
    assert [g.cache_info().paths[0].machine_code for g in grads] == ["compiled", "memory"]


def test_key_covers_text_and_settings():
    base = engine.settings(2, 2)
    assert diskcache.make_key("text", base) != diskcache.make_key("text ", base)
    for field, other in (("cpu", "other"), ("llvm", [0]), ("codegen_level", 0), ("jitgrad", "9")):
        assert diskcache.make_key("text", dict(base, **{field: other})) != diskcache.make_key("text", base)


def _about(name):
    return {"function": f"mod.{name}", "location": "/src/mod.py:7", "signature": "float64[3]", "kind": "grad",
            "ops": 5}


def test_corrupt_entry_is_ignored_and_replaced(cache_dir):
    diskcache.store("k1", b"object bytes", _about("f"))
    (cache_dir / "k1.o").write_bytes(b"object byt")                 # truncated
    assert diskcache.load("k1") is None
    assert not (cache_dir / "k1.json").exists() and diskcache.info()["stats"]["corrupt"] == 1
    diskcache.store("k1", b"object bytes", _about("f"))
    (cache_dir / "k1.json").write_text("{not json")                 # damaged sidecar
    assert diskcache.load("k1") is None
    diskcache.store("k1", b"object bytes", _about("f"))
    assert diskcache.load("k1") == b"object bytes"
    diskcache.wait_for_bookkeeping()                                # (a hit's counts are written in the background)
    assert diskcache.entries()[0]["hits"] == 1


def test_eviction_is_least_recently_used(cache_dir, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_MAX_MB", str(1100 / 2**20))
    for key in ("a", "b"):
        diskcache.store(key, bytes(500), _about(key))
    time.sleep(0.01)
    assert diskcache.load("a") is not None                          # a is now the more recently used
    diskcache.wait_for_bookkeeping()
    diskcache.store("c", bytes(500), _about("c"))
    assert sorted(e["key"] for e in diskcache.entries()) == ["a", "c"]
    assert diskcache.info()["stats"]["evicted"] == 1


def _cli(*argv):
    out = io.StringIO()
    assert cli.main(list(argv), out=out) == 0
    return out.getvalue()


def test_cli_list_info_clear(cache_dir):
    assert "no entries" in _cli("cache", "list", "--kernels")
    assert _cli("cache", "list").splitlines()[-1] == "machine code: 0 object(s), 0 B (jitgrad cache list --kernels)"
    for name in ("f", "g"):
        diskcache.store(name, bytes(2048), _about(name))
    diskcache.load("g")
    diskcache.wait_for_bookkeeping()
    lines = _cli("cache", "list", "--kernels").splitlines()     # a header, then the most recently used first
    assert len(lines) == 3 and lines[0].split()[:2] == ["FUNCTION", "DEFINED"]
    assert lines[1].split()[:5] == ["mod.g", "src/mod.py:7", "float64[3]", "grad", "2.0"]
    assert lines[1].split()[-2:] == ["ago", "1"] and lines[2].split()[0] == "mod.f"
    listed = json.loads(_cli("cache", "list", "--kernels", "--json"))
    assert [(e["function"], e["size"], e["hits"]) for e in listed] == [("mod.g", 2048, 1), ("mod.f", 2048, 0)]
    info = json.loads(_cli("cache", "info", "--json"))
    assert (info["directory"], info["entries"], info["total_bytes"]) == (str(cache_dir), 2, 4096)
    assert (info["stats"]["hits"], info["stats"]["stores"]) == (1, 2)
    text = _cli("cache", "info")
    assert f"directory: {cache_dir}" in text and "entries: 2, 4.0 KiB" in text and "hits 1" in text
    assert _cli("cache", "clear", "--older-than", "1") == f"removed 0 entries and 0 traces from {cache_dir}\n"
    assert _cli("cache", "clear", "--function", "g") == f"removed 1 entry and 0 traces from {cache_dir}\n"
    assert [e["function"] for e in diskcache.entries()] == ["mod.f"]
    assert _cli("cache", "clear") == f"removed 1 entry and 0 traces from {cache_dir}\n" and diskcache.entries() == []


@pytest.mark.parametrize("argv, message", [
    ([], "required: {cache,trace}"),
    (["cache"], "required: {list,show,info,verify,clear}"),
    (["cache", "clear", "--older-than", "soon"], "expected a number of days"),
    (["cache", "clear", "--older-than", "-2"], "non-negative"),
    (["cache", "clear", "--json"], "unrecognized arguments: --json"),
    (["cache", "drop"], "invalid choice"),
])
def test_cli_bad_usage_exits_2(cache_dir, capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_cli_bad_size_setting_exits_2(cache_dir, capsys, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_MAX_MB", "lots")
    with pytest.raises(SystemExit) as exited:
        cli.main(["cache", "info"])
    assert exited.value.code == 2 and "JITGRAD_CACHE_MAX_MB" in capsys.readouterr().err


def test_python_dash_m_entry_point(cache_dir):
    done = subprocess.run([sys.executable, "-m", "jitgrad", "cache", "info"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60)
    assert done.returncode == 0 and f"directory: {cache_dir}" in done.stdout


def test_sources_stamp_hashes_content_and_reads_only_changed_files(cache_dir, tmp_path, monkeypatch):
    package = tmp_path / "src" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("X = 1\n")
    (package / "b.py").write_text("Y = 2\n")
    (package / "__pycache__" / "c.py").write_text("not a source\n")
    root = str(tmp_path / "src")

    def fresh_stamp():
        monkeypatch.setattr(diskcache, "_stamps", {})          # (as in a new process)
        return diskcache.sources_stamp(root, ("pkg",))

    first = fresh_stamp()
    noted = json.loads((cache_dir / diskcache.SOURCES).read_text())
    assert sorted(os.path.basename(p) for p in noted) == ["a.py", "b.py"]
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    assert fresh_stamp() == first and not [p for p in opened if p.endswith(".py")]   # nothing read again
    monkeypatch.setattr("builtins.open", real_open)
    # the same size and modification time, another content (a copy that kept the times): another stamp
    stat = os.stat(package / "a.py")
    (package / "a.py").write_text("X = 7\n")
    os.utime(package / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fresh_stamp() != first
    (package / "a.py").write_text("X = 1\n")
    assert fresh_stamp() == first
    # the stamp is fixed for the process: an edit after it was computed does not relabel its work
    (package / "b.py").write_text("Y = 3\n")
    assert diskcache.sources_stamp(root, ("pkg",)) == first
    assert diskcache.info()["entries"] == 0 and diskcache.verify() == (0, [])   # sources.json: no entry


def test_a_hits_bookkeeping_is_held_off_the_call_and_never_waits_for_a_stuck_lock(cache_dir, monkeypatch):
    import fcntl
    diskcache.store("k", b"object", {"function": "f"})
    assert diskcache.load("k") == b"object"
    assert diskcache.entries()[0]["hits"] == 0                      # held: not written on the call
    diskcache.wait_for_bookkeeping()
    assert diskcache.entries()[0]["hits"] == 1 and diskcache.info()["stats"]["hits"] == 1
    monkeypatch.setenv("JITGRAD_CACHE_LOCK_TIMEOUT", "30")
    with open(cache_dir / "lock", "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)                            # (another open file: conflicts in-process)
        started = time.monotonic()
        assert diskcache.load("k") == b"object"                     # a hit takes no lock
        diskcache.wait_for_bookkeeping(0.2)                         # (what an exit does: gives up after 0.2 s)
        assert time.monotonic() - started < 5
    assert diskcache.entries()[0]["hits"] == 1
    monkeypatch.setattr(diskcache, "FLUSH_AFTER_S", 0.0)           # a long-running process: a later hit
    assert diskcache.load("k") == b"object"                         # starts the bookkeeping thread
    diskcache._work["flusher"].join(10)
    assert diskcache.entries()[0]["hits"] == 2


def test_kernel_form_of_another_calling_convention_is_not_restored(cache_dir):
    b = Builder()
    x = b.input((3,), np.float64)
    kernel = compile_trace(b.build([b.emit("multiply", x, x)]))
    assert kernel.form is not None and restore_kernel(kernel.form, None) is not None
    assert restore_kernel({**kernel.form, "wrapper": 1}, None) is None    # outputs passed in: not this build's


def test_code_shown_for_inspection_is_generated_under_the_engine_lock(monkeypatch):
    """`jitgrad cache show --llvm` regenerates a kernel's code with the target machine the background
    compiler uses, so it optimizes and emits assembly holding the engine's lock, as compilations do."""
    from jitgrad.jit.kernel import generated_code
    held = []
    optimized, target_machine = engine._optimized, engine._setup()

    class Watched:
        def emit_assembly(self, module):
            held.append(("assembly", engine._lock.locked()))
            return target_machine.emit_assembly(module)

    def watched_optimized(tm, *args):
        held.append(("passes", engine._lock.locked()))
        return optimized(target_machine, *args)
    monkeypatch.setattr(engine, "_optimized", watched_optimized)
    monkeypatch.setattr(engine, "_setup", lambda: Watched())
    b = Builder()
    x = b.input((64,), np.float64)
    key, ir, asm = generated_code(b.build([b.exp(x)]))
    assert held == [("passes", True), ("assembly", True)] and "define" in ir and "ret" in asm
