"""The core of the traced value type: TracedArray, its operators and the helpers every rule shares.

A TracedArray pairs an IR Value (`.ir`) with the concrete result CPython+NumPy produced (`.value`).
Helpers here lift operands to IR Values (Python scalars are NumPy "weak" scalars, NEP 50), wrap an IR
Value with its concrete result after checking that shape and dtype agree (`make`), record guards, and
rebind an array written in place (`rebind`, which refuses writes that aliasing would make unsound).
TracedArray is complete here; its methods whose work needs the modules above this one (the array API,
indexing, `@`, aliasing queries, Python's float errors) call through `IMPLEMENTATIONS`, which those
modules fill when they are imported (`tracer/arrays/__init__.py` imports them all and checks it).
"""
import dataclasses
import operator
import types
import weakref

import numpy as np

from ...ir.ops import COMPLEX_DIFFERENTIABLE
from ..recording import audit, context, hooks
from .refusals import STALE, finished_trace_error, refuse

# Python-float operators that raise where NumPy gives inf or nan (see pyerrors.guard_python_arithmetic)
PYTHON_RAISING = (operator.truediv, operator.floordiv, operator.mod, operator.pow)
# name -> function, entered by the modules of this layer above this one at their import: the ndarray
# methods by their name (array_api, reorder, sort_scan, contractions), and the helpers in NEEDED.
IMPLEMENTATIONS = {}
NOT_CONSTANT = object()       # aliasing.call_with_constants: a traced argument depends on the inputs
NDARRAY_METHODS = ("sum", "prod", "mean", "var", "std", "max", "min", "all", "any", "argmax", "argmin",
                   "cumsum", "reshape", "transpose", "swapaxes", "ravel", "flatten", "squeeze", "copy",
                   "astype", "item", "tolist", "clip", "round", "take", "fill", "repeat", "diagonal",
                   "trace", "sort", "partition", "put", "nonzero", "compress", "cumprod", "argsort", "dot",
                   "view", "searchsorted")
NEEDED = NDARRAY_METHODS + ("getitem", "setitem", "matmul", "matrix_transpose", "flat", "stack_nested", "is_constant",
                            "constant_method", "pin", "pin_values", "guard_python_arithmetic")

_WEAK_TYPES = (bool, int, float, complex)
# Ops whose Python-bool operands stay bool (elsewhere Python computes True + True == 2).
_KEEPS_BOOL = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
               "logical_and", "logical_or", "logical_not", "where"}


def builder():
    """The Builder of the active trace."""
    ctx = context.current()
    if ctx is None:
        raise finished_trace_error()
    return ctx.builder


def dtype_of(concrete):
    """The dtype NumPy gives `concrete` (a Python scalar, NumPy scalar or array)."""
    dtype = getattr(concrete, "dtype", None)
    return dtype if dtype is not None else np.asarray(concrete).dtype


def concrete_of(x):
    """The concrete value of a traced value, or `x` itself."""
    return x.value if type(x) is TracedArray else x


def unwrap(x):
    """`x` with every TracedArray (also inside tuples, lists and dicts) replaced by its concrete value."""
    t = type(x)
    if t is TracedArray:
        return x.value
    if t is list or t is tuple:
        return t(unwrap(e) for e in x)
    if t is dict:
        return {k: unwrap(v) for k, v in x.items()}
    return x


def contains_traced(args, kwargs=None, _depth=0):
    """Whether a TracedArray (or a plain array standing for one: `shadowed`) occurs in `args`/`kwargs`
    (looking into tuples, lists, dicts, sets and dataclass instances)."""
    for a in args:
        if _holds_traced(a, _depth):
            return True
    return bool(kwargs) and any(_holds_traced(v, _depth) for v in kwargs.values())


def _holds_traced(x, depth):
    if type(x) is TracedArray:
        return True
    if type(x) is np.ndarray:
        return shadowed(x) is not x
    if depth > 32:
        return False
    if isinstance(x, (tuple, list, set, frozenset)):
        return contains_traced(x, None, depth + 1)
    if isinstance(x, dict):
        return contains_traced(x.values(), None, depth + 1)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return contains_traced(_field_values(x), None, depth + 1)
    return False


