"""The AD transforms, trace -> trace (so they compose: grad of grad, jvp of grad...).

`value_and_grad(trace, wrt, out)` builds one joint trace (forward, then backward seeded with 1);
`vjp(trace, wrt)` builds the same joint trace with the output cotangents as extra inputs, optimizes it
and splits it into a forward trace (which also returns the residuals) and a backward trace; `jvp`
builds the forward trace interleaved with tangents, and `linearize` splits it as `vjp` splits reverse mode
(a primal trace returning residuals, and a tangent trace).  Per-op derivatives come from the tables
`vjp.VJP` and `jvp.JVP`; broadcasting of cotangents is undone here, centrally, with `vjp.unbroadcast`.

Which values carry derivatives: a value is *active* when it is a float or complex, depends on a `wrt`
input and is not produced by a piecewise-constant op (ops.NON_DIFFERENTIABLE).  Integer and bool values
get no cotangent and no tangent (their derivative is zero).  Rules are asked for derivatives w.r.t.
active operands only (reverse mode: `vjp.cotangents` with the activity of each operand; forward mode:
inactive operands have no tangent), so a partial that is refused (a second derivative w.r.t. a shape
parameter) is refused only when it is needed.  Cotangents and tangents are given only for
real float outputs, and `wrt` inputs must be real floats (documented decisions).

Complex intermediates: the cotangent of a complex value z = x + iy is dL/dx + i dL/dy and its tangent
dx + i dy.  A holomorphic op's VJP multiplies by the conjugate of its derivative, its JVP by the
derivative; a complex-linear map's VJP is its adjoint.  Where a real value meets a complex one (a cast,
a real operand of a complex product, rfft's input, abs/real/imag's result) the derivative fitted to the
real value is the real part of the complex one: `_fitted` and `unbroadcast` take it, centrally, with
partials.cast.  Only the ops of ops.COMPLEX_DIFFERENTIABLE may touch an active complex value; any other
(max, sign, arctan2, linear algebra...) raises UnsupportedError rather than give a wrong derivative.

Cotangents of a value used several times are accumulated with `add` (or scattered into one another, see
`sum_cotangents`).  Unreachable gradients are zeros made by `fill`.  Guards stay in the forward part, in order.

Loops (ir/loop_ad.py, ir/loop_tape.py, through the tables LOOP_*) are differentiated as a whole: forward
mode carries tangents; reverse mode first rewrites every active loop of the forward part into its taping
(or checkpointing) form, then the reverse sweep hands each loop the cotangents of its results and emits
its backward loop.
"""
from .builder import Builder
from .errors import IRError, UnsupportedError
from .jvp import JVP
from .loops import has_loops
from .ops import COMPLEX_DIFFERENTIABLE, NON_DIFFERENTIABLE, TUPLE, ops_where
from .partials import cast
from .passes import copy_inputs, copy_node, dce, optimize, replay
from .shift_invariance import shift_invariant
from .value import Trace
from .vjp import VJP, cotangents, unbroadcast

_CHEAP_SOURCES = ops_where(lambda s: s.constant)      # const, fill

# The derivative rules of the loop ops, keyed by op: ir/loop_ad.py and ir/loop_tape.py differentiate
# loop bodies with this module's transforms, so they sit above it and fill these tables when imported;
# ir/__init__.py imports them, so the tables are filled whenever jitgrad.ir is (lower layers take
# callbacks, not imports).
# ir/cond_ad.py fills them for the cond ops (ops.CONDS) the same way.
LOOP_JVP = {}         # op in LOOPS -> f(b, node, args, tangents, loop_maps): node's Value in the jvp trace
LOOP_TAPING = {}      # "loop" -> f(b, node, args, active_args, records, result_maps): its taping form (None: copy)
LOOP_BACKWARD = {}    # op in LOOPS -> f(b, node, cts, received, records, accumulate, add): its reverse sweep


def _is_real_float(v):
    return v.dtype.kind == "f"


def _check_wrt(trace, wrt):
    wrt = list(wrt)
    for i in wrt:
        if not 0 <= i < len(trace.inputs):
            raise IRError(f"wrt index {i} out of range for {len(trace.inputs)} inputs")
        dtype = trace.inputs[i].dtype
        if dtype.kind == "c":
            raise UnsupportedError(f"differentiation w.r.t. complex input {i}: only real float inputs are "
                                   "differentiated (complex values inside the function are fine; pass the real "
                                   "and imaginary parts as two float inputs)")
        if not _is_real_float(trace.inputs[i]):
            raise IRError(f"cannot differentiate w.r.t. input {i} of non-float dtype {dtype}")
    return wrt


