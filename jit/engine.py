"""The LLVM engine: native target set up once, IR text -> optimized machine code -> function addresses.

One target machine for the host CPU (name and features), the new pass manager at O2 (no passes and the fast
code generator for long straight-line traces) with the loop
vectorizer on and the SLP vectorizer off (SLP costs ~1 s per 1000 straight-line ops for nothing, see
the measurement notes).  Compiled modules join MCJIT engines in groups (`EngineGroup`): MCJIT never
unloads a module, but disposing of an engine frees its machine code, so a group's engine lives while a
module of it is in use and is freed with the last one (a kernel holds its CompiledModule, a jitgrad
function its kernels).  A module's IR is dropped once its machine code is made.
`JITGRAD_LOG=llvm` logs the optimized IR and the assembly of every module (logger `jitgrad.llvm`, see
logs.py: to stderr, or to the file named by `JITGRAD_LOG_FILE`); `generated` gives both for a module
text without compiling it into an engine (`jitgrad cache show --llvm/--asm`).  External symbols (libm,
BLAS, the host callback, CPython objects) are registered with `llvm.add_symbol`, so module text holds
no addresses and relocates at load.

Modules are named by content: `compile_ir` hashes the text (with a placeholder entry name) and the
settings that change the machine code (`settings`), names the entry `jg_<hash>`, reuses a module of
equal text already in this process, else loads its object file from the disk cache (diskcache.py),
else optimizes and compiles it and stores the object MCJIT produced.
"""
import hashlib
import warnings
import ctypes
import ctypes.util
import os
import threading
import weakref

import llvmlite
import llvmlite.binding as llvm

from . import diskcache, llvmpages, logs, threads

llvmpages.release()     # what loading llvmlite (and the other libraries so far) touched (llvmpages.py)
CACHE_FORMAT = 1           # bump when the meaning of a cached object changes without its text changing
_lock = threading.Lock()
_state = {}


def _init():
    """Initialise the native target and register libm and the threads' symbols, once (loading an object
    needs no more)."""
    if "ready" not in _state:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        _register_libm()
        for name, address in threads.symbols().items():     # split loops' pthread calls (parallel.py)
            llvm.add_symbol(name, address)
        _state["ready"] = True


def _setup():
    """_init, and the host target machine that compiles use (built once)."""
    _init()
    if "tm" not in _state:
        _state["tm"] = _target_machine(2)
    return _state["tm"]


def _target_machine(opt):
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=_host_features(), opt=opt, codemodel="jitdefault")


# libm functions the lowering may call (scalar double versions).
LIBM = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "tanh", "asinh", "acosh", "atanh", "pow", "atan2", "fmod")
SINCOS = "sincos"          # void sincos(double, double *sin, double *cos): both of one operand (mathfns.py)


def _host_features():
    """The host CPU's features as LLVM spells them (asked once: ~10 ms per question)."""
    if "features" not in _state:
        _state["features"] = llvm.get_host_cpu_features().flatten()
    return _state["features"]


# First-generation AVX-512 server cores clock down under 512-bit arithmetic (LLVM tunes them to 256 bits).
_SLOW_512 = ("skylake-avx512", "cascadelake", "cooperlake", "knl", "knm")


def vector_width():
    """The vector width in bits kernel loops should prefer: 512 on AVX-512 cores that keep their clock
    under it (on emeraldrapids W3's elementwise gradient took 0.84x the time of 256-bit vectors, the
    softmax row group 0.82x, the other bench rows alike), else None (LLVM's own tuning)."""
    if "width" not in _state:
        wide = "+avx512f" in _host_features().split(",") and llvm.get_host_cpu_name() not in _SLOW_512
        _state["width"] = 512 if wide else None
    return _state["width"]


def native_ldexp():
    """Whether `llvm.ldexp` is one instruction on vectors of every width here (AVX-512F with VL:
    vscalefpd, one rounding, inf/0/nan as IEEE); elsewhere LLVM lowers it to a libm call per element."""
    if "ldexp" not in _state:
        features = _host_features().split(",")
        _state["ldexp"] = "+avx512f" in features and "+avx512vl" in features
    return _state["ldexp"]