def _field_values(obj):
    """The values of dataclass instance `obj`'s fields that can be read now: one being constructed may
    have fields not set yet, whose descriptors raise anything (astropy's Parameter: KeyError)."""
    found = []
    for f in dataclasses.fields(obj):
        try:
            found.append(getattr(obj, f.name))
        except Exception:       # noqa: BLE001 - an unset field holds nothing traced
            continue
    return found


def make(ir_value, concrete, base=None):
    """Wrap `ir_value` with its `concrete` result, checking that their shapes and dtypes agree.

    A concrete Python int result is static (ints are keyed by value): it is guarded and returned plain.
    `base` is the TracedArray whose memory the concrete result is a view of (None if none).
    """
    if type(concrete) is int:
        guard(ir_value, concrete, "integer result")
        return concrete
    shape, dtype = np.shape(concrete), dtype_of(concrete)
    if ir_value.shape != shape or ir_value.dtype != dtype:
        refuse(f"internal: the IR for this operation gives {ir_value.dtype}{list(ir_value.shape)} but "
               f"NumPy gives {dtype}{list(shape)}; jitgrad has no exact translation for it "
               "(please report; register a rule with jitgrad.register to work around)")
    _check_complex_derivative(ir_value)
    return TracedArray(ir_value, concrete, base)


def _check_complex_derivative(v):
    """Refuse, at the user's line, a float or complex result of an op without complex derivative rules
    (sign, maximum, prod...) applied to complex values that depend on the inputs.  (The AD transform
    refuses them too, without a location: this catches the direct uses early.)"""
    if v.op in COMPLEX_DIFFERENTIABLE or v.dtype.kind not in "fc" or not (
            v.dtype.kind == "c" or any(a.dtype.kind == "c" for a in v.args)):
        return
    if not IMPLEMENTATIONS["is_constant"](types.SimpleNamespace(ir=v)):
        refuse(f"'{v.op}' of complex values has no derivative rule in jitgrad (complex intermediates "
               "support arithmetic, exp/log/sqrt/trigonometric functions, abs, real/imag/conj, sums, "
               "products, indexing and numpy.fft)")


class ViewLink:
    """How a view is derived from its base: `forward(base_ir)` is the view's IR, `backward(view_ir,
    base_ir)` the base's IR after the view became `view_ir`, `concrete(base_value)` the NumPy view."""

    __slots__ = ("forward", "backward", "concrete")

    def __init__(self, forward, backward, concrete):
        self.forward, self.backward, self.concrete = forward, backward, concrete


def make_view(ir_value, concrete, source, link=None):
    """`make`, recording that `concrete` shares memory with `source`'s (when NumPy returned a view).

    With a ViewLink, writes through the view reach the base and writes into the base refresh the view;
    without one, both are refused.
    """
    shares = isinstance(concrete, np.ndarray) and isinstance(source.value, np.ndarray) and \
        np.may_share_memory(concrete, source.value)
    if not shares:
        return make(ir_value, concrete)
    view = make(ir_value, concrete, base=source)
    view.link = link
    return view


def shadowed(x):
    """The TracedArray standing for plain ndarray `x` in the active trace's shadow table (`x` took a
    traced write, or is a view of an array that did: tracer/arrays/aliasing.py), else `x` itself."""
    if type(x) is not np.ndarray:
        return x
    ctx = context.current()
    table = ctx.shadows if ctx is not None else None
    return x if table is None else table.resolve(x)