def active_ids(nodes, sources, outputs=None):
    """ids of the values that carry derivatives: floats and complex values depending differentiably on
    `sources`; UnsupportedError for an op without complex derivative rules touching a complex one.
    Given the `outputs` to differentiate, values they do not depend on (ir/shift_invariance.py: the max
    of a stable log-sum-exp or softmax) carry none: constants, whose derivative cancels exactly."""
    active = _active(nodes, sources, ())
    if outputs is None:
        return active
    constants = shift_invariant(nodes, outputs, active)
    return _active(nodes, sources, constants) if constants else active


def _active(nodes, sources, constants):
    active = {id(v) for v in sources}
    for node in nodes:
        if id(node) in constants or not any(id(a) in active for a in node.args):
            continue
        complex_in = any(a.dtype.kind == "c" and id(a) in active for a in node.args)
        if (complex_in or node.dtype.kind == "c") and node.op not in COMPLEX_DIFFERENTIABLE:
            operands = ", ".join(str(a.dtype) for a in node.args)
            raise UnsupportedError(f"derivative of {node.op} on complex values ({operands} -> {node.dtype}) "
                                   "is not supported")
        if node.op not in NON_DIFFERENTIABLE and (node.dtype.kind in "fc" or node.dtype == TUPLE):
            active.add(id(node))       # a loop or cond (a tuple) is active when an operand is
    return active


def _fitted(b, value, like, what):
    """`value` checked to have the shape and dtype of `like`, cast between float and complex dtypes
    (complex to real: the real part)."""
    if value.dtype != like.dtype and value.dtype.kind in "fc" and like.dtype.kind in "fc":
        value = cast(b, value, like.dtype)
    if value.shape != like.shape or value.dtype != like.dtype:
        raise IRError(f"{what} of {like.op} is {value.dtype}{list(value.shape)}, "
                      f"expected {like.dtype}{list(like.shape)}")
    return value


def _is_zeros(v):
    return v.op == "fill" and v.params["value"] == 0


def sum_cotangents(b, acc, ct):
    """acc + ct, two cotangents of one value.  When one of them scatters into zeros (the VJP of
    `index`), its values are scattered into the other instead: a loop reading `x[i]` then builds one
    chain of `index_add`s (updated in place by the JIT) rather than a sum of mostly-zero arrays.  So is
    a chain of scatters into zeros (a body reading x[i] and x[i + 1]: the Rosenbrock loop's backward
    body added a whole 100-element array per iteration, 6.5 us against 1.5 us unrolled)."""
    for dense, sparse in ((acc, ct), (ct, acc)):
        chain = _scatters_into_zeros(sparse)
        if chain and sparse.dtype == dense.dtype and sparse.shape == dense.shape:
            for node in reversed(chain):
                dense = b.index_add(dense, *node.args[1:], spec=node.params["spec"])
            return dense
    return b.add(acc, ct)


def _scatters_into_zeros(v):
    """The index_add nodes, outermost first, of `v` = index_add(...index_add(zeros, ...)...), or []."""
    chain = []
    while v.op == "index_add":
        chain.append(v)
        v = v.args[0]
    return chain if chain and _is_zeros(v) else []


def jvp_result(b, node, args, tangents, maps):
    """The forward-mode replay of a loop_result or cond_result `node` on `args`: the same result of the
    differentiated op made for its tuple (`maps`: id(new op) -> per old result, (index, tangent index or
    None)), its tangent recorded in `tangents`; a plain copy when the op was not differentiated."""
    result_map = maps.get(id(args[0]))
    if result_map is None:
        return copy_node(b, node, args)
    k, tk = result_map[node.params["index"]]
    new = b.emit(node.op, args[0], index=k)
    if tk is not None:
        tangents[id(new)] = b.emit(node.op, args[0], index=tk)
    return new


