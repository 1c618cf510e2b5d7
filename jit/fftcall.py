"""The Fourier transforms (fft, rfft, irfft) in kernels: native calls of the inner loops of numpy.fft's own
gufuncs (numpy/fft/_pocketfft_umath: `fft`, `ifft`, `rfft_n_even`, `rfft_n_odd`, `irfft`, each a loop
`void loop(char **args, npy_intp *dims, npy_intp *steps, void *data)` over `(n),()->(m)`), so a
transform costs pocketfft's own work, with no Python and no copy in between: the host call it replaces
spent ~10 us per transform in ctypes, numpy.fft's Python wrapper and copies.

The loops are NumPy's, read from the gufunc objects (`functions`/`data` of PyUFuncObject, whose layout
`_read_loops` verifies on the objects themselves: name, arity, core signature, type table); the loop
ABI is the public gufunc one (dims: outer count, core lengths; steps: outer ones, then core ones).
They are called as NumPy calls them (the loop NumPy's type resolution picks, the normalization factor
computed as numpy.fft computes it, the same outer count and strides), so a complex transform equals the
reference evaluation bit for bit.  A real operand of `fft` (NumPy casts it to complex, then runs the
complex transform) is transformed by the real loop instead (about half the work) and the upper half of
the spectrum filled from the lower one by Hermitian symmetry; a complex operand's transform whose only
readers take real parts (np.real(np.fft.ifft(z))) is irfft of the Hermitian part of z, written into the
real slots: both equal to the reference to rounding.
irfft of a real operand, and transforms NumPy computes in a higher precision than their operand's,
stay host calls (`native`).

Errors: pocketfft's loops can only fail to allocate (plans, buffers); NumPy's wrapper around them then
sets Python's error indicator (taking the GIL), and the call that ran the kernel raises (CPython
refuses a result returned with an error set: SystemError from the MemoryError).  The symbols are
registered by name (`symbol`), so machine code in the disk cache links in another process
(kernel.restore_kernel re-registers the names a kernel's form lists).
"""
import ctypes
import re
import types

import numpy as np

from . import complexops, engine
from .llvmtext import literal, reg_type

# gufunc name -> its type table (3 NumPy type numbers per loop: double, float, longdouble loops)
_UFUNCS = {"fft": "Dd->D", "ifft": "Dd->D", "rfft_n_even": "dd->D", "rfft_n_odd": "dd->D", "irfft": "Dd->d"}
_LOOP_INDEX = {np.dtype(np.float64): 0, np.dtype(np.complex128): 0, np.dtype(np.float32): 1,
               np.dtype(np.complex64): 1}
_NAMES = re.compile(r"@(jg_pocketfft_\w+)")
_state = {}
# PyUFuncObject (NumPy 2.x, 64-bit): nin, nout, nargs (int) at 16, 20, 24; functions, data at 32, 40;
# ntypes (int) at 48; name, types (char *) at 56, 64
_NIN, _NOUT, _NARGS, _FUNCTIONS, _DATA, _NTYPES, _NAME, _TYPES = 16, 20, 24, 32, 40, 48, 56, 64


def _type_numbers(signature, precision):
    """NumPy type numbers of `signature` ('Dd->D') with its letters moved to `precision` (0, 1, 2)."""
    letters = {"d": "dfg", "D": "DFG"}
    return [np.dtype(letters[c][precision]).num for c in signature.replace("->", "")]


def _read_loops():
    """{symbol name: address} of every loop and direction flag, or None if a gufunc's layout differs."""
    try:
        from numpy.fft import _pocketfft_umath as umath
    except ImportError:
        return None
    found = {}
    read_int = lambda address: ctypes.c_int.from_address(address).value         # noqa: E731
    read_ptr = lambda address: ctypes.c_void_p.from_address(address).value      # noqa: E731
    for name, signature in _UFUNCS.items():
        ufunc = getattr(umath, name, None)
        if (not isinstance(ufunc, np.ufunc) or (ufunc.nin, ufunc.nout) != (2, 1)
                or ufunc.signature not in ("(n),()->(m)", "(m),()->(n)")):
            return None
        base = id(ufunc)
        types = [t for p in range(3) for t in _type_numbers(signature, p)]
        if ((read_int(base + _NIN), read_int(base + _NOUT), read_int(base + _NARGS), read_int(base + _NTYPES))
                != (2, 1, 3, 3) or ctypes.string_at(read_ptr(base + _NAME)) != name.encode()
                or list(ctypes.string_at(read_ptr(base + _TYPES), 9)) != types):
            return None
        functions, data = read_ptr(base + _FUNCTIONS), read_ptr(base + _DATA)
        for precision in (0, 1):
            found[f"jg_pocketfft_{name}_{precision}"] = read_ptr(functions + 8 * precision)
        if name in ("fft", "ifft"):     # the loop's data: a pointer to pocketfft's direction flag
            found[f"jg_pocketfft_{name}_direction"] = read_ptr(data)
    return found if all(found.values()) else None


