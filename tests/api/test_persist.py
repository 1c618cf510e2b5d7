"""The persistent trace cache (jitgrad/persist.py, jitgrad/portable.py, jit/tracestore.py): a new process
answers from a trace record without tracing or compiling, and every change a record rests on (code of
an inlined function in the user's module, another module or a library; a global; a default; a closure
variable; a library version; the branch path) makes it trace again, with the right answer.

Each case runs fresh processes on a private cache directory and user modules written here.
"""
import io
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jitgrad
from jitgrad import cli
from jitgrad.jit import diskcache, tracestore

USER = textwrap.dedent("""
    import os
    import numpy as np
    import fakelib
    from helpers import shrink

    SCALE = float(os.environ.get("SCALE", "2.0"))
    W = np.linspace(0.5, 1.5, 7) * float(os.environ.get("WSCALE", "1"))

    def make(width):
        def f(x, k=float(os.environ.get("DEFAULT", "1.0"))):
            s = shrink(x) * SCALE + k * fakelib.spread(x) + width * np.sum(np.sinc(x) ** 2) + np.sum(W * x)
            if shrink(x) > 0.1:
                return s
            return -s * s
        return f

    f = make(float(os.environ.get("WIDTH", "0.5")))
""")
HELPERS = "import numpy as np\n\ndef shrink(x):\n    return np.sum(np.tanh(x) ** 2) * 0.75\n"
FAKELIB = textwrap.dedent("""
    import numpy as np

    def spread(x):
        return _inner(x) * 1.5

    def _inner(x):
        return np.sum(np.sin(x) ** 2)
""")
SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path[:0] = [{here!r}, {here!r} + "/site-packages"]
    import numpy as np
    import jitgrad
    from jitgrad.jit import diskcache
    import usermod
    {extra}
    x = np.linspace(-1.0, 1.0, 7) * float(os.environ.get("XSCALE", "1"))
    g = jitgrad.jit_grad(usermod.f)
    grad = g(x)
    info = g.cache_info()
    os.environ["JITGRAD_TRACE_CACHE"] = "0"
    reference = jitgrad.jit_grad(usermod.f, jit=False)(x)
    print(json.dumps({{"traces": info.traces, "restored": info.restored, "rejected": info.disk_rejected,
                      "grad": grad.tobytes().hex(), "close": bool(np.allclose(grad, reference, rtol=1e-12)),
                      "parsed": [p.trace is not None for p in info.paths],
                      "disk": diskcache.session}}))
""")


@pytest.fixture
def project(tmp_path):
    """A directory with the user's modules and a library in a site-packages folder, and a cache."""
    (tmp_path / "site-packages" / "fakelib").mkdir(parents=True)
    (tmp_path / "usermod.py").write_text(USER)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "site-packages" / "fakelib" / "__init__.py").write_text(FAKELIB)
    return tmp_path


def run(project, extra="", **env):
    """One fresh process calling usermod.f's gradient once; what it reports."""
    full = dict(os.environ, JITGRAD_CACHE_DIR=str(project / "cache"), OPENBLAS_NUM_THREADS="1",
                PYTHONDONTWRITEBYTECODE="1", **env)
    script = SCRIPT.format(here=str(project), extra=extra)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=full, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["close"], result
    return result


def test_a_new_process_answers_from_disk_without_tracing_or_compiling(project):
    first = run(project)
    assert (first["traces"], first["restored"]) == (1, 0)
    second = run(project)
    assert (second["traces"], second["restored"], second["rejected"]) == (0, 1, [])
    assert second["disk"]["stores"] == 0 and second["disk"]["hits"] >= 1      # machine code loaded, not compiled
    assert second["parsed"] == [False]             # the kernel was loaded from its form: no parse, no lowering
    assert second["grad"] == first["grad"]


def test_arrays_read_from_globals_are_inputs_of_the_restored_trace(project):
    first = run(project)
    other = run(project, WSCALE="2")         # other contents, same shape and dtype: no retrace
    assert (other["traces"], other["restored"]) == (0, 1) and other["grad"] != first["grad"]