def const(value, dtype=None):
    """An IR constant holding `np.asarray(value, dtype)`; one node per distinct scalar in a trace (a
    global like `DT` read in every step of a loop would otherwise make thousands of equal nodes)."""
    if type(value) is np.ndarray:
        traced = shadowed(value)
        if traced is not value:              # a plain array standing for a traced value: never a constant
            return astype(traced.ir, dtype) if dtype is not None else traced.ir
    array = np.asarray(value, dtype=dtype)
    if array.ndim:
        return builder().const(array)
    ctx = context.current()
    if ctx is None:
        raise finished_trace_error()
    key = (array.dtype.str, array.tobytes())
    node = ctx.scalar_consts.get(key)
    if node is None:
        node = ctx.scalar_consts[key] = ctx.builder.const(array)
    return node


def lift(x):
    """The IR Value of `x`: a TracedArray's `.ir`, lists holding traced values stacked, else a constant."""
    if type(x) is TracedArray:
        return x.ir
    if isinstance(x, (list, tuple)) and contains_traced(x):
        return IMPLEMENTATIONS["stack_nested"](x)
    return const(x)


def astype(v, dtype):
    """`v` cast to `dtype` (no node when it already has it)."""
    dtype = np.dtype(dtype)
    return v if v.dtype == dtype else builder().astype(v, dtype=dtype)


def reshape(v, shape):
    """`v` reshaped to `shape` (no node when it already has it)."""
    shape = tuple(shape)
    return v if v.shape == shape else builder().reshape(v, shape=shape)


def is_weak(x):
    """Python scalars (also traced ones) take the dtype of the arrays they meet (NEP 50)."""
    return type(concrete_of(x)) in _WEAK_TYPES


def lift_operands(op, operands):
    """IR Values for the operands of elementwise `op`, with weak scalars given NumPy's dtype for them."""
    strong = [dtype_of(concrete_of(o)) for o in operands if not is_weak(o)]
    weak = [concrete_of(o) for o in operands if is_weak(o)]
    if strong:
        base = np.result_type(*strong)
        weak_dtype = np.result_type(base, *weak) if weak else None
    elif weak:
        weak_dtype = np.result_type(*weak)
        if weak_dtype.kind == "b" and op not in _KEEPS_BOOL:
            weak_dtype = np.dtype(int)         # Python: True + True == 2
    lifted = []
    for o in operands:
        if not is_weak(o):
            lifted.append(lift(o))
        elif type(o) is TracedArray:
            lifted.append(astype(o.ir, weak_dtype))
        else:
            lifted.append(const(o, weak_dtype))
    return lifted


def elementwise(op, fn, *operands):
    """Apply elementwise `op` to `operands`; the concrete result is `fn` on the concrete values.

    `op` is an IR op name or a function `(builder, *values) -> Value` building a derived op.
    """
    try:
        concrete = fn(*[concrete_of(o) for o in operands])
    except (ArithmeticError, ValueError) as e:
        IMPLEMENTATIONS["pin_values"](operands, e)
        raise
    ir_value = _emit(op, lift_operands(_lifted_as(op), operands))
    if type(concrete) is int and any(type(o) is TracedArray and type(o.value) is int for o in operands):
        result = TracedArray(ir_value, concrete)     # a count a rolled loop carries stays traced (loopattrs.py)
    else:
        result = make(ir_value, concrete)
    if fn in PYTHON_RAISING:
        IMPLEMENTATIONS["guard_python_arithmetic"](fn, operands, result)
    return result



def _lifted_as(op):
    """The IR op name whose operand rules apply: `op`'s own, or a derived op's `__name__` (e.g. `logical_and`
    for `&`, so that Python bools stay bool)."""
    return op if isinstance(op, str) else getattr(op, "__name__", "")


def _emit(op, values):
    """IR op `op` (a name, or a function `(builder, *values) -> Value`) applied to IR `values`."""
    b = builder()
    return b.emit(op, *values) if isinstance(op, str) else op(b, *values)