def _backward(b, nodes, seeds, wrt_values, loops):
    """Emit into `b` the reverse sweep over `nodes` from `seeds` ((value, cotangent) pairs); return
    the cotangent of each of `wrt_values` (None when none reaches it).  `loops`: the records of the
    loops of `nodes` in taping form (`_taping_form`)."""
    active = active_ids(nodes, wrt_values, [v for v, _ in seeds])
    cts, received = {}, {}

    def accumulate(v, ct):
        if id(v) not in active:
            return
        if ct.shape != v.shape or ct.dtype != v.dtype:
            ct = unbroadcast(b, ct, v.shape, v.dtype)
        ct = _fitted(b, ct, v, "cotangent")
        cts[id(v)] = sum_cotangents(b, cts[id(v)], ct) if id(v) in cts else ct

    for v, ct in seeds:
        accumulate(v, ct)
    for node in reversed(nodes):
        if node.op in LOOP_BACKWARD:
            LOOP_BACKWARD[node.op](b, node, cts, received, loops, accumulate, sum_cotangents)
            continue
        g = cts.pop(id(node), None)
        if g is None:
            continue
        if node.op not in VJP:
            raise UnsupportedError(f"no VJP rule for op {node.op!r}")
        for arg, ct in zip(node.args, cotangents(b, node, g, [id(a) in active for a in node.args])):
            if ct is not None:
                accumulate(arg, ct)
    return [cts.get(id(v)) for v in wrt_values]


def _taping_form(b, nodes, env, active):
    """Replay `nodes` into `b` (operands through `env`) with every loop in `active` in its taping form;
    returns the loops' reverse-mode records (ir/loop_tape.py)."""
    records, result_maps = {}, {}

    def rule(b, node, args):
        if node.op in LOOP_TAPING and id(node) in active:
            return LOOP_TAPING[node.op](b, node, args, [id(a) in active for a in node.args], records,
                                        result_maps)
        if node.op == "loop_result" and id(args[0]) in result_maps:
            return result_maps[id(args[0])][node.params["index"]]
        return None
    replay(b, nodes, env, rule)
    return records


def _or_zeros(b, values, likes):
    return [v if v is not None else b.fill(like.shape, like.dtype, 0.0) for v, like in zip(values, likes)]


def value_and_grad(trace, wrt, out=0):
    """One trace with `trace`'s inputs and outputs `trace.outputs + [d outputs[out] / d inputs[i] for i
    in wrt]`; `outputs[out]` must be a 0-d real float, the seed is 1 of its dtype."""
    wrt = _check_wrt(trace, wrt)
    if not 0 <= out < len(trace.outputs):
        raise IRError(f"output index {out} out of range for {len(trace.outputs)} outputs")
    y = trace.outputs[out]
    if y.shape != () or not _is_real_float(y):
        raise IRError(f"value_and_grad needs a 0-d real float output, output {out} is {y.dtype}{list(y.shape)}")
    b = Builder()
    wrt_values = [trace.inputs[i] for i in wrt]
    b.inputs, loops = list(trace.inputs), {}
    if has_loops(trace):            # the forward part: the trace with its active loops in taping form
        env = {id(v): v for v in trace.inputs}
        loops = _taping_form(b, trace.nodes, env, active_ids(trace.nodes, wrt_values))
        outputs = [env[id(v)] for v in trace.outputs]
    else:                           # Values are immutable: the forward part is the trace's own nodes
        b.nodes, outputs = list(trace.nodes), list(trace.outputs)
    forward = list(b.nodes)
    grads = _backward(b, forward, [(outputs[out], b.fill((), y.dtype, 1.0))], wrt_values, loops)
    return b.build(outputs + _or_zeros(b, grads, wrt_values))


def vjp(trace, wrt):
    """Split reverse mode: returns `(forward, backward)`.

    `forward` has `trace`'s inputs and outputs `trace.outputs + residuals`; `backward` has inputs
    `residuals + one cotangent per real-float output of trace` (in output order) and outputs one
    cotangent per `wrt` input.  Residuals are exactly the forward values the backward uses (consts and
    fills it uses are re-made in the backward instead).  Both traces come out optimized.
    """
    wrt = _check_wrt(trace, wrt)
    for k, v in enumerate(trace.outputs):
        if v.dtype.kind == "c":
            raise UnsupportedError(f"vjp of a trace with complex output {k} is not supported")
    b = Builder()
    env = copy_inputs(b, trace.inputs)
    float_outputs = [v for v in trace.outputs if _is_real_float(v)]
    ct_inputs = [b.input(v.shape, v.dtype) for v in float_outputs]
    loops = _taping_form(b, trace.nodes, env, active_ids(trace.nodes, [trace.inputs[i] for i in wrt]))
    outputs = [env[id(v)] for v in trace.outputs]
    wrt_values = [env[id(trace.inputs[i])] for i in wrt]
    seeds = list(zip([env[id(v)] for v in float_outputs], ct_inputs))
    grads = _backward(b, list(b.nodes), seeds, wrt_values, loops)
    joint = optimize(b.build(outputs + _or_zeros(b, grads, wrt_values)))
    return _split(joint, len(trace.inputs), len(trace.outputs))


