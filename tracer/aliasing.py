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
(`call_with_constants`): a mutation by the callee is recorded as a new constant, a result sharing its
memory becomes an unlinked view (writes through it are refused), and an array that compiled code may
have kept a reference to is marked escaped (later writes are refused).

Library code's other arrays are adopted lazily: a plain array made while tracing (`remember_created`:
results of creation functions and of compiled code on constants that own their memory) becomes a
constant TracedArray at the first traced write into it (`adopt_for_write`), provided every reference to
it can be rebound: `sys.getrefcount` must be explained exactly by the variable and stack slots of the
interpreted frames (and their cells made while tracing), which are rebound to the TracedArray, and by
the tracer's own Python frames, which let go of it: the local variables of its handling of the current
instruction, and the argument tuples, lists and dicts of the calls in progress held by nothing else (so
an array passed to a helper function that fills it is adopted too).  Any other holder (a view taken
earlier, a container, an object's attribute, compiled code keeping it such as np.nditer, a generator)
makes it unsound, and the write is refused as before.
"""
import os
import sys

import numpy as np

from . import context
from .context import _is_library_file
from .values import TracedArray, builder, const, make_view, rebind, refuse, unwrap
from .version import F_LOCALS_IS_SNAPSHOT

CONSTANT_OPS = frozenset({"const", "fill"})
NOT_CONSTANT = object()       # call_with_constants: a traced argument depends on the inputs
# Kinds of dtype that are traced (object arrays and the like stay plain).
_TRACED_KINDS = frozenset("biufc")
_PLAIN_RESULTS = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray)


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


def _refcount(x):
    return sys.getrefcount(x)


_REFCOUNT_OVERHEAD = _refcount(object())      # what calling `_refcount` itself adds
_TRACER_DIR = os.path.dirname(os.path.abspath(__file__))


def adopt_for_write(target, what, *values):
    """Before writing `values` into plain ndarray `target`: None when no traced value among them depends
    on the inputs (write natively); else the constant TracedArray that `target` becomes, every reference
    to it in the interpreted frames rebound to it, when that is sound (see the module docstring); else
    refuse.  Call it from the interpreter's handling of an instruction, holding `target` only in local
    variables that are not used after the write."""
    references = _refcount(target) - _REFCOUNT_OVERHEAD - 1       # not this function's parameter
    traced = [t for t in _array_leaves(values, []) if type(t) is TracedArray]
    if all(is_constant(t) for t in traced):
        return None
    ctx = context.current()
    if ctx.created_arrays.get(id(target)) is not target:
        refuse_plain_write(what)
    held_by_tracer = _tracer_references(sys._getframe(1), target)
    slots = _interpreted_slots(ctx, target)
    if held_by_tracer is None or references != held_by_tracer + len(slots):
        refuse(f"{what} would write a traced value into a plain NumPy array made while tracing that is "
               "also held elsewhere (a view of it taken earlier, a container or attribute, compiled code "
               "keeping it, a generator or class body), so the write could not reach every use of it; "
               "copy the array in your function and write into the copy")
    adopted = TracedArray(constant_ir(target), target)
    for place, key in slots:
        if key is None:
            place.cell_contents = adopted
        else:
            place[key] = adopted
    del ctx.created_arrays[id(target)]
    return adopted


_ARGUMENT_CONTAINERS = (tuple, list, dict)


def _forwarding_codes():
    """The interpreter's run loop, and the code of the tracer's functions that pass a call's arguments
    on to the interpreted frame it runs (and use them no more once it returns)."""
    from .interpreter import Interpreter as I
    run_loop = I._execute.__code__
    return run_loop, {run_loop} | {f.__code__ for f in (I.resume, I.run_frame, I.call, I.call_python,
                                                         I.op_CALL, I.op_CALL_KW, I.op_CALL_FUNCTION_EX)}


def _tracer_frames(frame):
    """(code, local variables, whether below the run loop) of the Python frames from `frame` outwards
    that hold references the tracer lets go of: the frames handling the current instruction (above the
    innermost run loop: all of them the tracer's, else None), then the frames forwarding calls."""
    run_loop, forwarding = _forwarding_codes()
    found, below = [], False
    while frame is not None:
        code = frame.f_code
        below = below or code is run_loop
        if below and code not in forwarding:
            break
        if not below and os.path.dirname(os.path.abspath(code.co_filename)) != _TRACER_DIR:
            return None
        found.append((code, frame.f_locals, below))
        frame = frame.f_back
    return found if below else None


def _tracer_references(frame, target):
    """How many references to `target` the tracer's frames from `frame` outwards hold (`_tracer_frames`):
    their local variables, and the calls' argument tuples, lists and dicts held by nothing but local
    variables of the forwarding frames; None when a frame handling the instruction is not the tracer's."""
    frames = _tracer_frames(frame)
    if frames is None:
        return None
    direct, containers, holders = 0, {}, {}
    for code, variables, below in frames:
        shared = set(code.co_cellvars) | set(code.co_freevars)
        for name in code.co_varnames:
            value = variables.get(name) if name not in shared else None
            if value is target:
                direct += 1
            elif below and type(value) in _ARGUMENT_CONTAINERS and _occurrences(value, target):
                containers[id(value)] = value
                holders[id(value)] = holders.get(id(value), 0) + 1
        value = None
    if F_LOCALS_IS_SNAPSHOT:             # each frame's f_locals dict holds the locals once more
        for _, variables, _ in frames:
            for key in map(id, variables.values()):
                if key in holders:
                    holders[key] += 1
    return direct + sum(_occurrences(containers[key], target) for key in list(containers)
                        if _held_only_by(containers[key], holders[key]))


def _occurrences(container, target):
    return sum(1 for item in (container.values() if type(container) is dict else container) if item is target)


def _held_only_by(container, holders):
    """Whether `holders` references (and `_tracer_references`' own one) are all that hold `container`."""
    return _refcount(container) - _REFCOUNT_OVERHEAD - 2 == holders


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
    traced = [t for t in _array_leaves(values, []) if type(t) is TracedArray]
    if not all(is_constant(t) for t in traced):
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
    traced = {id(t): t for t in _array_leaves((args, kwargs), []) if type(t) is TracedArray}
    if not traced or not all(is_constant(t) for t in traced.values()):
        return NOT_CONSTANT
    before = {key: t.value.copy() for key, t in traced.items() if isinstance(t.value, np.ndarray)}
    result = fn(*unwrap(args), **unwrap(kwargs))
    for key, old in before.items():
        t = traced[key]
        if not np.array_equal(t.value, old, equal_nan=True):     # the callee wrote into it
            rebind(t, constant_ir(t.value), t.value)
    if not _is_plain_result(result):
        for t in traced.values():
            t.escaped = getattr(fn, "__qualname__", None) or repr(fn)
        return result
    return _as_views(result, list(traced.values()))


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
    depends on the trace's inputs or the attribute could write into it (`.flat`, `.ctypes`, `.base`...)."""
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