def _bitwise(logical, keeps_high_bits):
    """`&` (`|`, `^`) as its logical op on booleans; an integer operand i with a boolean one b acts on
    i's lowest bit only: the logical op of (i mod 2, b), plus i's higher bits unless the op is `&`.
    Two non-boolean integers are refused (no bitwise op in the IR)."""
    def build(b, x, y):
        if x.dtype == bool and y.dtype == bool:
            return b.emit(logical, x, y)
        if x.dtype != bool and y.dtype != bool or x.dtype.kind not in "biu" or y.dtype.kind not in "biu":
            refuse(f"bitwise operators on non-boolean operands ({x.dtype}, {y.dtype}) are not traced; "
                   "only booleans, or an integer with a boolean")
        i, flag = (x, y) if y.dtype == bool else (y, x)
        low = b.remainder(i, const(2, i.dtype))
        bit = astype(b.emit(logical, b.not_equal(low, const(0, i.dtype)), flag), i.dtype)
        return b.add(b.subtract(i, low), bit) if keeps_high_bits else bit
    build.__name__ = logical
    return build


def guard(pred, expected, why):
    """Record that 0-d IR Value `pred` must equal `expected` for the trace to stay valid."""
    context.current().guard(reshape(pred, ()), expected, why)


def rebind(target, new_ir, new_value):
    """Functionalize an in-place write: `target` now stands for `new_ir` with concrete `new_value`.

    Arguments are never modified (their concrete values are copies).  A write into a view is written
    through to its base; live views of a written array are refreshed (as NumPy views see the write).
    Writes into arrays read from the environment are refused.  A plain array that `target` stands for
    (`shadowed`) is given the new contents, so that every alias of it sees what NumPy would show.
    """
    if target.escaped:
        refuse(f"this array was handed to compiled code ({target.escaped}) that may keep a reference to "
               "it, so a write into it could not be tracked; copy it before that call (a.copy())")
    if target.base is not None:
        return _write_through(target, new_ir, new_value)
    check_not_environment(target)
    ctx = context.current()
    if ctx is not None and ctx.loops is not None:
        ctx.loops.rebound(target)
    target.ir, target.value = new_ir, new_value
    if target.plain is not None:
        target.plain[...] = np.reshape(new_value, target.plain.shape)     # (after `x.shape = ...`)
    audit.note(new_ir, new_value)
    _refresh_views(target)
    return target


def _write_through(view, new_ir, new_value):
    """A write into a view is a write into its base (rebound, which refreshes its views)."""
    if view.link is None:
        refuse("writing through this kind of view (e.g. of np.broadcast_to or ravel(order='K')) is not "
               "supported yet (aliasing is a later issue); copy it first")
    base = view.base
    base_value = base.value.copy()
    view.link.concrete(base_value)[...] = new_value
    rebind(base, view.link.backward(new_ir, base.ir), base_value)
    view.ir = new_ir                                             # simpler than the refreshed IR
    return view


def _refresh_views(array):
    """After `array` was rebound: its live views follow it (NumPy views see writes); views without a
    ViewLink become stale, so that using them refuses."""
    for ref in list(array.views):
        view = ref()
        if view is None:
            continue
        if view.link is None or array.ir is STALE:
            view.ir = STALE
        else:
            view.ir, view.value = view.link.forward(array.ir), view.link.concrete(array.value)
        _refresh_views(view)
    array.views[:] = [ref for ref in array.views if ref() is not None]


def check_not_environment(target):
    """Refuse modifying an array read from the environment (the change would outlive the call); note a
    modification of an argument (`TraceContext.note_write`: sound only while it aliases no other input)."""
    ctx = context.current()
    if ctx is None:
        return
    ctx.note_write(target)
    if ctx.is_environment_array(target):               # itself, not a copy (x.copy() shares its IR value)
        refuse("modifying an array read from a global, closure or attribute would change it for "
               "later calls, which the compiled function does not do; copy it first (a = a.copy())")


def _operand_ok(x):
    return isinstance(x, (TracedArray, np.ndarray, np.generic, list, tuple) + _WEAK_TYPES)


def _binary(op, fn, reflected=False):
    def method(self, other):
        if not _operand_ok(other):
            return NotImplemented
        return elementwise(op, fn, *((other, self) if reflected else (self, other)))
    return method


