"""`jitgrad.custom_vjp` (and CustomFunction, the machinery it shares with custom_jvp in custom_jvp.py): a
function with a reverse-mode rule its author gives, for code the tracer cannot see into (an opaque
compiled routine called through ctypes or Cython, `np.vectorize` of Python code) or whose automatic
derivative is numerically poor.

    @jitgrad.custom_vjp
    def f(x, y): ...                        # anything: it is only ever called on concrete arrays
    f.defvjp(fwd, bwd)                      # fwd(x, y) -> (f(x, y), residuals); bwd(residuals, g) ->
                                            # one cotangent per argument (None for non-float ones)

Called on traced values, `f` is recorded as one `custom_call` node (ir/custom_ops.py) whose rule objects
(below) call back into Python: the primal runs `f`, its VJP the node `bwd(fwd(*args)[1], g)`, its JVP
the transpose of `bwd` in `g` (computed by jitgrad's own vjp of `bwd`, so `bwd` must be traceable for
forward mode).  Once a rule has been differentiated, its primal node runs `fwd` and keeps the
residuals (per thread, keyed by the operands' bytes: `_Residuals`) for the backward and tangent nodes,
so the primal routine runs once per gradient, not twice; they run `fwd` again only when the residuals
are gone (evicted, another thread, a vjp_fn called a second time).  Second derivatives through the VJP
(hessian = forward over reverse, grad of grad) differentiate `fwd` and `bwd` with jitgrad's jvp/vjp at
run time: they need traceable `fwd` and `bwd` (fwd may call `f` itself) and float residuals; derivatives
of the JVP node and third derivatives are refused. Compiled kernels run these nodes as host calls.
Outside a traced call, `f(*args)` is a plain call of the function. `f` must be pure: equal arguments
give equal results (the trace may evaluate it more than once, or merge equal calls).
"""
import collections
import functools
import itertools
import re
import threading

import numpy as np

from .ir.custom_ops import CustomRule
from .ir.errors import TraceError, UnsupportedError
from .pytree import flatten, unflatten
from .tracer import TracedArray, contains_traced, current, lift, make
from .tracing import function_location

_counter = itertools.count()


class CustomFunction:
    """A function with user-given derivative rules (custom_vjp, custom_jvp): a plain call outside
    tracing, one custom_call node on traced values, with the primal rule `_primal_rule(call, out)`."""

    decorator = "custom"
    setter = "a rule"

    def __init__(self, fn):
        if not callable(fn):
            raise TraceError(f"{self.decorator} expects a function, got {type(fn).__name__}")
        self.fn = fn
        self._rules = {}
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        if current() is None or not contains_traced(args, kwargs):
            return self.fn(*args, **kwargs)
        if kwargs:
            raise TraceError(f"{self.__name__}: a {self.decorator} function takes positional arguments only "
                             "while traced", current().user_location())
        if not self._has_rule():
            raise TraceError(f"{self.__name__} is a {self.decorator} function without a rule: call "
                             f"{self.__name__}.{self.setter}", function_location(self.fn))
        concrete = [a.value if type(a) is TracedArray else a for a in args]
        out = self.fn(*concrete)
        rule = rule_for(self, concrete, out)
        node = current().builder.emit("custom_call", *[lift(args[i]) for i in rule.call.dynamic],
                                              rule=rule)
        return make(node, out)


class custom_vjp(CustomFunction):
    """Decorator: `fn` with a reverse-mode derivative rule set by `defvjp(fwd, bwd)` (see the module)."""

    decorator = "custom_vjp"
    setter = "defvjp(fwd, bwd)"

    def __init__(self, fn):
        super().__init__(fn)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """Set the rule: `fwd(*args) -> (output, residuals)`, `bwd(residuals, g) -> tuple of cotangents`."""
        self.fwd, self.bwd = fwd, bwd
        self._rules.clear()
        return self

    def _has_rule(self):
        return self.fwd is not None

    def _primal_rule(self, call, out):
        return _PrimalRule(self, call, out)


def rule_for(cf, concrete, out=None):
    """The primal rule of CustomFunction `cf` for arguments like `concrete` (one per signature; `out`
    is what cf returns for them, computed if not given)."""
    call = _Call(cf, concrete)
    rule = cf._rules.get(call.key)
    if rule is None:
        out = np.asarray(call.result(cf.fn(*concrete) if out is None else out, cf))
        rule = cf._rules[call.key] = cf._primal_rule(call, (out.shape, out.dtype))
    return rule