def _register_libm():
    try:
        libm = ctypes.CDLL("libm.so.6")      # (find_library runs ldconfig in a subprocess)
    except OSError:
        libm = ctypes.CDLL(ctypes.util.find_library("m"))
    for name in LIBM + (SINCOS,):
        llvm.add_symbol(f"jg_libm_{name}", ctypes.cast(getattr(libm, name), ctypes.c_void_p).value)


def register_symbol(name, address):
    """Make `name` resolve to `address` in every module compiled afterwards."""
    with _lock:
        _init()
        llvm.add_symbol(name, address)


def _log(title, text):
    logs.log("llvm", ";; ===== jitgrad %s =====\n%s", title, text)


class CompiledModule:
    """One module's machine code in the engine of an EngineGroup (kept alive by this object): its entry
    symbol `name`, where the code came from (`origin`: "compiled", "disk" or "memory" for a module of
    equal text compiled earlier in this process); `address(symbol)` gives a symbol's address."""

    def __init__(self, group, name, origin, key=None, level=None):
        self._group = group
        self.name = name
        self.origin = origin
        self.key, self.level = key, level     # the disk cache key (None: not on disk) and codegen level

    def address(self, name):
        return self._group.engine.get_function_address(name)

    def shared(self):
        """This module's code for another kernel of equal text (origin "memory")."""
        return CompiledModule(self._group, self.name, "memory", self.key, self.level)


GROUP_SIZE = 16     # modules per engine: an engine costs ~0.8 MB (its target machine), a module ~0.15 MB


class EngineGroup:
    """An MCJIT engine that up to GROUP_SIZE modules join, freed (with their machine code) when no
    module of it is in use any more and it is not the group new modules join."""

    live = weakref.WeakSet()     # the groups not yet freed (for cache_info-style accounting and tests)

    def __init__(self, codegen_level):
        _init()
        # an engine owns the target machine it is given, so each gets its own
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine(codegen_level))
        self.engine.set_object_cache(notify_func=lambda module, data: _new_objects.__setitem__(module.name, data))
        self.modules = 0
        EngineGroup.live.add(self)


def _group(codegen_level):
    """The group the next module compiled at `codegen_level` joins."""
    key = ("group", codegen_level)
    group = _state.get(key)
    if group is None or group.modules >= GROUP_SIZE:
        group = _state[key] = EngineGroup(codegen_level)
    group.modules += 1
    return group


_new_objects = {}           # module name -> object bytes MCJIT just produced (the object-cache hook)
_modules = weakref.WeakValueDictionary()   # entry name -> CompiledModule of this process still in use


def settings(codegen_level, speed_level):
    """Everything besides the module text that determines the machine code (part of the cache key)."""
    if "settings" not in _state:
        here = os.path.dirname(os.path.abspath(__file__))
        version = diskcache.sources_stamp(os.path.dirname(here), (os.path.basename(here),))   # (jit/)
        with open(__file__, "rb") as source:
            engine_source = hashlib.sha256(source.read()).hexdigest()
        _state["settings"] = {
            "format": CACHE_FORMAT, "jit_sources": version, "engine_source": engine_source,
            "llvmlite": llvmlite.__version__, "llvm": list(llvm.llvm_version_info),
            "triple": llvm.get_process_triple(), "cpu": llvm.get_host_cpu_name(),
            "features": _host_features(), "codemodel": "jitdefault",
            "loop_vectorization": True, "slp_vectorization": False}
    return dict(_state["settings"], codegen_level=codegen_level, speed_level=speed_level)


