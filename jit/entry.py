"""The native cached-call entry: one JIT-made METH_FASTCALL|METH_KEYWORDS builtin function, compiled once
per process, that a transformed function's call runs first (jitgrad/fastentry.py builds its plan).

A call `g(x)` then costs one C-level call: the entry reads its plan (an int64 array of words: object
addresses, counts and struct offsets), checks in native code what the Python fast path checks (no
keyword arguments, the arity, each static argument's type and value, NumPy's error-mode object in its
context variable, namespace names and environment values by identity, code objects of functions by
their `__code__` pointer), then calls the kernel's own FASTCALL wrapper (pywrapper.py: it checks every
array's type, shape, dtype and flags) on the argument arrays and the environment arrays read, counts
the hit and returns the output (or `package(outputs)`).  Any check that fails calls `fallback`, the
Python fast path, with the same arguments: it re-checks everything and takes the slow path as needed,
so the native checks only ever decline.  An exit code from the kernel calls `resume(code, *args)`.

The entry reads a tuple's items, a function's `func_code` and a cell's contents at offsets that
`layout()` finds on probe objects at run time; it is not made when they cannot be found.
"""
import ctypes
import threading
import types

import numpy as np

from . import engine, pywrapper

# plan words (int64): the header, then the array argument positions, static checks, environment reads
COUNTER, NARGS, FALLBACK, RESUME, MODE_VAR, QUIET, WRAPPER, WRAPPER_SELF, PACKAGE, N_OUT = range(10)
N_ARRAYS, ARRAYS_AT, N_STATIC, STATIC_AT, N_READS, READS_AT, CODE_OFFSET, CELL_OFFSET = range(10, 18)
HEADER = 18
READ_DICT, READ_CELL, READ_CODE = 0, 1, 2     # kinds of environment read: (kind, container, key, expected)
AS_INPUT = 1            # `expected` of a read whose value (an array) is passed to the kernel, not compared
METH_KEYWORDS = 0x2
MAX_INPUTS = 64         # arrays passed to the kernel, and arguments of a call (the entry's stack buffers)
_state = {}
_lock = threading.Lock()

_API = ("PyDict_GetItem", "PyContextVar_Get", "PyObject_RichCompareBool", "PyObject_Vectorcall", "Py_DecRef",
        "Py_IncRef", "PyErr_Clear", "PyList_New", "PyList_SetItem")


def _probe_offset(obj, target, limit=128):
    """The byte offset in `obj`'s struct holding a pointer to `target` (None if none within `limit`)."""
    for off in range(16, limit, 8):
        if ctypes.c_void_p.from_address(id(obj) + off).value == id(target):
            return off
    return None


def layout():
    """{"items": tuple items offset, "code": function code offset, "cell": cell contents offset}, checked
    on two probes each, or None (then no native entry is made)."""
    if "layout" not in _state:
        def probe_a():
            return 1

        def probe_b(x):
            return x
        pair = (probe_a, probe_b)
        cell_a, cell_b = types.CellType(probe_a), types.CellType(probe_b)
        found = {"items": (_probe_offset(pair, probe_a), _probe_offset(pair, probe_b), -8),
                 "code": (_probe_offset(probe_a, probe_a.__code__), _probe_offset(probe_b, probe_b.__code__), 0),
                 "cell": (_probe_offset(cell_a, probe_a), _probe_offset(cell_b, probe_b), 0)}
        ok = all(a is not None and b is not None and a == b + shift for a, b, shift in found.values())
        _state["layout"] = {k: v[0] for k, v in found.items()} if ok and pywrapper.layout_ok() else None
    return _state["layout"]


def _entry_ir(items):
    """The entry's LLVM IR (one generic function; everything it checks is in its plan)."""
    w = {name: globals()[name] for name in ("COUNTER", "NARGS", "FALLBACK", "RESUME", "MODE_VAR", "QUIET", "WRAPPER",
                                            "WRAPPER_SELF", "PACKAGE", "N_OUT", "N_ARRAYS", "ARRAYS_AT", "N_STATIC",
                                            "STATIC_AT", "N_READS", "READS_AT", "CODE_OFFSET", "CELL_OFFSET")}
    return _TEMPLATE.format(items=items, data=pywrapper.DATA, max=MAX_INPUTS, max1=MAX_INPUTS + 1,
                            as_input=AS_INPUT, **w)


