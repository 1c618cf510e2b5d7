"""The LLVM engine: native target set up once, IR text -> optimized machine code -> function addresses.

One target machine for the host CPU (name and features), the new pass manager at O2 (no passes and the fast code generator for long straight-line traces) with the loop
vectorizer on and the SLP vectorizer off (SLP costs ~1 s per 1000 straight-line ops for nothing, see
the measurement notes), and one MCJIT engine per code-generator level that compiled modules join (never unloaded).
`JITGRAD_LOG=llvm` writes the optimized IR and the assembly of every module to stderr, or to the file
named by `JITGRAD_LOG_FILE`.  External symbols (libm) are registered with `llvm.add_symbol`.
"""
import ctypes
import ctypes.util
import os
import sys
import threading

import llvmlite.binding as llvm

_lock = threading.Lock()
_state = {}


def _setup():
    """Initialise the native target once and build the host target machine."""
    if "tm" not in _state:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        target = llvm.Target.from_default_triple()
        _state["tm"] = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=2, codemodel="jitdefault")
        _register_libm()
    return _state["tm"]


# libm functions the lowering may call (scalar double versions).
LIBM = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "tanh", "asinh", "acosh", "atanh", "pow", "atan2", "fmod")


def _register_libm():
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    for name in LIBM:
        llvm.add_symbol(f"jg_libm_{name}", ctypes.cast(getattr(libm, name), ctypes.c_void_p).value)


def register_symbol(name, address):
    """Make `name` resolve to `address` in every module compiled afterwards."""
    with _lock:
        _setup()
        llvm.add_symbol(name, address)


def _log_wanted():
    return "llvm" in os.environ.get("JITGRAD_LOG", "").split(",")


def _log(title, text):
    path = os.environ.get("JITGRAD_LOG_FILE")
    out = open(path, "a") if path else sys.stderr
    try:
        out.write(f";; ===== jitgrad {title} =====\n{text}\n")
    finally:
        if path:
            out.close()


class CompiledModule:
    """One optimized module added to the shared MCJIT engine; `address(name)` gives a symbol's address."""

    def __init__(self, engine, module):
        self._engine = engine
        self._module = module

    def address(self, name):
        return self._engine.get_function_address(name)


def _engine(codegen_level):
    """The MCJIT engine whose code generator runs at `codegen_level` (one engine per level)."""
    key = ("engine", codegen_level)
    if key not in _state:
        _setup()
        # an engine owns the target machine it is given, so each gets its own
        own_tm = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=codegen_level, codemodel="jitdefault")
        _state[key] = llvm.create_mcjit_compiler(llvm.parse_assembly(""), own_tm)
    return _state[key]


def compile_ir(text, name="kernel", speed_level=2):
    """Parse, verify, optimize (loop vectorizer on, SLP off) and JIT-compile LLVM IR text.

    speed_level 2 (O2) is for loop kernels.  speed_level 0 is for long straight-line scalar traces:
    no IR passes and the fast code generator; measured on the 20k-op Euler gradient it compiles 4x
    faster (0.3 s vs 1.2 s) and runs as fast (libm latency dominates).  Every module joins one
    MCJIT engine per level, so global symbol names must be unique across modules."""
    with _lock:
        tm = _setup()
        engine = _engine(2 if speed_level else 0)
        module = llvm.parse_assembly(text)
        module.verify()
        if speed_level:
            pto = llvm.create_pipeline_tuning_options(speed_level)
            pto.loop_vectorization = True
            pto.slp_vectorization = False
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(module, pb)
        engine.add_module(module)
        engine.finalize_object()
        if _log_wanted():
            _log(f"{name}: optimized IR", str(module))
            _log(f"{name}: assembly", tm.emit_assembly(module))
        return CompiledModule(engine, module)
