"""Plain arrays in a trace: which arrays are traced, and how compiled code may still see them.

A plain ndarray object cannot be rebound, so an array that user code creates while being traced
(`np.zeros(n)`, `np.array([...])`, `np.arange`, `p.copy()`...) is *adopted*: it becomes a TracedArray
holding a constant, and every later write into it (`out[i] = f(x[i])`) is functionalized like a write
into any traced array.  Library code (numpy, scipy...) gets the same for its scratch buffers (np.zeros,
np.empty, np.full and the *_like family: `diagonal = np.zeros_like(x); diagonal[0] = ...`) while a traced
value depending on the inputs is live in an interpreted frame; its other arrays, and every array it
makes while no traced value is live, stay plain: library code working on constants runs as plain NumPy
(its type checks, compiled callees that keep references such as np.nditer, its speed).  Writing a
traced value into a plain array is refused unless it is constant (`check_plain_write`).  A constant
TracedArray handed to compiled code that has no rule runs that code on its concrete value
(`call_with_constants`; so does a traced integer or boolean array, its value guarded): a mutation by
the callee is recorded as a new constant, a result sharing its memory becomes an unlinked view (writes
through it are refused), and an array that compiled code may have kept a reference to is marked escaped
(later writes are refused).

Library code's other arrays are adopted lazily, by identity: a plain array made while tracing
(`remember_created`: results of creation functions and of compiled code on constants that own their
memory) takes its first traced write (`adopt_for_write`, also through a view of it) by entering the
trace's ShadowTable, `id(array) -> TracedArray` (the table keeps the array alive, so the id names it for
the whole trace).  The array object stays where it is (in variables, lists, attributes, views taken
earlier) and keeps NumPy's contents: every write into the TracedArray is copied into it, so every alias
sees CPython's values.  Every use of a plain array by the tracer resolves through the table
(`values.shadowed`: operands of operators, subscripts and attributes in the interpreter, arguments of
calls, `lift`/`const` in rules, the traced function's result); a plain view of an adopted array becomes
a linked view of its TracedArray (a gather of the entries it sees), or is refused where that relation is
not a strided view.  The slots of the interpreted frames holding the array are rebound to the
TracedArray too.  An array made while tracing that compiled code may keep a reference to (the result of
a compiled call on it is not plain data: np.nditer, an iterator, a memoryview) is escaped: a traced
write into it is refused, as the kept reference would not see it (`after_native_call`).
"""
import copy
import dataclasses

import numpy as np

from ..recording import context
from ..recording.context import _is_library_file
from .values import (
    IMPLEMENTATIONS, NOT_CONSTANT, TracedArray, ViewLink, builder, const, contains_traced, guard, make_view, rebind,
    reshape, shadowed, unwrap)
from .refusals import refuse

CONSTANT_OPS = frozenset({"const", "fill"})

# Kinds of dtype that are traced (object arrays and the like stay plain).
_TRACED_KINDS = frozenset("biufc")
# Results of compiled code that hold no reference to its arguments (besides ndarrays, checked apart).
_PLAIN_RESULTS = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray, type, np.dtype,
                  slice, range)


def is_constant(t):
    """Whether TracedArray `t`'s IR depends on no input of the trace."""
    seen, todo = set(), [t.ir]
    while todo:
        v = todo.pop()
        if v.op == "input":
            return False
        if id(v) not in seen:
            seen.add(id(v))
            todo.extend(v.args)
    return True


def constant_ir(array):
    """The IR constant for `array`: a `fill` when all its entries are equal, else a `const`."""
    flat = array.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return builder().fill(array.shape, array.dtype, flat[0].item())
    return const(array)


def in_user_code():
    """Whether the innermost interpreted frame is user code (not numpy/scipy/the standard library)."""
    ctx = context.current()
    return ctx is not None and bool(ctx.frames) and not _is_library_file(ctx.frames[-1].code.co_filename)


