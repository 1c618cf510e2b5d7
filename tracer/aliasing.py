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
"""
import numpy as np

from . import context
from .context import _is_library_file
from .values import TracedArray, builder, const, make_view, rebind, refuse, unwrap

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
    if not (in_user_code() or scratch and traced_value_live()):
        return result
    sources = [unwrap(a) for a in _array_leaves((args, kwargs), [])]
    if any(isinstance(s, np.ndarray) and np.may_share_memory(result, s) for s in sources):
        return result
    return TracedArray(constant_ir(result), result)


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