class _Call:
    """How a custom_vjp function's arguments map to custom_call operands: arrays and floats are operands
    (the `dynamic` positions; the floating ones carry derivatives), other values are fixed in the rule."""

    def __init__(self, cv, args):
        self.kinds = []
        for k, a in enumerate(args):
            if type(a) is float or isinstance(a, (np.ndarray, np.floating)):
                arr = np.asarray(a)
                self.kinds.append(("dynamic", type(a), arr.shape, arr.dtype))
            elif contains_traced([a]) or isinstance(a, (list, tuple, dict)):
                raise TraceError(f"{cv.__name__}: argument {k} is a container; a {cv.decorator} function takes "
                                 "arrays, floats and static values (ints, strings...) while traced",
                                 function_location(cv.fn))
            else:
                self.kinds.append(("static", a))
        self.key = tuple(self.kinds)
        self.dynamic = [k for k, kind in enumerate(self.kinds) if kind[0] == "dynamic"]
        self.floating = [k for k in self.dynamic if self.kinds[k][3].kind == "f"]
        self.shapes = [self.kinds[k][2] for k in self.dynamic]

    def args(self, operands):
        """The user's arguments for operand arrays `operands` (copies: host calls pass views of kernel memory)."""
        it = iter(operands)
        out = []
        for kind in self.kinds:
            if kind[0] == "static":
                out.append(kind[1])
            else:
                value = next(it)
                out.append(np.array(value) if kind[1] is np.ndarray else kind[1](value))
        return out

    def result(self, value, cv):
        """The primal result as a traced value's concrete value (an array or a float)."""
        if isinstance(value, (float, np.floating)):
            return value
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            return value
        raise TraceError(f"{cv.__name__} returned {type(value).__name__}: a {cv.decorator} function returns one array "
                         "or float", function_location(cv.fn))

    def float_operands(self):
        """Indices (among the operands) of the floating ones."""
        return [self.dynamic.index(k) for k in self.floating]

    def cotangent_tree(self, cts, cv):
        """bwd's result as one array per floating argument (zeros for None)."""
        if not isinstance(cts, (tuple, list)):
            cts = (cts,)
        if len(cts) != len(self.kinds):
            raise TraceError(f"the bwd rule of {cv.__name__} returned {len(cts)} cotangents for {len(self.kinds)} "
                             "arguments", function_location(cv.bwd))
        return [np.zeros(self.kinds[k][2]) if cts[k] is None else np.asarray(cts[k]) for k in self.floating]


def rule_name(cv, part):
    return f"custom{next(_counter)}_{re.sub(r'[^0-9A-Za-z_]', '_', getattr(cv, '__name__', 'fn'))}_{part}"


def concatenated(arrays, dtype):
    return np.concatenate([np.asarray(a, dtype=dtype).ravel() for a in arrays]) if arrays else np.zeros(0, dtype)


def cut(b, flat, likes):
    """IR: `flat` cut into pieces shaped like `likes`."""
    pieces, start = [], 0
    for like in likes:
        piece = b.index(flat, spec=(("slice", start, like.size, 1),))
        pieces.append(b.reshape(piece, shape=like.shape))
        start += like.size
    return pieces


def _check_shapes(values, likes, what, cv):
    for v, like in zip(values, likes):
        if np.shape(v) != tuple(like):
            raise TraceError(f"the {what} of {cv.__name__} gave a cotangent of shape {np.shape(v)} for an argument of "
                             f"shape {tuple(like)}", function_location(cv.bwd))


class _Residuals(threading.local):
    """fwd's residuals from the primal nodes a backward node will need, in the calling thread: (rule,
    operand bytes) -> residuals, newest last.  A backward node takes its entry out; the oldest go
    first beyond `max_entries` or `max_bytes` (of operands and array residuals), so forward-only runs
    of a differentiated rule (a jvp, a guard failing before the backward part) cannot grow it."""

    max_entries, max_bytes = 256, 16 << 20

    def __init__(self):
        self.entries, self.nbytes = collections.OrderedDict(), 0

    @staticmethod
    def key(rule, arrays):
        return (rule, *((a.dtype.str, a.shape, a.tobytes()) for a in map(np.asarray, arrays)))

    def put(self, key, residuals):
        size = sum(len(k[2]) for k in key[1:]) + sum(r.nbytes for r in flatten(residuals)[0]
                                                    if isinstance(r, np.ndarray))
        old = self.entries.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
        self.entries[key] = (residuals, size)
        self.nbytes += size
        while len(self.entries) > self.max_entries or self.nbytes > self.max_bytes:
            self.nbytes -= self.entries.popitem(last=False)[1][1]

    def take(self, key):
        found = self.entries.pop(key, None)
        if found is None:
            return None
        self.nbytes -= found[1]
        return found