def traced_value_live():
    """Whether some interpreted frame holds (in its variables) a traced value depending on the inputs."""
    ctx = context.current()
    for frame in reversed(ctx.frames if ctx is not None else ()):
        leaves = _array_leaves(list(frame.local_variables().values()), [])
        if any(type(t) is TracedArray and not is_constant(t) for t in leaves):
            return True
    return False


def _array_leaves(x, found):
    """The ndarrays and TracedArrays in `x` (looking into tuples, lists and dict values)."""
    if type(x) is TracedArray or isinstance(x, np.ndarray):
        found.append(x)
    elif type(x) in (tuple, list):
        for e in x:
            _array_leaves(e, found)
    elif type(x) is dict:
        for e in x.values():
            _array_leaves(e, found)
    return found


def adopt_created(result, args, kwargs, scratch=False):
    """`result` of an array-creation call, adopted as a constant TracedArray when user code made it, or
    when it is a `scratch` buffer (np.zeros, np.empty_like...) that library code made while a traced
    value is live (see the module docstring).

    Only fresh arrays of traced dtypes are adopted: a result sharing memory with an argument (np.asarray
    of an existing array) stays what it was.
    """
    if type(result) is not np.ndarray or result.dtype.kind not in _TRACED_KINDS:
        return result
    sources = [unwrap(a) for a in _array_leaves((args, kwargs), [])]
    if any(isinstance(s, np.ndarray) and np.may_share_memory(result, s) for s in sources):
        return result
    if not (in_user_code() or scratch and traced_value_live()):
        return remember_created(result)
    return TracedArray(constant_ir(result), result)


def remember_created(result):
    """Note `result` (returned as is) as made while tracing when it is a plain ndarray of a traced dtype
    owning its memory, or a tuple/list of such: a traced write may adopt it later (`adopt_for_write`)."""
    ctx = context.current()
    if ctx is None:
        return result
    for array in (result if type(result) in (tuple, list) else (result,)):
        if type(array) is np.ndarray and array.base is None and array.flags.owndata and \
                array.dtype.kind in _TRACED_KINDS:
            ctx.created_arrays[id(array)] = array
    return result


class ShadowTable:
    """The plain ndarrays of one trace known by identity (see the module docstring): `entries`, id ->
    (array, the TracedArray standing for it) for the arrays adopted at a traced write and the plain
    views of them; `escaped`, id -> (array made while tracing, the compiled code that may keep it)."""

    def __init__(self):
        self.entries = {}
        self.escaped = {}

    def resolve(self, array, active=True):
        """The TracedArray standing for plain ndarray `array`, or `array` itself; a view not known yet
        is refused unless the trace of this table is the `active` one (it becomes IR of that trace)."""
        entry = self.entries.get(id(array))
        if entry is not None:
            return entry[1]
        base = array.base
        entry = self.entries.get(id(base)) if type(base) is np.ndarray else None
        if entry is None:
            return array
        if not active:
            refuse("a nested jit_grad reads a view of an array that the enclosing traced function wrote "
                   "traced values into; pass the array as an argument instead")
        view = _shadow_view(array, *entry)
        self.entries[id(array)] = (array, view)
        return view


def _table(ctx):
    if ctx.shadows is None:
        ctx.shadows = ShadowTable()
    return ctx.shadows


def _shadow_view(view, plain_base, traced_base):
    """The TracedArray of plain `view` of `plain_base`, linked to `traced_base` (which stands for it): a
    gather of the entries of `plain_base` that `view` sees, when they form a strided view in C order."""
    positions = _view_positions(view, plain_base)
    strides, start = _strides(positions) if positions is not None else (None, 0)
    if strides is None:
        refuse("this array is a view of an array that took traced writes (with another dtype, unaligned, "
               "or a reshape of a Fortran-ordered array) whose relation to it jitgrad cannot express; "
               "copy the view (v = v.copy()) before the writes, or index the array again after them")
    flat, spec, size = const(positions.reshape(-1)), (("array", 0),), plain_base.size

    def forward(base_ir):
        return reshape(builder().index(reshape(base_ir, (size,)), flat, spec=spec), view.shape)

    def backward(view_ir, base_ir):
        if np.unique(positions).size != positions.size:
            refuse("writing through a view that sees an entry twice (zero strides) is not supported")
        v = reshape(view_ir, (positions.size,))
        return reshape(builder().index_set(reshape(base_ir, (size,)), v, flat, spec=spec), base_ir.shape)

    def concrete(base_value):
        base_value = np.ascontiguousarray(base_value).reshape(-1)
        step = base_value.itemsize
        return np.lib.stride_tricks.as_strided(base_value[start:], view.shape, [s * step for s in strides])
    return make_view(forward(traced_base.ir), concrete(traced_base.value), traced_base,
                     ViewLink(forward, backward, concrete))


