"""The fast calling convention: a JIT-made CPython METH_FASTCALL builtin around a kernel (the notes
measured ~65-75 ns per call against 2-9 us for ctypes with `arr.ctypes.data`).

`wrapper_ir(...)` emits `ptr <name>_py(ptr self, ptr args, i64 nargs)`, called with the inputs (and
the workspace array when the kernel takes one).  For every argument it checks, by raw loads from the
ndarray struct, that it is exactly an ndarray with the trace's ndim, dims, dtype number, native byte
order, and C-contiguous + aligned flags; only then does it read the data pointers, allocate the fresh
outputs itself (NumPy's C API: PyArray_DescrFromType + PyArray_Empty, ~1,100 instructions less per
call than `np.empty` from Python) and run the kernel.  On success it returns the one output, or the
list of outputs when there are several (never an int); else it releases the outputs and returns the
kernel's exit code as a Python int, or FALLBACK when a check failed (the Kernel then takes the
checked ctypes path, which copies non-contiguous inputs and raises precise errors).  A failed
allocation returns NULL with NumPy's MemoryError set.

Kept outputs.  A wrapper whose outputs take at most JITGRAD_KEEP_OUTPUTS_MB (default 256; 0: never)
keeps a reference to each output it returned (in its `self`, `WrapperSelf`) and returns the same
array again on a later call when nothing else refers to it any more: its reference count is 1 (only
the wrapper's), it has no weak reference, and its shape, dtype, byte order and flags are still those
of a fresh output (the caller may have reassigned `.shape` or `.dtype`, or cleared `writeable`).
Anything else gets a fresh array, which the wrapper keeps instead.  The kernel writes every element
of its outputs, as it must for NumPy's uninitialised `PyArray_Empty`, so a reused array holds nothing
of its last call.  What this saves is the allocation and, for big outputs, the page faults of fresh
memory (glibc maps blocks above its threshold anew on every call and the kernel pays for zeroing the
pages): W3's gradient at 1e6 elements spent about 45% of its CPU time in the kernel's page faults.
The caller sees no difference but identity: a dropped output's object may come back.

The struct offsets are NumPy's (2.x) PyArrayObject and PyArray_Descr layouts, the C API slots are
numbered as in NumPy's __multiarray_api.h; `layout_ok()` verifies both at run time on a probe array,
and the fast path is not built if they differ.  CONVENTION numbers this calling convention (a kernel
form stored on disk by another version is not restored with another one).
"""
import ctypes
import math
import os
import sys
import weakref

import numpy as np

from . import engine
from .abi import SUCCESS
from .llvmtext import FunctionText

FALLBACK = -100
INT_INPUT = np.dtype(np.int64)      # a 0-d input of this dtype may be given as a Python int
CONVENTION = 3      # 1: outputs passed in by the caller; 2: allocated by the wrapper; 3: and kept
REFCOUNT, DATA, NDIM, DIMS, DESCR, FLAGS, WEAKREFS = 0, 16, 24, 32, 56, 64, 72
DESCR_BYTEORDER, DESCR_TYPE_NUM = 26, 28
C_CONTIGUOUS_ALIGNED, WRITEABLE = 0x1 | 0x100, 0x400
METH_FASTCALL = 0x80
API_SLOTS = {"PyArray_DescrFromType": 45, "PyArray_Empty": 184}     # in NumPy's _ARRAY_API table
_state = {}