def test_a_record_whose_machine_code_is_gone_is_compiled_again_from_its_trace(project):
    first = run(project)
    assert diskcache.clear(root=str(project / "cache")) == 1        # the kernel only; the record stays
    second = run(project)
    assert (second["traces"], second["restored"], second["parsed"]) == (0, 1, [True])
    assert second["disk"]["stores"] == 1 and second["grad"] == first["grad"]


SINC_PATCH = ("import numpy.lib._function_base_impl as impl\n"
              "def sinc(x):\n    return np.sin(x) * 2.0\n"
              "impl.sinc._implementation.__code__ = sinc.__code__")


@pytest.mark.parametrize("change, changes_value", [
    ({"env": {"SCALE": "3.0"}}, True),                                    # a global of the user's module
    ({"env": {"DEFAULT": "2.5"}}, True),                                  # a default argument
    ({"env": {"WIDTH": "0.25"}}, True),                                   # a closure variable
    ({"helpers": HELPERS.replace("0.75", "0.875")}, True),                # a helper in another module
    ({"fakelib": FAKELIB.replace("np.sin(x)", "np.cos(x)")}, True),       # a library's inner function
    ({"extra": SINC_PATCH}, True),                                        # NumPy's own code (np.sinc)
    ({"extra": "np.__version__ = '0.0.1'"}, False),                       # another NumPy version
])
def test_every_change_a_record_rests_on_traces_again(project, change, changes_value):
    first = run(project)
    if "helpers" in change:
        (project / "helpers.py").write_text(change["helpers"])
    if "fakelib" in change:
        (project / "site-packages" / "fakelib" / "__init__.py").write_text(change["fakelib"])
    second = run(project, change.get("extra", ""), **change.get("env", {}))
    assert (second["traces"], second["restored"]) == (1, 0), second
    assert (second["grad"] != first["grad"]) == changes_value


def test_another_branch_path_traces_and_both_paths_are_then_restored(project):
    run(project)
    other = run(project, XSCALE="0.01")             # the guard `shrink(x) > 0.1` fails on the restored path
    assert (other["traces"], other["restored"]) == (1, 1)
    again = run(project, XSCALE="0.01")
    assert (again["traces"], again["restored"]) == (0, 2) and again["grad"] == other["grad"]


NATIVE_USER = textwrap.dedent("""
    import numpy as np

    class Tag:
        def __init__(self, name):
            self.name = name

        def __eq__(self, other):
            return isinstance(other, Tag) and self.name.lower() == other.name.lower()

        __hash__ = None

    def f(x):
        k = [Tag("A"), Tag("b")].count(Tag("a"))          # list.count calls Tag.__eq__ from C
        return np.sum(x * x) * (k + 1)
""")


def test_a_method_called_by_compiled_code_is_checked_in_a_new_process(project):
    """Tag.__eq__ runs inside list.count (C), never interpreted; editing it alone must still retrace."""
    (project / "usermod.py").write_text(NATIVE_USER)
    first = run(project)
    assert (first["traces"], first["restored"]) == (1, 0)
    again = run(project)
    assert (again["traces"], again["restored"]) == (0, 1) and again["grad"] == first["grad"]
    (project / "usermod.py").write_text(NATIVE_USER.replace(".lower()", ""))    # "A" no longer equals "a"
    edited = run(project)                                  # (run checks the answer against jit=False)
    assert (edited["traces"], edited["restored"]) == (1, 0) and edited["grad"] != first["grad"]
    assert any("usermod.Tag.__eq__ changed" in why for why in edited["rejected"])


IDENTITY_USER = textwrap.dedent("""
    import numpy as np

    class Model:
        def __init__(self):
            self.w = 2.0

    MODEL = Model()

    def f(x):
        return np.sum(np.sin(x) ** 2) * MODEL.w
""")