_residuals = _Residuals()


class _PrimalRule(CustomRule):
    """custom_call(*operands): the function itself."""

    def __init__(self, cv, call, out):
        super().__init__(rule_name(cv, "primal"), out)
        self.cv, self.call = cv, call
        self._backward = self._tangent = None

    def evaluate(self, arrays):
        if self._backward is None and self._tangent is None:   # not differentiated: the function itself
            return self.cv.fn(*self.call.args(arrays))
        out, residuals = self.cv.fwd(*self.call.args(arrays))
        _residuals.put(_Residuals.key(self, arrays), residuals)
        return out

    def residuals(self, arrays, keep=False):
        """fwd's residuals for operands `arrays`: those the primal node kept (taken out, unless `keep`),
        else fwd run again."""
        key = _Residuals.key(self, arrays)
        found = _residuals.take(key)
        if found is None:
            return self.cv.fwd(*self.call.args(arrays))[1]
        if keep:
            _residuals.put(key, found[0])
        return found[0]

    def vjp(self, b, node, g):
        if self._backward is None:
            self._backward = _BackwardRule(self)
        flat = b.custom_call(*node.args, g, rule=self._backward)
        floats = self.call.float_operands()
        cts = [None] * len(node.args)
        for k, ct in zip(floats, cut(b, flat, [node.args[k] for k in floats])):
            cts[k] = ct
        return tuple(cts)

    def jvp(self, b, node, tangents):
        if self._tangent is None:
            self._tangent = _TangentRule(self)
        floats = self.call.float_operands()
        ts = [tangents[k] if tangents[k] is not None else b.fill(node.args[k].shape, node.args[k].dtype, 0)
              for k in floats]
        return b.custom_call(*node.args, *ts, rule=self._tangent)


class _BackwardRule(CustomRule):
    """custom_call(*operands, g): the cotangents bwd(fwd(*args)[1], g) of the floating operands, flattened
    and concatenated."""

    def __init__(self, primal):
        self.primal, self.cv, self.call = primal, primal.cv, primal.call
        dtypes = [self.call.kinds[k][3] for k in self.call.floating] + [primal.out[1]]
        size = sum(int(np.prod(self.call.kinds[k][2], dtype=np.int64)) for k in self.call.floating)
        super().__init__(rule_name(self.cv, "vjp"), ((size,), np.result_type(*dtypes)))
        self._backward = self._tangent = None

    def evaluate(self, arrays):
        g = np.array(arrays[-1])
        cts = self.call.cotangent_tree(self.cv.bwd(self.primal.residuals(arrays[:-1]), g), self.cv)
        _check_shapes(cts, [self.call.kinds[k][2] for k in self.call.floating], "bwd rule", self.cv)
        return concatenated(cts, self.out[1])

    def vjp(self, b, node, c):
        second_order_ok(self.cv, self.call)
        if self._backward is None:
            self._backward = _DerivedRule(self, "vjp2", (*node.args, c), _reverse_over_reverse)
        flat = b.custom_call(*node.args, c, rule=self._backward)
        return tuple(cut(b, flat, node.args))

    def jvp(self, b, node, tangents):
        second_order_ok(self.cv, self.call)
        ts = [t if t is not None else b.fill(a.shape, a.dtype, 0) for a, t in zip(node.args, tangents)]
        if self._tangent is None:
            self._tangent = _DerivedRule(self, "jvp2", node.args, _forward_over_reverse, out=self.out)
        return b.custom_call(*node.args, *ts, rule=self._tangent)