def layout_ok():
    """True if this NumPy's ndarray struct and C API table match what the wrapper reads and calls."""
    if "ok" not in _state:
        probe = np.zeros((3, 5))
        read = lambda address, ctype: ctype.from_address(address).value
        descr = read(id(probe) + DESCR, ctypes.c_void_p)
        unreferenced = read(id(probe) + WEAKREFS, ctypes.c_void_p) is None
        referenced = weakref.ref(probe)
        ok = (unreferenced and read(id(probe) + WEAKREFS, ctypes.c_void_p) is not None and referenced() is probe
              and read(id(probe) + REFCOUNT, ctypes.c_ssize_t) == sys.getrefcount(probe) - 1
              and read(id(probe) + DATA, ctypes.c_void_p) == probe.ctypes.data
              and read(id(probe) + NDIM, ctypes.c_int) == 2
              and read(read(id(probe) + DIMS, ctypes.c_void_p) + 8, ctypes.c_int64) == 5
              and descr == id(probe.dtype)
              and read(descr + DESCR_TYPE_NUM, ctypes.c_int) == probe.dtype.num
              and read(id(probe) + FLAGS, ctypes.c_int) & C_CONTIGUOUS_ALIGNED == C_CONTIGUOUS_ALIGNED)
        api = _numpy_api() if ok else None
        ok = api is not None
        if ok:
            engine.register_symbol("jg_PyArray_Type", id(np.ndarray))
            for name, address in api.items():
                engine.register_symbol(f"jg_{name}", address)
            engine.register_symbol("jg_PyLong_Type", id(int))
            for name in ("PyLong_FromLongLong", "Py_IncRef", "Py_DecRef", "PyList_New", "PyList_SetItem",
                         "PyLong_AsLongLongAndOverflow"):
                address = ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value
                engine.register_symbol(f"jg_{name}", address)
        _state["ok"] = ok       # only now: another thread compiling meanwhile must not see it before the symbols
    return _state["ok"]


def _numpy_api():
    """{name: address} of the API_SLOTS functions, checked by making a (4, 6) float64 array with them
    and reading it back; None if NumPy's table is not laid out as expected."""
    from numpy._core import _multiarray_umath
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    table = get(_multiarray_umath._ARRAY_API, None)
    slot = lambda k: ctypes.c_void_p.from_address(table + 8 * k).value
    if slot(2) != id(np.ndarray):
        return None
    api = {name: slot(k) for name, k in API_SLOTS.items()}
    # PYFUNCTYPE: called with the GIL held, as the C API needs
    descr_from_type = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(api["PyArray_DescrFromType"])
    empty = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_int)(api["PyArray_Empty"])
    float64 = np.dtype(np.float64)
    descr = descr_from_type(float64.num)          # a new reference, which PyArray_Empty steals
    if descr != id(float64):
        ctypes.pythonapi.Py_DecRef(ctypes.c_void_p(descr))
        return None
    dims = (ctypes.c_int64 * 2)(4, 6)
    made = empty(2, ctypes.cast(dims, ctypes.c_void_p), descr, 0)
    read = lambda address, ctype: ctype.from_address(address).value
    ok = (made is not None and read(made + 8, ctypes.c_void_p) == id(np.ndarray)
          and read(made + NDIM, ctypes.c_int) == 2 and read(read(made + DIMS, ctypes.c_void_p) + 8, ctypes.c_int64) == 6
          and read(made + DESCR, ctypes.c_void_p) == id(float64))
    if made is not None:
        ctypes.pythonapi.Py_DecRef(ctypes.c_void_p(made))
    return api if ok else None