_TEMPLATE = """
@jg_PyLong_Type = external global i8
declare ptr @jg_PyDict_GetItem(ptr, ptr)
declare i32 @jg_PyContextVar_Get(ptr, ptr, ptr)
declare i32 @jg_PyObject_RichCompareBool(ptr, ptr, i32)
declare ptr @jg_PyObject_Vectorcall(ptr, ptr, i64, ptr)
declare void @jg_Py_DecRef(ptr)
declare void @jg_Py_IncRef(ptr)
declare void @jg_PyErr_Clear()
declare ptr @jg_PyList_New(i64)
declare i32 @jg_PyList_SetItem(ptr, i64, ptr)

define internal i64 @w(ptr %plan, i64 %k) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %plan, i64 %k
  %v = load i64, ptr %p
  ret i64 %v
}}

define internal ptr @wp(ptr %plan, i64 %k) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %plan, i64 %k
  %v = load ptr, ptr %p
  ret ptr %v
}}

define ptr @jg_native_entry(ptr %self, ptr %args, i64 %nargs, ptr %kwnames) {{
entry:
  %inbuf = alloca [{max} x ptr], align 8
  %cbuf = alloca [{max1} x ptr], align 8
  %mode = alloca ptr, align 8
  %i = alloca i64, align 8
  %nenv = alloca i64, align 8
  %arg = alloca ptr, align 8
  %planobj.p = getelementptr inbounds i8, ptr %self, i64 {items}
  %planobj = load ptr, ptr %planobj.p
  %plan.p = getelementptr inbounds i8, ptr %planobj, i64 {data}
  %plan = load ptr, ptr %plan.p
  %kwnull = icmp eq ptr %kwnames, null
  br i1 %kwnull, label %arity, label %fallback
arity:
  %want = call i64 @w(ptr %plan, i64 {NARGS})
  %arityok = icmp eq i64 %nargs, %want
  br i1 %arityok, label %errmode, label %fallback
errmode:
  %var = call ptr @wp(ptr %plan, i64 {MODE_VAR})
  %got = call i32 @jg_PyContextVar_Get(ptr %var, ptr null, ptr %mode)
  %gotok = icmp eq i32 %got, 0
  br i1 %gotok, label %errmode2, label %clear_fallback
errmode2:
  %m = load ptr, ptr %mode
  call void @jg_Py_DecRef(ptr %m)
  %quiet = call ptr @wp(ptr %plan, i64 {QUIET})
  %quietok = icmp eq ptr %m, %quiet
  br i1 %quietok, label %statics, label %fallback
statics:
  %nstatic = call i64 @w(ptr %plan, i64 {N_STATIC})
  %static0 = call i64 @w(ptr %plan, i64 {STATIC_AT})
  store i64 0, ptr %i
  br label %st.loop
st.loop:
  %sk = load i64, ptr %i
  %st.more = icmp slt i64 %sk, %nstatic
  br i1 %st.more, label %st.body, label %reads
st.body:
  %sk3 = mul i64 %sk, 3
  %so = add i64 %sk3, %static0
  %spos = call i64 @w(ptr %plan, i64 %so)
  %so1 = add i64 %so, 1
  %stype = call ptr @wp(ptr %plan, i64 %so1)
  %so2 = add i64 %so, 2
  %sval = call ptr @wp(ptr %plan, i64 %so2)
  %sarg.p = getelementptr inbounds ptr, ptr %args, i64 %spos
  %sarg = load ptr, ptr %sarg.p
  %sargt.p = getelementptr inbounds i8, ptr %sarg, i64 8
  %sargt = load ptr, ptr %sargt.p
  %stypeok = icmp eq ptr %sargt, %stype
  br i1 %stypeok, label %st.same, label %fallback
st.same:
  %sis = icmp eq ptr %sarg, %sval
  br i1 %sis, label %st.next, label %st.cmp
st.cmp:
  %eq = call i32 @jg_PyObject_RichCompareBool(ptr %sarg, ptr %sval, i32 2)
  %eqok = icmp eq i32 %eq, 1
  br i1 %eqok, label %st.next, label %st.bad
st.bad:
  %eqerr = icmp slt i32 %eq, 0
  br i1 %eqerr, label %clear_fallback, label %fallback
st.next:
  %sk1 = add i64 %sk, 1
  store i64 %sk1, ptr %i
  br label %st.loop
reads:
  %nreads = call i64 @w(ptr %plan, i64 {N_READS})
  %read0 = call i64 @w(ptr %plan, i64 {READS_AT})
  %narrays = call i64 @w(ptr %plan, i64 {N_ARRAYS})
  store i64 0, ptr %i
  store i64 0, ptr %nenv
  br label %rd.loop
rd.loop:
  %rk = load i64, ptr %i
  %rd.more = icmp slt i64 %rk, %nreads
  br i1 %rd.more, label %rd.body, label %arrays
rd.body:
  %rk4 = mul i64 %rk, 4
  %ro = add i64 %rk4, %read0
  %rkind = call i64 @w(ptr %plan, i64 %ro)
  %ro1 = add i64 %ro, 1
  %rcont = call ptr @wp(ptr %plan, i64 %ro1)
  %ro2 = add i64 %ro, 2
  %rkey = call ptr @wp(ptr %plan, i64 %ro2)
  %ro3 = add i64 %ro, 3
  %rexp = call ptr @wp(ptr %plan, i64 %ro3)
  switch i64 %rkind, label %fallback [ i64 0, label %rd.dict
                                       i64 1, label %rd.cell
                                       i64 2, label %rd.code ]
rd.dict:
  %vd = call ptr @jg_PyDict_GetItem(ptr %rcont, ptr %rkey)
  br label %rd.got
rd.cell:
  %celloff = call i64 @w(ptr %plan, i64 {CELL_OFFSET})
  %vc.p = getelementptr inbounds i8, ptr %rcont, i64 %celloff
  %vc = load ptr, ptr %vc.p
  br label %rd.got
rd.code:
  %codeoff = call i64 @w(ptr %plan, i64 {CODE_OFFSET})
  %vf.p = getelementptr inbounds i8, ptr %rcont, i64 %codeoff
  %vf = load ptr, ptr %vf.p
  br label %rd.got
rd.got:
  %v = phi ptr [ %vd, %rd.dict ], [ %vc, %rd.cell ], [ %vf, %rd.code ]
  %isinput = icmp eq ptr %rexp, inttoptr (i64 {as_input} to ptr)
  br i1 %isinput, label %rd.input, label %rd.cmp
rd.cmp:
  %same = icmp eq ptr %v, %rexp
  br i1 %same, label %rd.next, label %release_fallback
rd.input:
  %vnull = icmp eq ptr %v, null
  br i1 %vnull, label %release_fallback, label %rd.keep
rd.keep:
  %ne = load i64, ptr %nenv
  %slot = add i64 %ne, %narrays
  %room = icmp slt i64 %slot, {max}
  br i1 %room, label %rd.store, label %release_fallback
rd.store:
  call void @jg_Py_IncRef(ptr %v)
  %slot.p = getelementptr inbounds ptr, ptr %inbuf, i64 %slot
  store ptr %v, ptr %slot.p
  %ne1 = add i64 %ne, 1
  store i64 %ne1, ptr %nenv
  br label %rd.next
rd.next:
  %rk1 = add i64 %rk, 1
  store i64 %rk1, ptr %i
  br label %rd.loop
arrays:
  %arr0 = call i64 @w(ptr %plan, i64 {ARRAYS_AT})
  store i64 0, ptr %i
  br label %ar.loop
ar.loop:
  %ak = load i64, ptr %i
  %ar.more = icmp slt i64 %ak, %narrays
  br i1 %ar.more, label %ar.body, label %call
ar.body:
  %ao = add i64 %ak, %arr0
  %apos = call i64 @w(ptr %plan, i64 %ao)
  %aarg.p = getelementptr inbounds ptr, ptr %args, i64 %apos
  %aarg = load ptr, ptr %aarg.p
  %aslot.p = getelementptr inbounds ptr, ptr %inbuf, i64 %ak
  store ptr %aarg, ptr %aslot.p
  %ak1 = add i64 %ak, 1
  store i64 %ak1, ptr %i
  br label %ar.loop
call:
  %wrapper = call ptr @wp(ptr %plan, i64 {WRAPPER})
  %wself = call ptr @wp(ptr %plan, i64 {WRAPPER_SELF})
  %nenvc = load i64, ptr %nenv
  %nin = add i64 %narrays, %nenvc
  %res = call ptr %wrapper(ptr %wself, ptr %inbuf, i64 %nin)
  call void @release(ptr %inbuf, i64 %narrays, i64 %nin)
  %resnull = icmp eq ptr %res, null
  br i1 %resnull, label %error, label %checkres
error:
  ret ptr null
checkres:
  %rest.p = getelementptr inbounds i8, ptr %res, i64 8
  %rest = load ptr, ptr %rest.p
  %isint = icmp eq ptr %rest, @jg_PyLong_Type
  br i1 %isint, label %resume, label %hit
hit:
  %counter = call ptr @wp(ptr %plan, i64 {COUNTER})
  %hits = load i64, ptr %counter
  %hits1 = add i64 %hits, 1
  store i64 %hits1, ptr %counter
  %package = call ptr @wp(ptr %plan, i64 {PACKAGE})
  %nopackage = icmp eq ptr %package, null
  br i1 %nopackage, label %direct, label %packaged
direct:
  ret ptr %res
packaged:
  %nout = call i64 @w(ptr %plan, i64 {N_OUT})
  %single = icmp eq i64 %nout, 1
  br i1 %single, label %wrap, label %pass
wrap:
  %list = call ptr @jg_PyList_New(i64 1)
  %listnull = icmp eq ptr %list, null
  br i1 %listnull, label %wrapfail, label %wrapok
wrapfail:
  call void @jg_Py_DecRef(ptr %res)
  ret ptr null
wrapok:
  %set = call i32 @jg_PyList_SetItem(ptr %list, i64 0, ptr %res)
  br label %pass
pass:
  %outs = phi ptr [ %res, %packaged ], [ %list, %wrapok ]
  store ptr %outs, ptr %arg
  %pkgd = call ptr @jg_PyObject_Vectorcall(ptr %package, ptr %arg, i64 1, ptr null)
  call void @jg_Py_DecRef(ptr %outs)
  ret ptr %pkgd
resume:
  store ptr %res, ptr %cbuf
  store i64 0, ptr %i
  br label %cp.loop
cp.loop:
  %ck = load i64, ptr %i
  %cp.more = icmp slt i64 %ck, %nargs
  br i1 %cp.more, label %cp.body, label %cp.call
cp.body:
  %csrc.p = getelementptr inbounds ptr, ptr %args, i64 %ck
  %csrc = load ptr, ptr %csrc.p
  %ck1 = add i64 %ck, 1
  %cdst.p = getelementptr inbounds ptr, ptr %cbuf, i64 %ck1
  store ptr %csrc, ptr %cdst.p
  store i64 %ck1, ptr %i
  br label %cp.loop
cp.call:
  %resumefn = call ptr @wp(ptr %plan, i64 {RESUME})
  %nargs1 = add i64 %nargs, 1
  %resumed = call ptr @jg_PyObject_Vectorcall(ptr %resumefn, ptr %cbuf, i64 %nargs1, ptr null)
  call void @jg_Py_DecRef(ptr %res)
  ret ptr %resumed
release_fallback:
  %nenvr = load i64, ptr %nenv
  %ninr = add i64 %narrays, %nenvr
  call void @release(ptr %inbuf, i64 %narrays, i64 %ninr)
  br label %fallback
clear_fallback:
  call void @jg_PyErr_Clear()
  br label %fallback
fallback:
  %fb = call ptr @wp(ptr %plan, i64 {FALLBACK})
  %fbr = call ptr @jg_PyObject_Vectorcall(ptr %fb, ptr %args, i64 %nargs, ptr %kwnames)
  ret ptr %fbr
}}

define internal void @release(ptr %buf, i64 %from, i64 %to) alwaysinline {{
entry:
  br label %loop
loop:
  %k = phi i64 [ %from, %entry ], [ %k1, %body ]
  %more = icmp slt i64 %k, %to
  br i1 %more, label %body, label %done
body:
  %p = getelementptr inbounds ptr, ptr %buf, i64 %k
  %v = load ptr, ptr %p
  call void @jg_Py_DecRef(ptr %v)
  %k1 = add i64 %k, 1
  br label %loop
done:
  ret void
}}
"""