def test_a_trace_resting_on_identity_is_not_reused_and_the_cli_says_why(project):
    (project / "usermod.py").write_text(IDENTITY_USER)
    run(project)
    second = run(project)
    assert (second["traces"], second["restored"]) == (1, 0)
    os.environ["JITGRAD_CACHE_DIR"], saved = str(project / "cache"), os.environ["JITGRAD_CACHE_DIR"]
    try:
        why = _cli("cache", "show", "f", "--why")
        listing = _cli("cache", "list")
    finally:
        os.environ["JITGRAD_CACHE_DIR"] = saved
    assert "reusable in a new process: no, because" in why
    assert "- a Model object is checked by identity and cannot be found by name in another process" in why
    assert "usermod.f" in listing and "  no  " in listing


def test_a_damaged_record_is_replaced(project):
    run(project)
    for record in tracestore.records(str(project / "cache")):
        with open(record["file"], "w") as damaged:
            damaged.write('{"format": 1, "lookup": 3')
    second = run(project)
    assert (second["traces"], second["restored"]) == (1, 0)
    assert run(project)["restored"] == 1


def test_a_record_altered_but_still_parsing_is_not_used(project):
    first = run(project)
    for record in tracestore.records(str(project / "cache")):
        with open(record["file"]) as f:
            stored = json.load(f)
        assert "{value=0.75}" in stored["trace"]
        stored["trace"] = stored["trace"].replace("{value=0.75}", "{value=0.875}")
        with open(record["file"], "w") as f:
            json.dump(stored, f)
    second = run(project)
    assert (second["traces"], second["restored"]) == (1, 0) and second["grad"] == first["grad"]


def _cli(*argv):
    out = io.StringIO()
    assert cli.main(list(argv), out=out) == 0
    return out.getvalue()


def test_cli_lists_and_shows_paths_with_guards_environment_and_trace(project, monkeypatch):
    run(project)
    run(project, XSCALE="0.01")
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(project / "cache"))
    lines = _cli("cache", "list").splitlines()
    assert lines[0].split()[:3] == ["ID", "FUNCTION", "DEFINED"] and len(lines) == 4
    assert [line.split()[1:4] for line in lines[1:3]] == [["usermod.mak...", "usermod.py:11", "float64[7]"]] * 2
    assert lines[3].startswith("machine code: 2 object(s)")
    shown = _cli("cache", "show", lines[1].split()[0])
    assert "truth value of a traced value at" in shown and "usermod.py:13" in shown
    assert "global 'SCALE' (value 2.0" in shown and "closure variable 'width'" in shown
    assert "numpy.lib._function_base_impl.sinc" in shown and "trace (%0: f64[7], %1: f64[7]) {" in shown
    assert "= sinc" not in shown and "tanh" in shown
    assert [line for line in shown.splitlines() + lines if len(line) > 100] == []
    why = _cli("cache", "show", "f", "--why")
    assert "traced because: guard failed: truth value of a traced value at" in why
    records = json.loads(_cli("cache", "show", "f", "--json"))
    assert len(records) == 2 and all(r["reusable"] for r in records)
    assert _cli("cache", "clear", "--function", "f") == (f"removed 2 entries and 2 traces from "
                                                         f"{project / 'cache'}\n")
    assert "no traces" in _cli("cache", "list")