def _view_positions(view, base):
    """For each entry of `view`: the C-order flat index of the entry of `base` it sees (None when their
    dtypes differ, entries are not aligned, or `base` is neither C- nor Fortran-contiguous)."""
    if view.dtype != base.dtype or not (base.flags.c_contiguous or base.flags.f_contiguous):
        return None
    offset = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if offset % view.itemsize or any(s % view.itemsize for s in view.strides):
        return None
    memory = (offset + np.tensordot(view.strides, np.indices(view.shape), 1)) // view.itemsize
    order = "C" if base.flags.c_contiguous else "F"
    return np.ravel_multi_index(np.unravel_index(memory.astype(np.intp), base.shape, order=order), base.shape)


def _strides(positions):
    """(strides, start) with `positions[i] == start + sum(i_k * strides[k])`, or (None, start)."""
    if not positions.size:
        return [0] * positions.ndim, 0
    start = int(positions.flat[0])
    strides = [int(positions[(0,) * k + (1,)].flat[0]) - start if n > 1 else 0
               for k, n in enumerate(positions.shape)]
    affine = np.array_equal(start + np.tensordot(strides, np.indices(positions.shape), 1), positions)
    return (strides if affine else None), start


def shadowed_items(x):
    """`x` with the plain arrays standing for traced values (`values.shadowed`) replaced by them, also
    inside tuples (lists and dicts, which may be mutated, keep their identity)."""
    if type(x) is not tuple:
        return shadowed(x)
    ctx = context.current()
    if ctx is None or ctx.shadows is None:
        return x
    items = tuple(shadowed_items(e) for e in x)
    return x if all(a is b for a, b in zip(items, x)) else items


def resolve_arguments(args, kwargs):
    """The arguments of a call with plain arrays standing for traced values replaced (`shadowed_items`)."""
    if context.current().shadows is None:
        return args, kwargs
    return shadowed_items(tuple(args)), {k: shadowed_items(v) for k, v in kwargs.items()}


def resolve_tree(x):
    """`x` with the plain arrays standing for traced values replaced (`values.shadowed`), inside the
    containers of pytrees too (tuples, lists, dicts, namedtuples, dataclass instances; rebuilt when one
    changes): the traced function's result, the arguments of compiled code run on constants."""
    ctx = context.current()
    if ctx is None or ctx.shadows is None:
        return x
    if type(x) is dict:
        items = {k: resolve_tree(v) for k, v in x.items()}
        return x if all(items[k] is v for k, v in x.items()) else items
    dataclass = dataclasses.is_dataclass(x) and not isinstance(x, type)
    if not (dataclass or isinstance(x, (tuple, list))):
        return shadowed(x)
    names = [f.name for f in dataclasses.fields(x)] if dataclass else None
    old = [getattr(x, n) for n in names] if dataclass else x
    new = [resolve_tree(e) for e in old]
    if all(a is b for a, b in zip(new, old)):
        return x
    if not dataclass:
        return type(x)(new) if type(x) in (tuple, list) else type(x)(*new)       # a namedtuple
    rebuilt = copy.copy(x)
    for name, value in zip(names, new):
        object.__setattr__(rebuilt, name, value)
    return rebuilt


def _traced_leaves(values):
    return [t for t in map(shadowed, _array_leaves(values, [])) if type(t) is TracedArray]