def available():
    """Whether numpy.fft's loops were found (checked once per process)."""
    if "loops" not in _state:
        _state["loops"] = _read_loops()
    return _state["loops"] is not None


def symbol(name):
    """`@name` of loop or flag `name` (jg_pocketfft_...), registered with the engine on first use."""
    registered = _state.setdefault("registered", set())
    if name not in registered:
        engine.register_symbol(name, _state["loops"][name])
        registered.add(name)
    return f"@{name}"


def symbols_in(text):
    """The pocketfft symbol names module text `text` uses (kernel forms list them for the disk cache)."""
    return sorted(set(_NAMES.findall(text)))


def native(node):
    """Whether transform `node` runs as a native loop call (else it is a host call): its operand is
    complex for irfft, and the loop NumPy picks computes in the operand's precision (NumPy computes a
    complex64 transform whose factor is the Python int 1, and any float32 operand's fft, in double)."""
    x = node.args[0]
    if not (complexops.NATIVE and available() and x.dtype in _LOOP_INDEX and node.dtype in _LOOP_INDEX):
        return False
    if node.op == "irfft" and x.dtype.kind != "c":
        return False
    name, forward, _ = _loop_of(node)
    if node.op == "fft" and x.dtype.kind == "f":     # numpy.fft's loop is the complex one
        name = "fft" if forward else "ifft"
    factor = int if _effective_norm(node.params["norm"], forward) == "backward" else complexops.PART.get(
        node.dtype, node.dtype)
    resolved = _ufunc(name).resolve_dtypes((x.dtype, factor, node.dtype))
    return complexops.PART.get(resolved[0], resolved[0]) == complexops.PART.get(x.dtype, x.dtype)


def _ufunc(name):
    from numpy.fft import _pocketfft_umath as umath
    return getattr(umath, name)


def _effective_norm(norm, forward):
    return norm if forward else {"backward": "forward", "forward": "backward"}.get(norm, norm)


def _factor(norm, n, real_dtype, forward):
    """numpy.fft's normalization factor (numpy/fft/_pocketfft.py _raw_fft): inverse transforms read
    `norm` the other way round; computed in the transform's real dtype."""
    norm = _effective_norm(norm, forward)
    if norm == "ortho":
        return np.reciprocal(np.sqrt(n, dtype=real_dtype))
    return real_dtype.type(1) if norm == "backward" else np.reciprocal(n, dtype=real_dtype)


def _loop_of(node):
    """(gufunc name, whether it runs forward, the number of entries it writes along the axis)."""
    x, axis = node.args[0], node.params["axis"]
    n = node.params["n"] if node.op == "irfft" else x.shape[axis]
    real_loop = "rfft_n_even" if n % 2 == 0 else "rfft_n_odd"
    if node.op == "irfft":
        return "irfft", False, n
    if node.op == "rfft":
        return real_loop, True, n // 2 + 1
    forward = not node.params["inverse"]
    if x.dtype.kind == "f":
        return real_loop, forward, n // 2 + 1
    return ("fft" if forward else "ifft"), forward, n


def emit_transform(em, node):
    """Call the pocketfft loop of transform `node` (MATERIALIZE rule of fft, rfft and irfft): one call
    over every transform when the axis is the last one (NumPy's outer loop), else one call per index of
    the leading axes, over the trailing ones; then the upper half of a real operand's fft.  A complex
    operand's fft read only through `real` is the real transform of its Hermitian half instead."""
    if node.size == 0:
        return
    x, axis = node.args[0], node.params["axis"]
    name, forward, written = _loop_of(node)
    n = node.params["n"] if node.op == "irfft" else x.shape[axis]
    x_loc = em.plan.loc[id(x)]
    if _only_real_parts_read(em, node):
        x, x_loc = _hermitian_half(em, x, axis, forward)
        name, written = "irfft", n
    _call_loop(em, node, name, forward, written, n, x, x_loc)
    if node.op == "fft" and x.dtype.kind == "f":
        _hermitian_completion(em, node, n, written, forward)


def _call_loop(em, node, name, forward, written, n, x, x_loc):
    f, axis = em.f, node.params["axis"]
    real = complexops.PART.get(node.dtype, node.dtype)
    loop = symbol(f"jg_pocketfft_{name}_{_LOOP_INDEX[x.dtype]}")
    em.declare(f"declare void {loop}(ptr, ptr, ptr, ptr)")
    data = "null"
    if name in ("fft", "ifft"):
        data = symbol(f"jg_pocketfft_{name}_direction")
        em.declare(f"{data} = external global i8")
    factor = f.alloca(reg_type(real))
    f.stmt(f"store {reg_type(real)} {literal(_factor(node.params['norm'], n, real, forward), real)}, ptr {factor}")
    outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis + 1:]))
    i_item, o_item, i_len, o_len = x.dtype.itemsize, node.dtype.itemsize, x.shape[axis], node.shape[axis]
    if inner == 1:      # [rows, steps between rows, calls]
        count, outer_steps, calls = outer, (i_len * i_item, o_len * o_item), 1
    else:
        count, outer_steps, calls = inner, (i_item, o_item), outer
    dims = _i64_array(f, [count, i_len, written])
    steps = _i64_array(f, [outer_steps[0], 0, outer_steps[1], inner * i_item, inner * o_item])
    argv = f.alloca("[3 x ptr]")
    x_base, out_base = em.pointer(x_loc), em.pointer(em.plan.loc[id(node)])

    def call(idx):
        k = idx[0] if idx else 0
        pointers = [_offset(f, x_base, k, i_len * inner * i_item), factor,
                    _offset(f, out_base, k, o_len * inner * o_item)]
        for j, p in enumerate(pointers):
            f.stmt(f"store ptr {p}, ptr {f.emit(f'getelementptr inbounds ptr, ptr {argv}, i64 {j}')}")
        f.stmt(f"call void {loop}(ptr {argv}, ptr {dims}, ptr {steps}, ptr {data})")
    em.loops([calls] if calls > 1 else [], call)