class _TangentRule(CustomRule):
    """custom_call(*operands, *tangents of the floating operands): J t, the transpose of bwd in g applied
    to the tangents (bwd is linear in g), by jitgrad's vjp of bwd."""

    def __init__(self, primal):
        super().__init__(rule_name(primal.cv, "jvp"), primal.out)
        self.primal, self.cv, self.call = primal, primal.cv, primal.call

    def evaluate(self, arrays):
        from .transforms import VjpFunction, _transform_of
        n = len(self.call.dynamic)
        tangents = [np.array(t) for t in arrays[n:]]
        residuals = self.primal.residuals(arrays[:n], keep=True)
        g0 = np.zeros(*self.out)
        cts, vjp_fn = _transform_of(self.cv.bwd, VjpFunction, 2, (1,))(residuals, g0)
        if isinstance(cts, (tuple, list)):   # the cotangent of bwd's result: the tangents in its places
            items = list(cts)
            for k, t in zip(self.call.floating, tangents):
                items[k] = t if items[k] is not None else None
            cts = type(cts)(items)
        else:
            cts = tangents[0]
        (jt,) = vjp_fn(cts)
        return jt

    def vjp(self, b, node, g):
        raise too_deep(self.cv)

    def jvp(self, b, node, tangents):
        raise too_deep(self.cv)


class _DerivedRule(CustomRule):
    """A second derivative of a custom_vjp function, computed by `compute(backward_rule, arrays)` with
    jitgrad's jvp/vjp of the user's fwd and bwd; third derivatives are refused."""

    def __init__(self, backward, part, operands, compute, out=None):
        size = sum(v.size for v in operands[:-1])
        super().__init__(rule_name(backward.cv, part), out or ((size,), backward.out[1]))
        self.backward, self.cv, self.compute = backward, backward.cv, compute

    def evaluate(self, arrays):
        return self.compute(self.backward, arrays)

    def vjp(self, b, node, g):
        raise too_deep(self.cv)

    def jvp(self, b, node, tangents):
        raise too_deep(self.cv)


def _forward_over_reverse(backward, arrays):
    """Tangent of bwd(fwd(x)[1], g) along (tx, tg): custom_call(*x, g, *tx, tg)."""
    from .transforms import jvp
    call, cv = backward.call, backward.cv
    n = len(call.dynamic)
    args, g = call.args(arrays[:n]), np.array(arrays[n])
    t_args, t_g = call.args(arrays[n + 1:2 * n + 1]), np.array(arrays[2 * n + 1])
    (_, residuals), (_, t_residuals) = jvp(cv.fwd, tuple(args), tuple(t_args))
    cts, t_cts = jvp(cv.bwd, (residuals, g), (t_residuals, t_g))
    return concatenated(call.cotangent_tree(t_cts, cv), backward.out[1])


def _reverse_over_reverse(backward, arrays):
    """Cotangents of (x, g) for cotangent c of bwd(fwd(x)[1], g): custom_call(*x, g, c), flattened."""
    from .transforms import vjp
    call, cv = backward.call, backward.cv
    n = len(call.dynamic)
    args, g, c = call.args(arrays[:n]), np.array(arrays[n]), np.array(arrays[n + 1])
    (out, residuals), fwd_vjp = vjp(cv.fwd, *args)
    cts, bwd_vjp = vjp(cv.bwd, residuals, g)
    leaves, treedef = flatten(cts)
    pieces, start = [], 0
    for leaf in leaves:   # c, cut into bwd's result leaves (its floating arguments' cotangents)
        size = int(np.size(leaf)) if leaf is not None else 0
        pieces.append(c[start:start + size].reshape(np.shape(leaf)) if leaf is not None else None)
        start += size
    d_residuals, d_g = bwd_vjp(unflatten(treedef, pieces))
    d_args = fwd_vjp((np.zeros_like(out) if isinstance(out, np.ndarray) else 0.0, d_residuals))
    return concatenated([*(d_args[k] for k in call.floating), d_g], backward.out[1])


def second_order_ok(cv, call):
    if len(call.floating) != len(call.kinds):
        raise UnsupportedError(f"second derivatives of {cv.decorator} function {cv.__name__} need every argument to be "
                               "a float or float array")


def too_deep(cv):
    """The refusal of a derivative of a derivative rule that has none (third derivatives; derivatives of
    a custom_vjp function's forward-mode rule)."""
    return UnsupportedError(f"this derivative of {cv.decorator} function {cv.__name__} is not supported: custom "
                            "rules are differentiated up to second order (third derivatives and derivatives of a "
                            "custom_vjp function's forward-mode rule are refused)")