def test_cli_shows_a_paths_kernel_code_and_clears_by_age(project, monkeypatch):
    run(project)
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(project / "cache"))
    [record] = tracestore.records()
    llvm = _cli("cache", "show", "f", "--llvm")
    assert "regenerated from the recorded trace" in llvm and "the machine code stored under this key" in llvm
    assert ";; ----- optimized LLVM IR -----" in llvm and "define" in llvm
    assert f"@jg_{record['kernel']['key'][:32]}(" in llvm and "assembly" not in llvm
    asm = _cli("cache", "show", "f", "--asm")
    assert ";; ----- assembly -----" in asm and "\tret" in asm and "define " not in asm
    [shown] = json.loads(_cli("cache", "show", "f", "--llvm", "--asm", "--json"))
    assert shown["key"] == shown["stored_key"] == record["kernel"]["key"]
    assert shown["llvm"].startswith("; ModuleID") and "\tret" in shown["asm"]
    stored = json.load(open(record["file"]))
    stored["kernel"]["key"] = "0" * 64                   # (made by another jitgrad: said, not hidden)
    stored["sha256"] = tracestore._digest(stored)
    json.dump(stored, open(record["file"], "w"))
    assert "NOT the machine code stored (0000000000000000)" in _cli("cache", "show", "f", "--llvm")
    cache = project / "cache"
    assert _cli("cache", "clear", "--older-than", "2") == f"removed 0 entries and 0 traces from {cache}\n"
    for path in [record["file"]] + [cache / f"{e['key']}.json" for e in diskcache.entries()]:
        aged = json.load(open(path))
        aged["last_used"] -= 3 * 86400
        json.dump(aged, open(path, "w"))
    assert _cli("cache", "clear", "--older-than", "2") == f"removed 1 entry and 1 trace from {cache}\n"
    assert tracestore.records() == [] and diskcache.entries() == []


def test_cli_finds_a_function_by_name_before_an_id_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    base = {"format": 1, "trace": "", "environment": [], "codes": [], "guards": [], "reusable": True}
    tracestore.store(dict(base, function="g", lookup="1" * 64, path="f" + "1" * 31))   # g's id starts with f
    tracestore.store(dict(base, function="f", lookup="2" * 64, path="a" + "2" * 31))
    assert [r["function"] for r in json.loads(_cli("cache", "show", "f", "--json"))] == ["f"]
    assert [r["function"] for r in json.loads(_cli("cache", "show", "f1", "--json"))] == ["g"]


def test_store_keeps_records_within_their_share_of_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITGRAD_CACHE_MAX_MB", "0.05")      # records may take 12.8 KB
    base = {"format": 1, "function": "f", "trace": "x" * 3000, "environment": [], "codes": [], "guards": [],
            "reusable": True}
    for i in range(8):
        tracestore.store(dict(base, lookup=f"{i:064x}", path=f"{i:032x}"))
    kept = tracestore.records()
    assert 2 <= len(kept) <= 4 and kept[0]["path"] == f"{7:032x}"
    assert diskcache.info()["stats"]["evicted"] == 8 - len(kept)


POOL_SCRIPT = textwrap.dedent("""
    import json, multiprocessing, os, sys
    sys.path[:0] = [{here!r}, {here!r} + "/site-packages"]

    def work(scale):
        import numpy as np
        import usermod, jitgrad
        g = jitgrad.jit_grad(usermod.f)
        grad = g(np.linspace(-1.0, 1.0, 7) * scale)
        return g.cache_info().traces, g.cache_info().restored, grad.tobytes().hex()

    if __name__ == "__main__":
        import numpy as np
        import fakelib, jitgrad
        x = np.linspace(-1.0, 1.0, 7)
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            counts = pool.map(work, [1.0, 1.0, 1.0])
            mapped = pool.map(jitgrad.jit_grad(fakelib.spread), [x] * 3)     # (a jit_grad function, pickled)
        assert all(np.array_equal(grad, jitgrad.jit_grad(fakelib.spread)(x)) for grad in mapped)
        print(json.dumps(counts))
""")


def _pool(project):
    (project / "pool.py").write_text(POOL_SCRIPT.format(here=str(project)))
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(project / "cache"), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(project / "pool.py")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_workers_filling_one_cache_at_once_then_warm_starting_from_it(project):
    assert multiprocessing.get_all_start_methods()
    filled = _pool(project)                  # three workers, empty cache: each traces (maybe restores)
    assert len({grad for _, _, grad in filled}) == 1
    assert tracestore.damaged(str(project / "cache")) == []
    warm = _pool(project)                    # a new pool: no worker traces
    assert [(traces, restored) for traces, restored, _ in warm] == [(0, 1)] * 3
    assert {grad for _, _, grad in warm} == {filled[0][2]}
    assert np.frombuffer(bytes.fromhex(filled[0][2])).shape == (7,)