def _inplace(op, fn, inplace_fn):
    def method(self, other):
        if not _operand_ok(other):
            return NotImplemented
        if not isinstance(self.value, np.ndarray):
            return elementwise(op, fn, self, other)          # immutable scalars: a new value
        new_value = self.value.copy()
        new_value = inplace_fn(new_value, concrete_of(other))  # NumPy's casting checks apply
        result = _emit(op, lift_operands(_lifted_as(op), (self, other)))
        return rebind(self, astype(result, self.value.dtype), new_value)
    return method


def _unary(op, fn):
    def method(self):
        return elementwise(op, fn, self)
    return method


# dunder name -> (IR op, Python operator, in-place operator or None); reflected forms for arithmetic.
BINARY_DUNDERS = {
    "add": ("add", operator.add, operator.iadd), "sub": ("subtract", operator.sub, operator.isub),
    "mul": ("multiply", operator.mul, operator.imul), "truediv": ("divide", operator.truediv, operator.itruediv),
    "floordiv": ("floor_divide", operator.floordiv, operator.ifloordiv),
    "mod": ("remainder", operator.mod, operator.imod), "pow": ("power", operator.pow, operator.ipow),
    "and": (_bitwise("logical_and", False), operator.and_, operator.iand),
    "or": (_bitwise("logical_or", True), operator.or_, operator.ior),
    "xor": (_bitwise("not_equal", True), operator.xor, operator.ixor),
}
COMPARISON_DUNDERS = {
    "eq": ("equal", operator.eq), "ne": ("not_equal", operator.ne), "lt": ("less", operator.lt),
    "le": ("less_equal", operator.le), "gt": ("greater", operator.gt), "ge": ("greater_equal", operator.ge),
}
UNARY_DUNDERS = {"neg": ("negative", operator.neg), "abs": ("absolute", operator.abs),
                 "invert": ("logical_not", operator.invert)}


def _arithmetic(name):
    """(`__name__`, `__rname__`, `__iname__`) for BINARY_DUNDERS[name]."""
    op, fn, inplace_fn = BINARY_DUNDERS[name]
    return _binary(op, fn), _binary(op, fn, reflected=True), _inplace(op, fn, inplace_fn)


def _ndarray_method(name, impl=None):
    """The ndarray method `name` (`impl`, else IMPLEMENTATIONS[name], called with the array first): it
    exists only when the concrete value is an ndarray or NumPy scalar."""
    def method(self, *args, **kwargs):
        if not isinstance(self.value, (np.ndarray, np.generic)):
            raise AttributeError(f"'{type(self.value).__name__}' object has no attribute '{name}'")
        return (impl or IMPLEMENTATIONS[name])(self, *args, **kwargs)
    method.__name__ = name
    return method


def _array_attribute(name, setter=None):
    def get(self):
        return getattr(self.value, name)
    return property(get, setter, doc=f"The concrete value's `{name}`.")


def _complex_part(op, part):
    """The `.real` / `.imag` property: for a complex array the IR op `op` on a view of the concrete
    part (writes through it are refused); for real ones the array itself (`.real`) or zeros (`.imag`)."""
    def get(self):
        concrete = part(self.value)
        if np.iscomplexobj(self.value):
            return make_view(builder().emit(op, self.ir), concrete, self)
        if op == "real":
            return self
        return make(builder().fill(np.shape(concrete), dtype_of(concrete), 0), concrete)
    return property(get, doc=f"The {op} part.")


def _conjugate(self):
    """x.conj(): the complex conjugate (a copy of a real array)."""
    if np.iscomplexobj(self.value):
        return make(builder().conj(self.ir), np.conjugate(self.value))
    return IMPLEMENTATIONS["copy"](self)


def _set_shape(self, shape):
    """`x.shape = shape`: this array object now has that shape (a reshape without copy)."""
    check_not_environment(self)
    new_value = self.value.reshape(shape, copy=False)      # NumPy's errors; setting .shape is deprecated
    self.ir, self.value = reshape(self.ir, new_value.shape), new_value
    self.link = None                                      # as a view of its base it is now unlinked


