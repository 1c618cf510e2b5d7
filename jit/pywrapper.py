"""The fast calling convention: a JIT-made CPython METH_FASTCALL builtin around a kernel (the notes
measured ~65-75 ns per call against 2-9 us for ctypes with `arr.ctypes.data`).

`wrapper_ir(lowering, n_array_args)` emits `ptr <name>_py(ptr self, ptr args, i64 nargs)`, called
with the inputs, the freshly allocated outputs (and the workspace array when the kernel takes one).
For every argument it checks, by raw loads from the ndarray struct, that it is exactly an ndarray
with the trace's ndim, dims, dtype number, native byte order, and C-contiguous + aligned flags
(outputs also writeable); only then does it read the data pointers and run the kernel.  It returns
the kernel's exit code as a Python int, or FALLBACK when a check fails (the Kernel then takes the
checked ctypes path, which copies non-contiguous inputs and raises precise errors).

The struct offsets are NumPy's (2.x) PyArrayObject and PyArray_Descr layouts; `layout_ok()` verifies
them at run time on a probe array, and the fast path is not built if they differ.
"""
import ctypes

import numpy as np

from . import engine
from .llvmtext import FunctionText

FALLBACK = -100
DATA, NDIM, DIMS, DESCR, FLAGS = 16, 24, 32, 56, 64
DESCR_BYTEORDER, DESCR_TYPE_NUM = 26, 28
C_CONTIGUOUS_ALIGNED, WRITEABLE = 0x1 | 0x100, 0x400
METH_FASTCALL = 0x80
_state = {}


def layout_ok():
    """True if this NumPy's ndarray struct matches the offsets the wrapper reads."""
    if "ok" not in _state:
        probe = np.zeros((3, 5))
        read = lambda address, ctype: ctype.from_address(address).value
        descr = read(id(probe) + DESCR, ctypes.c_void_p)
        ok = (read(id(probe) + DATA, ctypes.c_void_p) == probe.ctypes.data
              and read(id(probe) + NDIM, ctypes.c_int) == 2
              and read(read(id(probe) + DIMS, ctypes.c_void_p) + 8, ctypes.c_int64) == 5
              and descr == id(probe.dtype)
              and read(descr + DESCR_TYPE_NUM, ctypes.c_int) == probe.dtype.num
              and read(id(probe) + FLAGS, ctypes.c_int) & C_CONTIGUOUS_ALIGNED == C_CONTIGUOUS_ALIGNED)
        if ok:
            engine.register_symbol("jg_PyArray_Type", id(np.ndarray))
            long_from = ctypes.cast(ctypes.pythonapi.PyLong_FromLongLong, ctypes.c_void_p).value
            engine.register_symbol("jg_PyLong_FromLongLong", long_from)
        _state["ok"] = ok       # only now: another thread compiling meanwhile must not see it before the symbols
    return _state["ok"]


def wrapper_ir(name, signatures, n_consts, takes_workspace):
    """IR text of the FASTCALL wrapper `<name>_py` of kernel `name`.  `signatures` lists (shape, dtype,
    writeable) per array argument (inputs then outputs); the workspace array, if the kernel takes one,
    comes last and is only type-checked (the Kernel makes it).  Kernel slots: arrays, constants,
    workspace.  The builtin's `self` is a uintp array of the `n_consts` constants' data pointers
    (make_builtin), so the text holds no address and its object file is valid in any process."""
    n_arrays = len(signatures) + bool(takes_workspace)
    n_slots = n_arrays + n_consts
    f = FunctionText(f"define ptr @{name}_py(ptr %self, ptr %args, i64 %nargs)")
    f.allocas.append(f"  %argv = alloca [{n_slots} x ptr], align 8")
    _require(f, f.emit(f"icmp eq i64 %nargs, {n_arrays}"))
    slots = list(range(len(signatures))) + ([n_slots - 1] if takes_workspace else [])
    for j, slot in enumerate(slots):
        obj = f.emit(f"load ptr, ptr {f.emit(f'getelementptr inbounds ptr, ptr %args, i64 {j}')}")
        _require(f, f.emit(f"icmp eq ptr {_field(f, obj, 8, 'ptr')}, @jg_PyArray_Type"))
        if j < len(signatures):
            _check_array(f, obj, *signatures[j])
        _store_slot(f, _field(f, obj, DATA, "ptr"), slot)
    if n_consts:
        const_ptrs = _field(f, "%self", DATA, "ptr")
        for c in range(n_consts):
            address = f.emit(f"load ptr, ptr {f.emit(f'getelementptr inbounds ptr, ptr {const_ptrs}, i64 {c}')}")
            _store_slot(f, address, len(signatures) + c)
    rc = f.emit(f"call i64 @{name}(ptr %argv)")
    f.lines += [f"  %result = call ptr @jg_PyLong_FromLongLong(i64 {rc})", "  ret ptr %result",
                "fallback:", f"  %retry = call ptr @jg_PyLong_FromLongLong(i64 {FALLBACK})", "  ret ptr %retry"]
    header = "@jg_PyArray_Type = external global i8\ndeclare ptr @jg_PyLong_FromLongLong(i64)\n"
    return header + f.text()


def _check_array(f, obj, shape, dtype, writeable):
    _require(f, f.emit(f"icmp eq i32 {_field(f, obj, NDIM, 'i32')}, {len(shape)}"))
    dims = _field(f, obj, DIMS, "ptr")
    for d, n in enumerate(shape):
        _require(f, f.emit(f"icmp eq i64 {_field(f, dims, 8 * d, 'i64')}, {n}"))
    descr = _field(f, obj, DESCR, "ptr")
    _require(f, f.emit(f"icmp eq i32 {_field(f, descr, DESCR_TYPE_NUM, 'i32')}, {dtype.num}"))
    order = _field(f, descr, DESCR_BYTEORDER, "i8")
    _require(f, f.emit(f"or i1 {f.emit(f'icmp eq i8 {order}, 61')}, {f.emit(f'icmp eq i8 {order}, 124')}"))
    need = C_CONTIGUOUS_ALIGNED | (WRITEABLE if writeable else 0)
    flags = _field(f, obj, FLAGS, "i32")
    _require(f, f.emit(f"icmp eq i32 {f.emit(f'and i32 {flags}, {need}')}, {need}"))


def _require(f, cond):
    """Continue only if i1 `cond` holds, else go to %fallback."""
    label = f.new_label("ok")
    f.stmt(f"br i1 {cond}, label %{label}, label %fallback")
    f.start_block(label)


def _field(f, base, offset, ty):
    return f.emit(f"load {ty}, ptr {f.emit(f'getelementptr inbounds i8, ptr {base}, i64 {offset}')}")


def _store_slot(f, value, slot):
    f.stmt(f"store ptr {value}, ptr {f.emit(f'getelementptr inbounds ptr, ptr %argv, i64 {slot}')}")


def make_builtin(address, name, const_ptrs):
    """A Python builtin function calling the METH_FASTCALL C function at `address`, with `self` the
    uintp array `const_ptrs` (the builtin keeps it alive)."""
    class MethodDef(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p), ("flags", ctypes.c_int),
                    ("doc", ctypes.c_char_p)]
    name_bytes = name.encode()
    mdef = MethodDef(name_bytes, address, METH_FASTCALL, None)
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
    fn = new(ctypes.addressof(mdef), const_ptrs, None)
    return fn, (mdef, name_bytes)      # the definition must outlive the builtin