def test_cli_verify_removes_damaged_objects_and_records(project, monkeypatch):
    run(project)
    cache = project / "cache"
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(cache))
    obj = next(cache.glob("*.o"))
    obj.write_bytes(obj.read_bytes()[:-8])                              # a truncated object
    with open(tracestore.records(str(cache))[0]["file"], "w") as record:
        record.write('{"format": 1}')                                   # a record without its fields
    text = _cli("cache", "verify")
    assert text.startswith("checked 1 object(s) and 1 trace(s) in ")
    assert "removed 1 damaged object(s) and 1 damaged trace(s)" in text and text.count("  removed ") == 2
    assert "removed 0 damaged object(s) and 0 damaged trace(s)" in _cli("cache", "verify")
    assert run(project)["traces"] == 1


def _weighted(x, w):
    return np.sum(np.sin(x) * w)


def test_a_gradient_function_pickles_as_its_recipe():
    g = jitgrad.value_and_grad(_weighted, argnums=(0, 1), max_traces=3)
    x, w = np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5)
    copy = pickle.loads(pickle.dumps(g))
    assert type(copy) is type(g) and copy is not g and copy.fn is _weighted
    assert (copy.argnums, copy._tuple_argnums, copy.with_value, copy._cache.max_traces) == ((0, 1), True, True, 3)
    (value, (gx, gw)), (value2, (gx2, gw2)) = g(x, w), copy(x, w)
    assert value == value2 and np.array_equal(gx, gx2) and np.array_equal(gw, gw2)
    assert np.allclose(gx, np.cos(x) * w) and np.allclose(gw, np.sin(x))


def test_cli_traces_a_library_function_on_example_arguments(tmp_path, monkeypatch):
    from scipy.optimize import rosen_der
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    text = _cli("trace", "scipy.optimize:rosen", "--args", "np.linspace(0.5, 1.5, 5)")
    assert text.startswith("scipy.optimize:rosen at float64[5]: value 51.15625, first call ")
    assert "gradient: [-101.    -31.75  -12.5    81.75  -12.5 ]" in text and "  trace (%0: f64[5]) {" in text
    assert "global 'SCIPY_ARRAY_API' (value False" in text
    shown = json.loads(_cli("trace", "scipy.optimize:rosen", "--args", "(np.linspace(0.5, 1.5, 5),)", "--json"))
    assert np.allclose(shown["gradient"], rosen_der(np.linspace(0.5, 1.5, 5)), rtol=1e-13)
    assert shown["value"] == 51.15625 and shown["guards"] == [] and "sum" in shown["trace"]


def test_the_cache_is_private_whatever_the_umask_and_files_writable_by_others_are_refused(project):
    script = SCRIPT.format(here=str(project), extra="")
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(project / "cache"), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", f"import os; os.umask(0); exec({script!r})"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout.strip().splitlines()[-1])
    cache = project / "cache"
    made = [cache, cache / "traces"] + [p for p in cache.rglob("*")]
    assert all((p.stat().st_mode & 0o777) == (0o700 if p.is_dir() else 0o600) for p in made), [
        (str(p), oct(p.stat().st_mode)) for p in made]
    for obj in cache.glob("*.o"):
        obj.chmod(0o666)                                  # writable by others: never loaded
    for record in tracestore.records(str(cache)):
        os.chmod(record["file"], 0o646)
    second = run(project)
    assert (second["traces"], second["restored"], second["disk"]["hits"]) == (1, 0, 0)
    assert second["grad"] == first["grad"]