class TracedArray:
    """A value computed from traced inputs: IR Value `.ir` and concrete NumPy/Python value `.value`.

    It behaves like its concrete value (an ndarray, a NumPy scalar or a Python float/bool): every
    operation records IR and computes the concrete result with the real operation.  `isinstance`
    sees the concrete value's class.  `base` is the TracedArray this one is a view of (`link` says
    how it derives from it), `views` weak references to the views taken of it, `escaped` names the
    compiled code that may hold a reference to `.value` (writes are then refused), `plain` is the plain
    ndarray it stands for (`shadowed`; its contents are kept equal to `.value`), or None.
    """

    __slots__ = ("ir", "value", "base", "views", "link", "escaped", "plain", "__weakref__")
    __array_ufunc__ = None          # NumPy arrays and scalars defer to our reflected operators

    def __init__(self, ir, value, base=None):
        self.ir = ir
        self.value = value
        self.base = base
        self.views = []
        self.link = None
        self.escaped = None        # the compiled code that may keep a reference to the value (or None)
        self.plain = None          # the plain ndarray this value stands for (or None)
        audit.note(ir, value)
        if base is not None:
            base.views.append(weakref.ref(self))

    @property
    def __class__(self):
        return type(self.value)

    # -- conversions that take a decision on the value: guards --------------------------------------
    def __bool__(self):
        result = bool(self.value)                         # raises for arrays of size > 1, as NumPy
        pred = self.ir if self.ir.dtype == bool else builder().not_equal(self.ir, const(0, self.ir.dtype))
        guard(pred, result, "truth value of a traced value")
        return result

    def __hash__(self):
        """hash() of a traced scalar (a dict key, a set member): guarded on its exact value."""
        result = hash(self.value)                         # TypeError for arrays, as NumPy
        IMPLEMENTATIONS["pin"](self, "hash() of a traced value")
        return result

    def __int__(self):
        try:
            result = int(self.value)                      # ValueError for NaN, OverflowError for inf
        except (ArithmeticError, ValueError) as e:
            IMPLEMENTATIONS["pin_values"]((self,), e)
            raise
        pred = self.ir if self.ir.dtype.kind in "biu" else builder().trunc(self.ir)
        guard(pred, result, "int() of a traced value")
        return result

    def __index__(self):
        result = operator.index(self.value)               # TypeError for floats, as NumPy
        guard(self.ir, result, "traced integer used as an index or count")
        return result

    def __float__(self):
        refuse("a traced value reached compiled code that converts it to a C float (e.g. storing it into "
               "a plain NumPy array made by library code, or a C function); its derivative would be "
               "lost. Create the array in your function (np.zeros, np.array(a)) instead, or "
               "register a rule with jitgrad.register(<function>) (see README, 'Registering rules')")

    def __complex__(self):
        refuse("complex() of a traced value converts it to a C complex, losing its derivative; use "
               "complex arithmetic instead (x + 0j, x.astype(complex))")

    def __array__(self, dtype=None, copy=None):
        refuse("a traced value reached compiled code that converts it to a NumPy array (e.g. a C "
               "function, or a write into a plain array made by library code); its derivative would be "
               "lost. Register a rule with jitgrad.register(<function>) (see README, 'Registering "
               "rules'), or build the array from traced values (np.zeros_like(x), np.stack)")

    # -- the rest of the Python protocol -------------------------------------------------------------
    def __pos__(self):
        return make(self.ir, +self.value)

    def __round__(self, ndigits=None):
        if isinstance(self.value, np.ndarray):
            raise TypeError("type numpy.ndarray doesn't define __round__ method")
        if ndigits is None:
            return _rounded_int(self)                     # round(scalar) is an int, as in CPython
        return IMPLEMENTATIONS["round"](self, ndigits)

    def __divmod__(self, other):
        return self // other, self % other

    def __rdivmod__(self, other):
        return other // self, other % self

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        iter(self.value)                                  # TypeError for scalars, at iter() as in NumPy
        return (self[i] for i in range(len(self.value)))

    def __contains__(self, item):
        return bool((self == item).any())

    def __copy__(self):
        return make(self.ir, self.value.copy() if isinstance(self.value, np.ndarray) else self.value)

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __repr__(self):
        return repr(self.value)

    def __str__(self):
        return str(self.value)

    def __format__(self, spec):
        return format(self.value, spec)

    def __getattr__(self, name):
        if hasattr(type(self.value), name) and not name.startswith("__"):   # NumPy probes protocols
            found = IMPLEMENTATIONS["constant_method"](self, name)
            if found is not NOT_CONSTANT:
                return found
            refuse(f"'{type(self.value).__name__}.{name}' is not supported on traced values yet; "
                   "register a rule with jitgrad.register or avoid it")
        raise AttributeError(f"'{type(self.value).__name__}' object has no attribute '{name}'")

    # -- operators: an IR op, with the concrete result computed by Python's operator ------------------
    __add__, __radd__, __iadd__ = _arithmetic("add")
    __sub__, __rsub__, __isub__ = _arithmetic("sub")
    __mul__, __rmul__, __imul__ = _arithmetic("mul")
    __truediv__, __rtruediv__, __itruediv__ = _arithmetic("truediv")
    __floordiv__, __rfloordiv__, __ifloordiv__ = _arithmetic("floordiv")
    __mod__, __rmod__, __imod__ = _arithmetic("mod")
    __pow__, __rpow__, __ipow__ = _arithmetic("pow")
    __and__, __rand__, __iand__ = _arithmetic("and")
    __or__, __ror__, __ior__ = _arithmetic("or")
    __xor__, __rxor__, __ixor__ = _arithmetic("xor")
    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = (
        _binary(*COMPARISON_DUNDERS[name]) for name in ("eq", "ne", "lt", "le", "gt", "ge"))
    __neg__, __abs__, __invert__ = (_unary(*UNARY_DUNDERS[name]) for name in ("neg", "abs", "invert"))

    # -- the ndarray surface: attributes, methods (in NDARRAY_METHODS' order), indexing and `@` ---------
    shape = _array_attribute("shape", _set_shape)
    ndim, size, dtype, itemsize, nbytes, flags, device = map(_array_attribute, (
        "ndim", "size", "dtype", "itemsize", "nbytes", "flags", "device"))
    (sum, prod, mean, var, std, max, min, all, any, argmax, argmin, cumsum, reshape, transpose, swapaxes, ravel,
     flatten, squeeze, copy, astype, item, tolist, clip, round, take, fill, repeat, diagonal, trace, sort,
     partition, put, nonzero, compress, cumprod, argsort, dot, view, searchsorted) = map(_ndarray_method,
                                                                                         NDARRAY_METHODS)
    flat = property(_ndarray_method("flat", lambda self: IMPLEMENTATIONS["flat"](self)),
                    doc="An iterator over the flattened array.")
    conj = conjugate = _ndarray_method("conj", _conjugate)
    T = property(lambda self: IMPLEMENTATIONS["transpose"](self), doc="The transposed array.")
    mT = property(lambda self: IMPLEMENTATIONS["matrix_transpose"](self), doc="The last two axes swapped.")
    real = _complex_part("real", lambda v: v.real)
    imag = _complex_part("imag", lambda v: v.imag)

    def __getitem__(self, key):
        return IMPLEMENTATIONS["getitem"](self, key)

    def __setitem__(self, key, value):
        return IMPLEMENTATIONS["setitem"](self, key, value)

    def __matmul__(self, other):
        return IMPLEMENTATIONS["matmul"](self, other)

    def __rmatmul__(self, other):
        return IMPLEMENTATIONS["matmul"](other, self)


def _rounded_int(t):
    """round(python_float) -> int, guarded (round-half-even, as rint)."""
    result = round(t.value)
    guard(builder().rint(t.ir), result, "round() of a traced value")
    return result


hooks.traced_type = TracedArray