def _only_real_parts_read(em, node):
    """Whether `node` is a complex operand's fft whose every user is `real` (np.real(np.fft.ifft(...))):
    then only the real parts are computed, by a real transform (`_hermitian_half`), into the real
    slots of node's buffer (its imaginary slots are never read)."""
    users = em.plan.users.get(id(node), ())
    return (node.op == "fft" and node.args[0].dtype.kind == "c" and id(node) not in em.plan.out_ids
            and users and all(u.op == "real" for u in users))


def _hermitian_half(em, x, axis, forward):
    """(shape and dtype, location) of a workspace buffer holding the first n//2+1 entries along `axis` of
    the Hermitian part H x = (x_k + conj(x_(n-k) mod n)) / 2 (its conjugate when `forward`): irfft of it
    with the transform's factor is the real part of x's inverse (forward) transform, as Re T(x) = T(H x)
    and a forward transform of a Hermitian array is the unnormalized inverse of its conjugate."""
    f, n, ty = em.f, x.shape[axis], reg_type(x.dtype)
    shape = x.shape[:axis] + (n // 2 + 1,) + x.shape[axis + 1:]
    pt = complexops.part_type(ty)
    loc = ("ptr", em.scratch(int(np.prod(shape)) * x.dtype.itemsize))

    def put(idx):
        k, src = idx[axis], list(idx)
        if isinstance(k, int):
            src[axis] = (n - k) % n
        else:
            back = f.emit(f"sub nsw i64 {n}, {k}")
            src[axis] = f.emit(f"select i1 {f.emit(f'icmp eq i64 {k}, 0')}, i64 0, i64 {back}")
        (a, b), (c, d) = complexops.parts(f, em.load(x, idx), ty), complexops.parts(f, em.load(x, src), ty)
        half = lambda v: f.emit(f"fmul {pt} {v}, 0.5")       # noqa: E731 - local shorthand
        im = f.emit(f"fsub {pt} {d}, {b}") if forward else f.emit(f"fsub {pt} {b}, {d}")
        em.store_at(loc, shape, x.dtype, idx, complexops.pack(f, half(f.emit(f"fadd {pt} {a}, {c}")), half(im), ty))
    em.loops(shape, put)
    return types.SimpleNamespace(shape=shape, dtype=x.dtype), loc


def _i64_array(f, values):
    """A stack array of the i64 `values`."""
    array = f.alloca(f"[{len(values)} x i64]")
    for j, v in enumerate(values):
        f.stmt(f"store i64 {v}, ptr {f.emit(f'getelementptr inbounds i64, ptr {array}, i64 {j}')}")
    return array


def _offset(f, base, k, nbytes):
    """base + k * nbytes (k an int or an i64 name)."""
    if k == 0:
        return base
    return f.emit(f"getelementptr inbounds i8, ptr {base}, i64 {f.emit(f'mul nsw i64 {k}, {nbytes}')}")


def _hermitian_completion(em, node, n, written, forward):
    """The entries `written`..n-1 along the axis of the fft of a real operand, from the real loop's
    entries 0..written-1 R_k: F_k = conj(R_(n-k)) forward; for the inverse transform (the real loop
    computed the conjugate of the inverse) F_k = R_(n-k) above and conj(R_k) below."""
    f, axis, ty = em.f, node.params["axis"], reg_type(node.dtype)
    conj = complexops.SCALAR["conj"]

    def mirror(idx):
        j = idx[axis]
        src, dst = list(idx), list(idx)
        src[axis] = n - written - j if isinstance(j, int) else f.emit(f"sub nsw i64 {n - written}, {j}")
        dst[axis] = written + j if isinstance(j, int) else f.emit(f"add nsw i64 {written}, {j}")
        v = em.load(node, src)
        em.store(node, dst, conj(f, [v], ty) if forward else v)
    if n > written:
        em.loops(node.shape[:axis] + (n - written,) + node.shape[axis + 1:], mirror)
    if not forward:
        em.loops(node.shape[:axis] + (written,) + node.shape[axis + 1:],
                 lambda idx: em.store(node, idx, conj(f, [em.load(node, idx)], ty)))


MATERIALIZE = {op: emit_transform for op in ("fft", "rfft", "irfft")}
