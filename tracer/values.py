"""The core of the traced value type: TracedArray, its operators and the helpers every rule shares.

A TracedArray pairs an IR Value (`.ir`) with the concrete result CPython+NumPy produced (`.value`).
Helpers here lift operands to IR Values (Python scalars are NumPy "weak" scalars, NEP 50), wrap an IR
Value with its concrete result after checking that shape and dtype agree (`make`), record guards, and
rebind an array written in place (`rebind`, which refuses writes that aliasing would make unsound).
Methods that need the array API (indexing, reductions, matmul) are installed by `tracer.traced`.
"""
import dataclasses
import operator
import sys
import types
import weakref

import numpy as np

from ..ir.errors import TraceError, UnsupportedError
from ..ir.ops import COMPLEX_DIFFERENTIABLE
from ..ir.value import Value
from . import audit, context
from .pyerrors import PYTHON_RAISING, guard_python_arithmetic, pin, pin_values

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


def finished_trace_error():
    """The error for a traced value used outside any trace: one stored in outside data while tracing
    and used after its jit_grad call returned.  Located at the first frame outside jitgrad."""
    frame, loc = sys._getframe(1), None
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).split(".")[0] != "jitgrad":
            loc = loc or f"{frame.f_code.co_filename}:{frame.f_lineno}"     # (the first outside jitgrad)
            if not context._is_library_file(frame.f_code.co_filename):
                loc = f"{frame.f_code.co_filename}:{frame.f_lineno}"
                break
        frame = frame.f_back
    return TraceError("a traced value of a jit_grad call that has returned is used here: it was stored "
                      "outside the traced function while tracing (in a global, an object or a container "
                      "not rebuilt per call); store a plain copy (float(v), np.array(v)) or return it as "
                      "aux data (has_aux=True)", loc=loc)


def location():
    """The user's `file:line` in the active trace (None outside one)."""
    ctx = context.current()
    return ctx.user_location() if ctx is not None else None


def refuse(message):
    """Raise UnsupportedError with the user's location (outside any trace: the finished-trace error)."""
    if context.current() is None:
        raise finished_trace_error()
    raise UnsupportedError(message, loc=location())


def refuse_options(what, **options):
    """Refuse keyword options (out=, where=, ...) that a rule does not translate, when given."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        refuse(f"{what}: the option(s) {', '.join(given)}= are not supported while tracing; "
               "compute without them (or register a rule with jitgrad.register)")


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
        return contains_traced([getattr(x, f.name, None) for f in dataclasses.fields(x)], None, depth + 1)
    return False


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
    from .aliasing import is_constant
    if not is_constant(types.SimpleNamespace(ir=v)):
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
    traced write, or is a view of an array that did: tracer/aliasing.py), else `x` itself."""
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
        from .array_api import stack_nested
        return stack_nested(x)
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
        pin_values(operands, e)
        raise
    result = make(_emit(op, lift_operands(_lifted_as(op), operands)), concrete)
    if fn in PYTHON_RAISING:
        guard_python_arithmetic(fn, operands, result)
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


_STALE_MESSAGE = ("this view (a slice, reshape, .T, iteration row...) was taken before its array was "
                  "written in place; using it afterwards is not supported yet (aliasing is a later issue): "
                  "copy the view (v = x[i].copy()) or index the array again after the write")


def _stale(self):
    refuse(_STALE_MESSAGE)


class StaleView(Value):
    """The IR of a view whose base array was written after the view was taken: every use refuses."""

    __slots__ = ()
    op = args = params = shape = dtype = property(_stale)

    def __init__(self):
        pass

    def __repr__(self):
        return "<stale view>"


STALE = StaleView()


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
        pin(self, "hash() of a traced value")
        return result

    def __int__(self):
        try:
            result = int(self.value)                      # ValueError for NaN, OverflowError for inf
        except (ArithmeticError, ValueError) as e:
            pin_values((self,), e)
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
        from .array_api import round_
        return round_(self, ndigits)

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
            from .aliasing import NOT_CONSTANT, constant_method
            found = constant_method(self, name)
            if found is not NOT_CONSTANT:
                return found
            refuse(f"'{type(self.value).__name__}.{name}' is not supported on traced values yet; "
                   "register a rule with jitgrad.register or avoid it")
        raise AttributeError(f"'{type(self.value).__name__}' object has no attribute '{name}'")


def _rounded_int(t):
    """round(python_float) -> int, guarded (round-half-even, as rint)."""
    result = round(t.value)
    guard(builder().rint(t.ir), result, "round() of a traced value")
    return result


for _name, (_op, _fn, _ifn) in BINARY_DUNDERS.items():
    setattr(TracedArray, f"__{_name}__", _binary(_op, _fn))
    setattr(TracedArray, f"__r{_name}__", _binary(_op, _fn, reflected=True))
    setattr(TracedArray, f"__i{_name}__", _inplace(_op, _fn, _ifn))
for _name, (_op, _fn) in COMPARISON_DUNDERS.items():
    setattr(TracedArray, f"__{_name}__", _binary(_op, _fn))
for _name, (_op, _fn) in UNARY_DUNDERS.items():
    setattr(TracedArray, f"__{_name}__", _unary(_op, _fn))