def _split(joint, n_inputs, n_outputs):
    """Cut a joint trace (inputs: primal then cotangents; outputs: primal then gradients) into the
    forward part (nodes independent of the cotangents) and the backward part (the rest)."""
    backward_ids = {id(v) for v in joint.inputs[n_inputs:]}
    for node in joint.nodes:
        if any(id(a) in backward_ids for a in node.args):
            backward_ids.add(id(node))
    grads = joint.outputs[n_outputs:]
    used = [a for n in joint.nodes if id(n) in backward_ids for a in n.args] + grads
    used_by_backward = {id(v): v for v in used if id(v) not in backward_ids}
    residuals = [v for v in used_by_backward.values() if v.op not in _CHEAP_SOURCES]
    forward_nodes = [n for n in joint.nodes if id(n) not in backward_ids]
    forward = dce(Trace(joint.inputs[:n_inputs], forward_nodes, joint.outputs[:n_outputs] + residuals))

    bb = Builder()
    env = copy_inputs(bb, residuals + joint.inputs[n_inputs:])
    replay(bb, [n for n in joint.nodes if id(n) in backward_ids
                or (n.op in _CHEAP_SOURCES and id(n) in used_by_backward)], env)
    return forward, dce(bb.build([env[id(v)] for v in grads]))


def jvp(trace, wrt):
    """Forward mode: inputs `trace.inputs + one tangent per wrt input`, outputs `trace.outputs + one
    tangent per real-float output` (zeros via `fill` where no tangent reaches)."""
    wrt = _check_wrt(trace, wrt)
    active = active_ids(trace.nodes, [trace.inputs[i] for i in wrt], trace.outputs)
    b = Builder()
    env = copy_inputs(b, trace.inputs)
    tangents, loop_maps = {}, {}
    for i in wrt:
        v, t = env[id(trace.inputs[i])], b.input(trace.inputs[i].shape, trace.inputs[i].dtype)
        tangents[id(v)] = b.add(tangents[id(v)], t) if id(v) in tangents else t

    def with_tangent(b, node, args):
        if node.op in LOOP_JVP:
            return LOOP_JVP[node.op](b, node, args, tangents, loop_maps)
        new = b.emit(node.op, *args, **node.params)
        if id(node) in active:
            if node.op not in JVP:
                raise UnsupportedError(f"no JVP rule for op {node.op!r}")
            t = JVP[node.op](b, new, [tangents.get(id(a)) for a in args])
            if t is not None:
                if t.shape != new.shape:
                    t = b.broadcast_to(t, shape=new.shape)
                tangents[id(new)] = _fitted(b, t, new, "tangent")
        return new

    replay(b, trace.nodes, env, with_tangent)
    outputs = [env[id(v)] for v in trace.outputs]
    float_outputs = [v for v in outputs if _is_real_float(v)]
    return b.build(outputs + _or_zeros(b, [tangents.get(id(v)) for v in float_outputs], float_outputs))


def linearize(trace, wrt):
    """Split forward mode: returns `(primal, tangent)`.

    `primal` has `trace`'s inputs and outputs `trace.outputs + residuals`; `tangent` has inputs
    `residuals + one tangent per wrt input` and outputs one tangent per real-float output of `trace`
    (the outputs of `jvp`).  The tangent trace is linear in its tangents: it can run many times on one
    primal run's residuals (the columns of a Jacobian).  Both traces come out optimized.
    """
    joint = optimize(jvp(trace, wrt))
    primal, tangent = _split(joint, len(trace.inputs), len(trace.outputs))
    return primal, optimize(tangent)