def compile_ir(text, name="kernel", speed_level=2, about=None):
    """Machine code for LLVM IR `text` whose exported symbols start with placeholder `name`: a
    CompiledModule whose entry is named `jg_<hash of text and settings>` (`name` + suffix becomes
    that name + suffix).

    speed_level 2 (O2, loop vectorizer on, SLP off) is for loop kernels.  speed_level 0 is for long
    straight-line scalar traces: no IR passes and the fast code generator; measured on the 20k-op
    Euler gradient it compiles 4x faster (0.3 s vs 1.2 s) and runs as fast (libm latency dominates).
    The object comes from this process's modules, the disk cache (not for text with literal
    addresses) or a compilation, which is then stored with the sidecar fields `about`."""
    with _lock:
        tm = _setup()
        level = 2 if speed_level else 0
        key = diskcache.make_key(text, settings(level, speed_level))
        final = f"jg_{key[:32]}"
        live = _modules.get(final)
        if live is not None:
            return live.shared()
        text = text.replace(f"@{name}", f"@{final}")
        group = _group(level)
        engine = group.engine
        cacheable = diskcache.enabled() and not diskcache.has_addresses(text)
        if diskcache.enabled() and not cacheable:
            _quietly(diskcache.note_uncacheable)
        data = _quietly(diskcache.load, key) if cacheable else None
        if data is not None:
            engine.add_object_file(llvm.ObjectFileRef.from_data(data))
            engine.finalize_object()
            if logs.wanted("llvm"):
                _log(f"{final}: loaded from the disk cache", diskcache.directory())
            origin = "disk"
        else:
            _compile(engine, tm, text, final, speed_level)
            data = _new_objects.pop(final, None)
            if cacheable and data is not None:
                _quietly(diskcache.store, key, data, about or {})
            origin = "compiled"
        compiled = _modules[final] = CompiledModule(group, final, origin, key if cacheable else None, level)
        llvmpages.release("compiled")
        return compiled


def load_module(key, level):
    """The CompiledModule whose object the disk cache holds under `key` (made at codegen `level`), loaded
    without its text (a trace record names it, jitgrad/persist.py); None when it is not there."""
    with _lock:
        _init()
        final = f"jg_{key[:32]}"
        live = _modules.get(final)
        if live is not None:
            return live.shared()
        data = _quietly(diskcache.load, key)
        if data is None:
            return None
        group = _group(level)
        engine = group.engine
        engine.add_object_file(llvm.ObjectFileRef.from_data(data))
        engine.finalize_object()
        if logs.wanted("llvm"):
            _log(f"{final}: loaded from the disk cache (a trace record names it)", diskcache.directory())
        compiled = _modules[final] = CompiledModule(group, final, "disk", key, level)
        llvmpages.release("compiled")
        return compiled


def _optimized(tm, text, name, speed_level):
    """The module of IR `text` verified, named `name` and optimized at `speed_level` (in its own context:
    freed with the IR)."""
    module = llvm.parse_assembly(text, context=llvm.create_context())
    module.verify()
    module.name = name
    if speed_level:
        pto = llvm.create_pipeline_tuning_options(speed_level)
        pto.loop_vectorization = True
        pto.slp_vectorization = False
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(module, pb)
    return module


def _compile(engine, tm, text, name, speed_level):
    if speed_level:
        llvmpages.release("passes")
    module = _optimized(tm, text, name, speed_level)
    llvmpages.release("codegen")     # the pass pipeline's pages before the code generator's (llvmpages.py)
    engine.add_module(module)
    engine.finalize_object()
    if logs.wanted("llvm"):
        _log(f"{name}: optimized IR", str(module))
        _log(f"{name}: assembly", tm.emit_assembly(module))
    engine.remove_module(module)     # the machine code stays in the engine; the IR is freed


def generated(text, name, speed_level):
    """(disk cache key, optimized IR, assembly) of the module `compile_ir(text, name, speed_level)` makes,
    without compiling it into an engine.  Under the engine's lock, as every compilation: the target
    machine is shared with the background compiler thread."""
    with _lock:
        tm = _setup()
        key = diskcache.make_key(text, settings(2 if speed_level else 0, speed_level))
        final = f"jg_{key[:32]}"
        module = _optimized(tm, text.replace(f"@{name}", f"@{final}"), final, speed_level)
        return key, str(module), tm.emit_assembly(module)


def _quietly(action, *args):
    """Run a disk-cache action; an unusable cache directory warns once and is then ignored (the code
    is compiled as without a cache)."""
    try:
        return action(*args)
    except OSError as e:
        if "warned" not in _state:
            _state["warned"] = True
            warnings.warn(f"jitgrad: disk cache {diskcache.directory()} unusable ({e}); compiling without it",
                          RuntimeWarning, stacklevel=4)
        return None