def wrapper_ir(name, in_sigs, out_sigs, n_consts, takes_workspace):
    """IR text of the FASTCALL wrapper `<name>_py` of kernel `name`.  `in_sigs` lists (shape, dtype) per
    input array, `out_sigs` per output (the wrapper allocates those, or reuses those it keeps: see
    `keeps_outputs`); the workspace array, if the kernel takes one, comes last and is only type-checked
    (the Kernel makes it).  Kernel slots: inputs, outputs, constants, workspace.  The builtin's `self`
    is a `WrapperSelf`: the `n_consts` constants' data pointers, then one slot per output, so the text
    holds no address and its object file is valid in any process."""
    n_args = len(in_sigs) + bool(takes_workspace)
    n_slots = len(in_sigs) + len(out_sigs) + n_consts + bool(takes_workspace)
    f = FunctionText(f"define ptr @{name}_py(ptr %self, ptr %args, i64 %nargs)")
    f.allocas.append(f"  %argv = alloca [{n_slots} x ptr], align 8")
    f.allocas.append(f"  %outs = alloca [{max(len(out_sigs), 1)} x ptr], align 8")
    _require(f, f.emit(f"icmp eq i64 %nargs, {n_args}"))
    slots = list(range(len(in_sigs))) + ([n_slots - 1] if takes_workspace else [])
    for j, slot in enumerate(slots):
        obj = f.emit(f"load ptr, ptr {f.emit(f'getelementptr inbounds ptr, ptr %args, i64 {j}')}")
        if j < len(in_sigs) and in_sigs[j] == ((), INT_INPUT):
            _int_or_array(f, obj, j)
            continue
        _require(f, f.emit(f"icmp eq ptr {_field(f, obj, 8, 'ptr')}, @jg_PyArray_Type"))
        if j < len(in_sigs):
            _check_array(f, obj, *in_sigs[j], False)
        _store_slot(f, _field(f, obj, DATA, "ptr"), slot)
    self_slots = _field(f, "%self", DATA, "ptr")
    for c in range(n_consts):
        address = f.emit(f"load ptr, ptr {f.emit(f'getelementptr inbounds ptr, ptr {self_slots}, i64 {c}')}")
        _store_slot(f, address, len(in_sigs) + len(out_sigs) + c)
    kept = self_slots if keeps_outputs(out_sigs) else None
    globals_ = _allocate_outputs(f, name, out_sigs, len(in_sigs), kept, n_consts)
    rc = f.emit(f"call i64 @{name}(ptr %argv)")
    failed = f.new_label("failed")
    done = f.new_label("done")
    f.stmt(f"br i1 {f.emit(f'icmp eq i64 {rc}, {SUCCESS}')}, label %{done}, label %{failed}")
    f.start_block(done)
    f.lines += _result(f, len(out_sigs))
    f.start_block(failed)
    _release_outputs(f, len(out_sigs))
    f.lines += [f"  %result = call ptr @jg_PyLong_FromLongLong(i64 {rc})", "  ret ptr %result",
                "fallback:", f"  %retry = call ptr @jg_PyLong_FromLongLong(i64 {FALLBACK})", "  ret ptr %retry",
                "nomemory:"]
    _release_outputs(f, len(out_sigs))
    f.lines.append("  ret ptr null")
    header = ("@jg_PyArray_Type = external global i8\n@jg_PyLong_Type = external global i8\n"
              "declare i64 @jg_PyLong_AsLongLongAndOverflow(ptr, ptr)\ndeclare ptr @jg_PyLong_FromLongLong(i64)\n"
              "declare ptr @jg_PyArray_DescrFromType(i32)\ndeclare ptr @jg_PyArray_Empty(i32, ptr, ptr, i32)\n"
              "declare void @jg_Py_IncRef(ptr)\ndeclare void @jg_Py_DecRef(ptr)\ndeclare ptr @jg_PyList_New(i64)\n"
              "declare i32 @jg_PyList_SetItem(ptr, i64, ptr)\n")
    return header + globals_ + f.text()


def _allocate_outputs(f, name, out_sigs, first_slot, kept, n_consts):
    """Emit the allocation of every output (into %outs, their data pointers into the kernel's slots);
    a failed allocation goes to %nomemory, which releases those made so far (the rest are null).
    `kept`: the wrapper's `self` slots when it keeps its outputs (output j's kept array in slot
    n_consts + j), else None.  Returns the module-level constants holding the outputs' dims."""
    consts = []
    for j in range(len(out_sigs)):
        f.stmt(f"store ptr null, ptr {f.emit(f'getelementptr inbounds ptr, ptr %outs, i64 {j}')}")
    for j, (shape, dtype) in enumerate(out_sigs):
        dims = "null"
        if shape:
            dims = f"@{name}_dims{j}"
            consts.append(f"{dims} = private unnamed_addr constant [{len(shape)} x i64] "
                          f"[{', '.join(f'i64 {d}' for d in shape)}]\n")
        slot = f.emit(f"getelementptr inbounds ptr, ptr %outs, i64 {j}")
        ready = f.new_label("ready") if kept else None
        if kept:
            held_at = f.emit(f"getelementptr inbounds ptr, ptr {kept}, i64 {n_consts + j}")
            _reuse_kept(f, f.emit(f"load ptr, ptr {held_at}"), slot, shape, dtype, ready)
        descr = f.emit(f"call ptr @jg_PyArray_DescrFromType(i32 {dtype.num})")
        _require(f, f.emit(f"icmp ne ptr {descr}, null"), "nomemory")
        out = f.emit(f"call ptr @jg_PyArray_Empty(i32 {len(shape)}, ptr {dims}, ptr {descr}, i32 0)")
        _require(f, f.emit(f"icmp ne ptr {out}, null"), "nomemory")
        f.stmt(f"store ptr {out}, ptr {slot}")
        if kept:        # keep the fresh array instead of the one the caller still refers to
            f.stmt(f"call void @jg_Py_DecRef(ptr {f.emit(f'load ptr, ptr {held_at}')})")
            f.stmt(f"call void @jg_Py_IncRef(ptr {out})")
            f.stmt(f"store ptr {out}, ptr {held_at}")
            f.stmt(f"br label %{ready}")
            f.start_block(ready)
        _store_slot(f, _field(f, f.emit(f"load ptr, ptr {slot}"), DATA, "ptr"), first_slot + j)
    return "".join(consts)