def compiled_address():
    """The address of the compiled entry (compiled, or loaded from the disk cache, on first use), or None
    when this interpreter's layout is not the one it reads.  A background compile calls it once its
    kernel is ready (jitgrad/backend.py), so that a process's first cached call does not compile it
    (~60 ms without the disk cache)."""
    with _lock:
        if "address" not in _state:
            found = layout()
            address = None
            if found is not None:
                engine.register_symbol("jg_PyLong_Type", id(int))
                for name in _API:
                    function = getattr(ctypes.pythonapi, name)
                    engine.register_symbol(f"jg_{name}", ctypes.cast(function, ctypes.c_void_p).value)
                try:
                    module = engine.compile_ir(_entry_ir(found["items"]), "jg_native_entry", speed_level=2,
                                               about={"kind": "native entry"})
                except Exception as e:      # calls keep the Python fast path; the reason stays here
                    _state["error"] = f"{type(e).__name__}: {e}"
                else:
                    _state["module"] = module
                    address = module.address(module.name)
            _state["address"] = address
    return _state["address"]


def make_entry(name, words, keep):
    """The native entry builtin running the plan `words` (ints: see the word indices above; object
    addresses among them must belong to objects in `keep`, which the builtin keeps alive), or None."""
    address = compiled_address()
    if address is None:
        return None
    found = layout()
    words = list(words)
    words[CODE_OFFSET], words[CELL_OFFSET] = found["code"], found["cell"]
    held = list(keep)
    return pywrapper.make_builtin(address, name, (np.array(words, dtype=np.int64), held), held,
                                  pywrapper.METH_FASTCALL | METH_KEYWORDS)