@pytest.mark.parametrize("bound", ["abc", "nan", "inf", "1e400", "-3"])
def test_a_bad_size_bound_warns_once_and_compiles(tmp_path, monkeypatch, bound):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITGRAD_CACHE_MAX_MB", bound)
    monkeypatch.setattr(diskcache, "_warned", set())
    with pytest.warns(RuntimeWarning, match="JITGRAD_CACHE_MAX_MB must be a number") as warned:
        diskcache.store("k", b"object", {"function": "f"})
        tracestore.store({"format": 1, "lookup": "0" * 64, "path": "1" * 32, "function": "f", "trace": "",
                          "environment": [], "codes": [], "guards": [], "reusable": False})
    assert len(warned) == 1 and diskcache.load("k") == b"object" and len(tracestore.records()) == 1


def test_damaged_counters_and_fields_are_read_as_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    diskcache.store("k", b"object", {"function": "f"})
    (tmp_path / "stats.json").write_text('{"hits": "many", "stores": [1], "misses": 1e400}')
    meta = json.loads((tmp_path / "k.json").read_text())
    (tmp_path / "k.json").write_text(json.dumps(dict(meta, hits={"a": 1}, last_used="yesterday")))
    assert diskcache.load("k") == b"object"
    diskcache.wait_for_bookkeeping()
    assert diskcache.info()["stats"]["hits"] == 1 and diskcache.entries()[0]["hits"] == 1
    assert "mod" not in _cli("cache", "list", "--kernels") and _cli("cache", "clear") .startswith("removed 1 entry")


def test_a_lock_held_by_a_stuck_process_times_out(tmp_path, monkeypatch):
    import fcntl
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITGRAD_CACHE_LOCK_TIMEOUT", "0.2")
    from jitgrad import persist
    from jitgrad.jit import engine
    monkeypatch.delitem(engine._state, "warned", raising=False)       # (each warns once per process)
    monkeypatch.delitem(persist._state, "warned", raising=False)
    diskcache.store("k", b"object", {"function": "f"})
    with open(tmp_path / "lock", "r+") as stuck:
        fcntl.flock(stuck, fcntl.LOCK_EX)                   # (another open file: flock conflicts in-process too)
        assert diskcache.load("k") == b"object"                 # a hit reads without the lock
        with pytest.raises(OSError, match="held by a stuck process"):
            diskcache.load("absent")                            # a miss is counted under it
        g = jitgrad.jit_grad(lambda x: np.sum(np.cos(x) * 3.25))
        with pytest.warns(RuntimeWarning):
            assert np.allclose(g(np.linspace(0.0, 1.0, 3)), -3.25 * np.sin(np.linspace(0.0, 1.0, 3)))


def test_a_cache_whose_lock_cannot_be_written_is_still_read(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    diskcache.store("k", b"object", {"function": "f"})
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith("lock") and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)
    monkeypatch.setattr(os, "open", read_only)
    assert diskcache.load("k") == b"object"


def test_an_entry_copied_under_another_key_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    diskcache.store("a", b"object a", {"function": "f"})
    for suffix in (".o", ".json"):
        (tmp_path / f"b{suffix}").write_bytes((tmp_path / f"a{suffix}").read_bytes())
    (tmp_path / "b.o").chmod(0o600)
    (tmp_path / "b.json").chmod(0o600)
    assert diskcache.load("b") is None and diskcache.load("a") == b"object a"
    assert not (tmp_path / "b.o").exists() and diskcache.info()["stats"]["corrupt"] == 1


PROPERTY_USER = textwrap.dedent("""
    import numpy as np

    class Box:
        def __init__(self, x):
            self.x = x

        @property
        def energy(self):
            return np.sum(self.x ** 2) * 0.5

        @classmethod
        def of(cls, x):
            return cls(np.sin(x))

    def f(x):
        return Box.of(x).energy
""")


def test_methods_properties_and_class_methods_of_user_classes_are_checked_by_their_code(project):
    (project / "usermod.py").write_text(PROPERTY_USER)
    first = run(project)
    assert run(project)["restored"] == 1                  # found again: Box.__init__, Box.energy, Box.of
    (project / "usermod.py").write_text(PROPERTY_USER.replace("* 0.5", "* 0.25"))
    edited = run(project)
    assert (edited["traces"], edited["restored"]) == (1, 0) and edited["grad"] != first["grad"]