def _reuse_kept(f, held, slot, shape, dtype, done):
    """Store the kept array `held` into the output slot `slot` (a new reference) and go to `done` when
    nothing but the wrapper refers to it and it is still a fresh output's like; else fall through."""
    allocate, check, reuse = f.new_label("allocate"), f.new_label("check"), f.new_label("reuse")
    f.stmt(f"br i1 {f.emit(f'icmp ne ptr {held}, null')}, label %{check}, label %{allocate}")
    f.start_block(check)
    _require(f, f.emit(f"icmp eq i64 {_field(f, held, REFCOUNT, 'i64')}, 1"), allocate)
    _require(f, f.emit(f"icmp eq ptr {_field(f, held, WEAKREFS, 'ptr')}, null"), allocate)
    _check_array(f, held, shape, dtype, True, allocate)
    f.stmt(f"br label %{reuse}")
    f.start_block(reuse)
    f.stmt(f"call void @jg_Py_IncRef(ptr {held})")
    f.stmt(f"store ptr {held}, ptr {slot}")
    f.stmt(f"br label %{done}")
    f.start_block(allocate)


def keeps_outputs(out_sigs):
    """Whether the wrapper of a kernel with outputs `out_sigs` keeps them for reuse: when they take at
    most JITGRAD_KEEP_OUTPUTS_MB together (default 256; 0 turns keeping off)."""
    setting = os.environ.get("JITGRAD_KEEP_OUTPUTS_MB", "").strip() or "256"
    try:
        limit = float(setting) * (1 << 20)
    except ValueError:
        raise ValueError(f"JITGRAD_KEEP_OUTPUTS_MB must be a number of megabytes, got {setting!r}") from None
    total = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in out_sigs)
    return bool(out_sigs) and 0 < limit and total <= limit


class WrapperSelf(np.ndarray):
    """The `self` of a kernel's wrapper (uintp): its constants' data pointers, then one slot per output
    holding the output array the wrapper keeps (a reference it owns, or 0).  Released with it.  `held`:
    what the wrapper builtin needs while it exists (its machine code's module, the constants, its method
    definition: make_builtin), so that the builtin may outlive its Kernel."""

    @classmethod
    def make(cls, const_ptrs, n_outputs):
        slots = cls(len(const_ptrs) + n_outputs, dtype=np.uintp)
        slots[:] = 0
        slots[:len(const_ptrs)] = const_ptrs
        slots.n_consts, slots.held = len(const_ptrs), []
        return slots

    def __del__(self):
        for address in self.view(np.ndarray)[getattr(self, "n_consts", len(self)):].tolist():
            if address:
                ctypes.pythonapi.Py_DecRef(ctypes.c_void_p(address))


def _output(f, j):
    return f.emit(f"load ptr, ptr {f.emit(f'getelementptr inbounds ptr, ptr %outs, i64 {j}')}")


def _release_outputs(f, n_out):
    for j in range(n_out):
        f.stmt(f"call void @jg_Py_DecRef(ptr {_output(f, j)})")


def _result(f, n_out):
    """The lines returning the one output, or a new list of the outputs (which it takes over)."""
    if n_out == 1:
        return [f"  ret ptr {_output(f, 0)}"]
    items = f.emit(f"call ptr @jg_PyList_New(i64 {n_out})")
    _require(f, f.emit(f"icmp ne ptr {items}, null"), "nomemory")
    for j in range(n_out):
        f.stmt(f"call i32 @jg_PyList_SetItem(ptr {items}, i64 {j}, ptr {_output(f, j)})")
    return [f"  ret ptr {items}"]