def adopt_for_write(target, what, *values):
    """Before writing `values` into plain ndarray `target`: the TracedArray standing for it, when it has
    one (the write goes there, whatever is written); None when no traced value among `values` depends on
    the inputs (write natively); else the TracedArray of `target` once the array made while tracing that
    it is (or is a view of) is adopted (see the module docstring); else refuse."""
    traced = shadowed(target)
    if traced is not target:
        return traced
    if not contains_traced(values) or all(is_constant(t) for t in _traced_leaves(values)):
        return None
    _adopt(target if target.base is None else target.base, what)
    return shadowed(target)


def _adopt(array, what):
    """Enter plain `array`, made while tracing, in the shadow table as a constant TracedArray."""
    ctx = context.current()
    if type(array) is not np.ndarray or ctx.created_arrays.get(id(array)) is not array:
        refuse_plain_write(what)
    table = _table(ctx)
    if id(array) in table.escaped:
        refuse(f"{what} would write a traced value into a plain NumPy array made while tracing that is "
               f"also held elsewhere: it was handed to compiled code ({table.escaped[id(array)][1]}) that "
               "may keep a reference to it, which would not see the write; copy the array in your "
               "function and write into the copy")
    adopted = TracedArray(constant_ir(array), array.copy())
    adopted.plain = array
    table.entries[id(array)] = (array, adopted)
    del ctx.created_arrays[id(array)]
    for place, key in _interpreted_slots(ctx, array):
        if key is None:
            place.cell_contents = adopted
        else:
            place[key] = adopted


def after_native_call(fn, args, kwargs, result):
    """`result` of compiled code `fn` run on plain arguments, remembered (`remember_created`); arrays
    made while tracing among the arguments (or viewed by them) that the result may hold, as it is not
    plain data (np.nditer, an iterator, a memoryview...), are escaped: traced writes into them refuse."""
    ctx = context.current()
    if ctx is not None and not _is_plain_result(result):
        for array in _array_leaves((args, kwargs), []):
            owner = array.base if type(array) is np.ndarray and array.base is not None else array
            if ctx.created_arrays.get(id(owner)) is owner:
                _table(ctx).escaped[id(owner)] = (owner, _callee_name(fn))
    return remember_created(result)


def _callee_name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


def plain_iterator(array):
    """iter() of plain ndarray `array`; for an array made while tracing, every step reads its current
    value, so a traced write made while the loop runs is seen (as NumPy's iterator sees it)."""
    ctx = context.current()
    owner = array if array.base is None else array.base
    if array.ndim == 0 or ctx is None or ctx.created_arrays.get(id(owner)) is not owner:
        return iter(array)
    return (shadowed(array)[i] for i in range(len(array)))


def _interpreted_slots(ctx, target):
    """(list, index) of every fast-variable and stack slot of the active interpreted frames holding
    `target`, and (cell, None) of every cell made while tracing that holds it."""
    slots, cells = [], {}
    for frame in ctx.frames:
        for held in (frame.fast, frame.stack):
            slots.extend((held, i) for i, value in enumerate(held) if value is target)
        for cell in frame.cells:
            if cell is not None and ctx.is_local(cell) and _cell_holds(cell, target):
                cells[id(cell)] = cell
    return slots + [(cell, None) for cell in cells.values()]


def _cell_holds(cell, target):
    try:
        return cell.cell_contents is target
    except ValueError:                   # an empty cell
        return False


def check_plain_write(what, *values):
    """Before writing `values` into a plain ndarray natively: refuse unless every traced value among them
    is constant (a traced value's derivative would be lost in a plain array, made by library code)."""
    if not all(is_constant(t) for t in _traced_leaves(values)):
        refuse_plain_write(what)


def refuse_plain_write(what):
    """Refuse writing a traced value into a plain ndarray (one made by library code)."""
    refuse(f"{what} would write a traced value into a plain NumPy array made outside the traced code "
           "(by a library function, or natively); its derivative would be lost. Copy it first in your "
           "function (a = np.array(a)), or create it there (np.zeros, np.empty, np.zeros_like, ...)")


def call_with_constants(fn, args, kwargs):
    """Run compiled `fn` on the concrete values of the constant TracedArrays among its arguments.

    Returns NOT_CONSTANT (calling nothing) when a traced argument depends on the trace's inputs.
    """
    args, kwargs = resolve_tree(args), resolve_tree(kwargs)
    traced = {id(t): t for t in _array_leaves((args, kwargs), []) if type(t) is TracedArray}
    varying = [t for t in traced.values() if not is_constant(t)]
    if not traced or any(np.asarray(t.value).dtype.kind not in "biu" for t in varying):
        return NOT_CONSTANT
    for t in varying:                       # integers and booleans carry no derivative: guarded values
        _guard_value(t, f"a traced integer array passed to {_callee_name(fn)}")
    before = {key: t.value.copy() for key, t in traced.items() if isinstance(t.value, np.ndarray)}
    result = fn(*unwrap(args), **unwrap(kwargs))
    for key, old in before.items():
        t = traced[key]
        if not np.array_equal(t.value, old, equal_nan=True):     # the callee wrote into it
            rebind(t, constant_ir(t.value), t.value)
    if not _is_plain_result(result):
        for t in traced.values():
            t.escaped = _callee_name(fn)
        return result
    return _as_views(result, list(traced.values()))


def _guard_value(t, why):
    """Guard that TracedArray `t` keeps its concrete value."""
    b, value = builder(), np.asarray(t.value)
    differs = b.not_equal(t.ir, const(value))
    guard(b.sum(differs, axis=tuple(range(value.ndim)), keepdims=False), 0, why)


def _is_plain_result(result):
    if type(result) in (tuple, list):
        return all(_is_plain_result(r) for r in result)
    return isinstance(result, _PLAIN_RESULTS)


def _as_views(result, sources):
    """`result` with every ndarray sharing memory with a source's value made an unlinked view of it."""
    if type(result) in (tuple, list):
        return type(result)(_as_views(r, sources) for r in result)
    if isinstance(result, np.ndarray):
        for s in sources:
            if isinstance(s.value, np.ndarray) and np.may_share_memory(result, s.value):
                if result.dtype.kind not in _TRACED_KINDS:
                    refuse(f"compiled code returned a {result.dtype} view of a traced array; writes "
                           "through it could not be tracked: copy the array first")
                return make_view(const(result), result, s)
    return result


def constant_method(t, name):
    """A constant TracedArray's ndarray method that jitgrad has no rule for, run on its concrete value
    (as `call_with_constants` runs compiled code), or a plain attribute of it; NOT_CONSTANT when `t`
    depends on the trace's inputs or the attribute could write into it (`.flat`, `.ctypes`, `.base`...).
    A Python number's method (`t.is_integer()` of a float a loop carries: rolling.py traces floats that
    change between iterations) answers on its value, and the loops being watched are not rolled (the
    answer is a Python-level decision their fast-forward would skip)."""
    if type(t.value) in (float, int, complex) and is_constant(t):
        ctx = context.current()
        if ctx is not None and ctx.loops is not None:
            ctx.loops.effect(f"{type(t.value).__name__}.{name} of a number the loop computes")
        return getattr(t.value, name)
    if not isinstance(t.value, np.ndarray) or not is_constant(t):
        return NOT_CONSTANT
    method = getattr(np.ndarray, name)
    if not callable(method):
        value = getattr(t.value, name)
        return value if _is_plain_result(value) and not isinstance(value, np.ndarray) else NOT_CONSTANT

    def run(*args, **kwargs):
        result = call_with_constants(method, (t,) + args, kwargs)
        if result is NOT_CONSTANT:
            refuse(f"'ndarray.{name}' of a constant array received a traced value; this is not "
                   "supported: register a rule with jitgrad.register or avoid it")
        return result
    run.__name__ = name
    return run


IMPLEMENTATIONS.update(is_constant=is_constant, constant_method=constant_method)