def _check_array(f, obj, shape, dtype, writeable, otherwise="fallback"):
    """Continue only if `obj` (an ndarray) has this shape, dtype, native byte order, and is C-contiguous,
    aligned (and writeable), else go to `otherwise`."""
    _require(f, f.emit(f"icmp eq i32 {_field(f, obj, NDIM, 'i32')}, {len(shape)}"), otherwise)
    dims = _field(f, obj, DIMS, "ptr")
    for d, n in enumerate(shape):
        _require(f, f.emit(f"icmp eq i64 {_field(f, dims, 8 * d, 'i64')}, {n}"), otherwise)
    descr = _field(f, obj, DESCR, "ptr")
    _require(f, f.emit(f"icmp eq i32 {_field(f, descr, DESCR_TYPE_NUM, 'i32')}, {dtype.num}"), otherwise)
    order = _field(f, descr, DESCR_BYTEORDER, "i8")
    _require(f, f.emit(f"or i1 {f.emit(f'icmp eq i8 {order}, 61')}, {f.emit(f'icmp eq i8 {order}, 124')}"),
             otherwise)
    need = C_CONTIGUOUS_ALIGNED | (WRITEABLE if writeable else 0)
    flags = _field(f, obj, FLAGS, "i32")
    _require(f, f.emit(f"icmp eq i32 {f.emit(f'and i32 {flags}, {need}')}, {need}"), otherwise)


def _int_or_array(f, obj, j):
    """Input j, a 0-d int64 (a run-time trip count: jitgrad/api.py passes the int argument as it is): a
    Python int (exactly; its value in a stack slot) or such an array."""
    is_int, is_array, next_ = f.new_label("int"), f.new_label("array"), f.new_label("input")
    f.allocas += [f"  %int{j} = alloca i64, align 8", f"  %ovf{j} = alloca i32, align 4"]
    kind = _field(f, obj, 8, "ptr")
    f.stmt(f"br i1 {f.emit(f'icmp eq ptr {kind}, @jg_PyLong_Type')}, label %{is_int}, label %{is_array}")
    f.start_block(is_int)
    value = f.emit(f"call i64 @jg_PyLong_AsLongLongAndOverflow(ptr {obj}, ptr %ovf{j})")
    _require(f, f.emit(f"icmp eq i32 {f.emit(f'load i32, ptr %ovf{j}')}, 0"))
    f.stmt(f"store i64 {value}, ptr %int{j}")
    _store_slot(f, f"%int{j}", j)
    f.stmt(f"br label %{next_}")
    f.start_block(is_array)
    _require(f, f.emit(f"icmp eq ptr {_field(f, obj, 8, 'ptr')}, @jg_PyArray_Type"))
    _check_array(f, obj, (), INT_INPUT, False)
    _store_slot(f, _field(f, obj, DATA, "ptr"), j)
    f.stmt(f"br label %{next_}")
    f.start_block(next_)


def _require(f, cond, otherwise="fallback"):
    """Continue only if i1 `cond` holds, else go to %fallback (or the label `otherwise`)."""
    label = f.new_label("ok")
    f.stmt(f"br i1 {cond}, label %{label}, label %{otherwise}")
    f.start_block(label)


def _field(f, base, offset, ty):
    return f.emit(f"load {ty}, ptr {f.emit(f'getelementptr inbounds i8, ptr {base}, i64 {offset}')}")


def _store_slot(f, value, slot):
    f.stmt(f"store ptr {value}, ptr {f.emit(f'getelementptr inbounds ptr, ptr %argv, i64 {slot}')}")


_new_function = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.py_object, ctypes.py_object)(
    ("PyCFunction_NewEx", ctypes.pythonapi))


class _MethodDef(ctypes.Structure):
    """CPython's PyMethodDef."""
    _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p), ("flags", ctypes.c_int),
                ("doc", ctypes.c_char_p)]


def make_builtin(address, name, self_obj, holder, flags=METH_FASTCALL):
    """A Python builtin function calling the C function at `address` (METH_FASTCALL, or `flags`), with
    `self` the object `self_obj`, which the builtin keeps alive.  Its method definition (CPython's
    PyMethodDef, made here) goes into `holder`, a list `self_obj` holds: the definition must live as
    long as the builtin, and CPython's meth_dealloc reads it just before releasing `self`.  Kept
    anywhere else (the Kernel's attributes, as before), a garbage-collected cycle could free it first,
    and the builtin's end then crashed in meth_dealloc."""
    name_bytes = name.encode()
    mdef = _MethodDef(name_bytes, address, flags, None)
    holder.append((mdef, name_bytes))
    return _new_function(ctypes.addressof(mdef), self_obj, None)
