"""The transformation family beyond jit_grad: jvp, vjp, jacobian (jacfwd, jacrev), hessian and hvp.

Each is an api.Transformed: traced, transformed in the IR (ir/autodiff.py), compiled and cached per
signature like jit_grad, and spliced into the enclosing trace when called inside a traced function (so
they compose with each other and with jit_grad).  What each compiles:

  jvp          one kernel: the function and its tangents (autodiff.jvp).
  vjp          the forward kernel (outputs and residuals, guarded, cached) and a backward kernel run by
               the returned vjp_fn, once per cotangent (autodiff.vjp).
  jacobian     one kernel: the primal part (guards, residuals), then a loop op running the tangent
               trace once per input element (fwd, linearize) or the backward trace once per output
               element (rev) on a one-hot direction made from the loop counter.
  hessian      jacobian (forward mode) of jit_grad: one kernel, the gradient's forward and backward
               parts, then a loop of tangent-of-gradient passes, one per input element.
  hvp          one kernel: the jvp of the gradient trace (no Hessian formed).
"""
import functools
import weakref

import numpy as np

from . import backend, persist
from .api import GradFunction, Staged, Transformed, package_gradients
from .ir import Builder, autodiff, passes
from .ir.errors import TraceError, UnsupportedError
from .ir.loops import COUNTER_DTYPE
from .ir.value import Trace
from .nested import replay_traced
from .pytree import flatten, leaf_count, unflatten
from .signature import as_input_array
from .tracer import TracedArray, lift, primal as primal_trace
from .tracing import effect_outputs, function_location, replaying, run_traced, trace_outputs, tree_outputs


# -- helpers shared by the transforms -------------------------------------------------------------------

def _trace_leading(fn, sig, leaves, treedef, n_args):
    """Trace `fn` on the first `n_args` positional arguments of the call (the rest are tangents or
    directions): (ctx, result, number of their dynamic leaves).  Side effects are recorded for replay."""
    args_def, kwargs_def = treedef[2]
    children = args_def[2][:n_args]
    n_leaves = sum(leaf_count(c) for c in children)
    dynamic = [p for p in sig.dynamic if p < n_leaves]
    ctx, result = run_traced(fn, leaves[:n_leaves], (tuple, None, ((tuple, None, children), kwargs_def)), dynamic,
                             replay=True)
    return ctx, result, len(dynamic)


def _with_effects(ctx, target, package, positions=None):
    """(`target`, `package`) extended so that cached calls replay the side effects the traced call made
    (tracing.effect_outputs): the values they store become extra outputs at the end of `target` (their
    nodes replayed from the traced function's trace, whose input i is target's input `positions[i]`;
    default i), and the package replays the effects before making the user's result."""
    primal = ctx.builder.build([])
    values, replay = effect_outputs(ctx, len(target.outputs))
    if replay is None:
        return target, package
    b = Builder()
    env = passes.copy_inputs(b, target.inputs)
    passes.replay(b, target.nodes, env)
    inner = {id(v): b.inputs[p] for v, p in zip(primal.inputs, positions or range(len(primal.inputs)))}
    needed = passes.dce(Trace(primal.inputs, [n for n in primal.nodes if n.op != "guard"], values))
    passes.replay(b, needed.nodes, inner)
    extended = b.build([env[id(o)] for o in target.outputs] + [inner[id(v)] for v in values])
    return passes.optimize(extended), replaying(package, replay)


def _moved_positions(n_dyn, n_env, n_moved):
    """Where the inputs of a trace (n_dyn dynamic leaves, then n_env environment arrays) are in
    `_with_inputs_moved(trace, n_dyn, n_env, n_moved)`."""
    return [*range(n_dyn), *range(n_dyn + n_moved, n_dyn + n_moved + n_env)]


def _with_inputs_moved(trace, n_keep, n_env, n_moved):
    """`trace` (inputs: n_keep, then n_env environment arrays, then n_moved more) with its inputs
    reordered to kept, moved, environment: the order of a call's dynamic leaves then its environment."""
    order = [*range(n_keep), *range(n_keep + n_env, n_keep + n_env + n_moved), *range(n_keep, n_keep + n_env)]
    b = Builder()
    new = [b.input(trace.inputs[i].shape, trace.inputs[i].dtype) for i in order]
    env = {id(trace.inputs[i]): v for i, v in zip(order, new)}
    passes.replay(b, trace.nodes, env)
    return b.build([env[id(o)] for o in trace.outputs])


def _with_an_output(trace):
    """`trace`, given a 0-d output if it has none (e.g. a Jacobian that needs no residuals: its primal
    pass only checks the guards), since kernels return at least one array; packages ignore it."""
    if trace.outputs:
        return trace
    b = Builder()
    zero = b.fill((), np.float64, 0)
    return Trace(trace.inputs, trace.nodes + b.nodes, [zero])


def _check_like(what, fn, given, templates):
    """TraceError unless the leaves `given` have the shapes and dtypes of the leaves `templates`."""
    for k, (g, t) in enumerate(zip(given, templates)):
        g_arr, t_arr = np.asarray(g), np.asarray(t)
        if g_arr.shape != t_arr.shape or g_arr.dtype != t_arr.dtype:
            raise TraceError(f"{what} leaf {k} is {g_arr.dtype}{list(g_arr.shape)}, the primal leaf is "
                             f"{t_arr.dtype}{list(t_arr.shape)}", function_location(fn))


def _tree_of(treedef):
    return treedef[2][0]


class _Outputs:
    """The traced function's returned pytree as trace outputs: `values` (the traced leaves' Values),
    `layout` (reads the tree back), and which of them carry derivatives (the real-float ones; integer
    and boolean ones have zero derivatives; complex ones are refused rather than given zeros)."""

    def __init__(self, result, fn):
        self.values, self.layout = tree_outputs(result)
        if any(v.dtype.kind == "c" for v in self.values):
            raise UnsupportedError(f"{getattr(fn, '__name__', 'the function')} returns a complex value that depends "
                                   "on its inputs: return its real and imaginary parts (np.real, np.imag) instead",
                                   function_location(fn))
        self.kinds = [s[2] for s in self.layout.aux_slots if s[0] == "out"]
        self.float_positions = [k for k, v in enumerate(self.values) if v.dtype.kind == "f"]
        self.leaves = [np.asarray(s[1]) if s[0] == "const" else None for s in self.layout.aux_slots]

    def tree(self, outputs):
        return self.layout.aux(outputs)

    def leaf_slots(self):
        """Per leaf of the tree: the index among the real-float outputs, or None (no derivative)."""
        where = {k: j for j, k in enumerate(self.float_positions)}
        return [where.get(s[1]) if s[0] == "out" else None for s in self.layout.aux_slots]

    def leaf_shape_dtype(self, k):
        s = self.layout.aux_slots[k]
        if s[0] == "out":
            v = self.values[s[1]]
            return v.shape, v.dtype
        return self.leaves[k].shape, self.leaves[k].dtype


def _zeros_like_leaf(shape, dtype, kind):
    """A zero derivative for a leaf without one (a constant or integer output)."""
    dtype = dtype if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    return 0.0 if kind is float else np.zeros(shape, dtype)


class _LazyKernel:
    """A second kernel of a transform (vjp's backward, a Jacobian's tangent pass), compiled on first use."""

    def __init__(self, trace, jit, about):
        self.trace, self.jit, self.about = trace, jit, about
        self._kernel = None

    def __call__(self, inputs):
        if self._kernel is None:
            self._kernel = backend.compile_trace(self.trace, self.jit, self.about)[0]
        return self._kernel(inputs)


def _about(transformed, sig, part):
    return {"function": getattr(transformed.fn, "__qualname__", repr(transformed.fn)),
            "location": function_location(transformed.fn), "signature": sig.description,
            "kind": f"{transformed.kind} {part}"}


def _is_traced(values):
    return any(type(v) is TracedArray for v in values)


# -- jvp ------------------------------------------------------------------------------------------------

class JvpFunction(Transformed):
    """`f`'s forward mode, called as `(*primals, *tangents)`: returns `(out, tangent_out)`."""

    kind = "jvp"

    def __init__(self, fn, n_primals, jit=None, max_traces=8):
        super().__init__(fn, tuple(range(n_primals)) or 0, jit, max_traces)
        self.n_primals = n_primals

    def signature(self, leaves, keys, treedef):
        args_def = _tree_of(treedef)
        n = self.n_primals
        if args_def[2][:n] != args_def[2][n:]:
            raise TraceError(f"jvp of {self.fn.__name__}: the tangents must have the structure of the primals",
                             function_location(self.fn))
        half = len(leaves) // 2
        _check_like("tangent", self.fn, leaves[half:], leaves[:half])
        return super().signature(leaves, keys, treedef)

    def stage(self, sig, leaves, treedef):
        ctx, result, n_dyn = _trace_leading(self.fn, sig, leaves, treedef, self.n_primals)
        outs = _Outputs(result, self.fn)
        trace = ctx.builder.build(outs.values)
        n_env = len(trace.inputs) - n_dyn
        joint = _with_an_output(passes.optimize(_with_inputs_moved(autodiff.jvp(trace, sig.wrt), n_dyn, n_env,
                                                                   len(sig.wrt))))
        n_out = len(outs.values)
        package = _jvp_package(outs, n_out)
        kinds = outs.kinds + [outs.kinds[k] for k in outs.float_positions]
        run, replaying_package = _with_effects(ctx, joint, package, _moved_positions(n_dyn, n_env, len(sig.wrt)))
        return Staged(ctx, run, replaying_package, lambda: (joint, kinds, package), package)


def _jvp_leaves(outs, n_out):
    """Per leaf of the output tree, what its tangent is: (output index, kind) of a leaf with a derivative,
    (None, (shape, dtype, kind)) of one without (a zero tangent).  Worked out once per trace, so the
    cached call's package (`_package_jvp`) only reads the kernel's outputs."""
    plan = []
    for k, (slot, s) in enumerate(zip(outs.leaf_slots(), outs.layout.aux_slots)):
        if slot is not None:
            plan.append((n_out + slot, s[2]))
        else:
            shape, dtype = outs.leaf_shape_dtype(k)
            plan.append((None, (shape, dtype, s[2] if s[0] == "out" else type(s[1]))))
    return tuple(plan)


def _jvp_package(outs, n_out):
    """The jvp's package: (output tree, tangent tree) from the kernel's outputs."""
    layout, plan = outs.layout, _jvp_leaves(outs, n_out)
    if layout.aux_treedef is None and len(plan) == 1 and layout.aux_slots[0][0] == "out" and plan[0][0] is not None:
        _, at, kind = layout.aux_slots[0]       # one traced leaf
        return functools.partial(_package_one, at, kind, *plan[0])
    return functools.partial(_package_jvp, layout, plan)


def _package_jvp(layout, plan, outputs):
    tangents = [_as_kind(kind, outputs[j]) if j is not None else _zeros_like_leaf(*kind) for j, kind in plan]
    return layout.aux(outputs), unflatten(layout.aux_treedef, tangents)


def _package_one(value_at, value_kind, tangent_at, tangent_kind, outputs):
    """_package_jvp of a function returning one traced leaf (a loss): no trees to rebuild, the cached
    call's package is most of its cost beside a short kernel (bench/transforms.py: 1.4 us of 4.5)."""
    return _as_kind(value_kind, outputs[value_at]), _as_kind(tangent_kind, outputs[tangent_at])


def _as_kind(kind, value):
    if type(value) is TracedArray:
        return value
    return np.asarray(value) if kind is np.ndarray else kind(value)


# -- vjp ------------------------------------------------------------------------------------------------

class VjpFunction(Transformed):
    """`f`'s reverse mode, called as `(*primals)`: returns `(out, vjp_fn)`; vjp_fn gives the cotangents
    of the primals `argnums` (default: all), as a tuple."""

    kind = "vjp"

    def __init__(self, fn, n_primals, argnums=None, jit=None, max_traces=8):
        super().__init__(fn, tuple(range(n_primals)) if argnums is None else argnums, jit, max_traces)

    def stage(self, sig, leaves, treedef):
        ctx, result = run_traced(self.fn, leaves, treedef, sig.dynamic, backend.loop_runner(self.jit), replay=True,
                                 bounded=True)      # (tapes are residuals: of a static number of rows)
        outs = _Outputs(result, self.fn)
        forward, backward = autodiff.vjp(ctx.builder.build(outs.values), sig.wrt)
        forward = _with_an_output(forward)
        n_out = len(outs.values)
        n_residuals = len(backward.inputs) - len(outs.float_positions)
        kernel = _LazyKernel(backward, self.jit, _about(self, sig, "backward"))
        package = functools.partial(_package_vjp, self.fn, sig, outs, n_out, n_residuals, backward, kernel)
        kinds = outs.kinds + [np.ndarray] * (len(forward.outputs) - n_out)
        run, replaying_package = _with_effects(ctx, forward, package)
        return Staged(ctx, run, replaying_package, lambda: (forward, kinds, package), package)


def _package_vjp(fn, sig, outs, n_out, n_residuals, backward, kernel, outputs):
    return outs.tree(outputs), VjpFn(fn, sig, outs, backward, kernel, list(outputs[n_out:n_out + n_residuals]))


class VjpFn:
    """The `vjp_fn` of `jitgrad.vjp`: `vjp_fn(cotangent)` (structured like `out`) returns one cotangent
    per primal, as a tuple.  Each call runs the compiled backward kernel once on the saved residuals."""

    def __init__(self, fn, sig, outs, backward, kernel, residuals):
        self.fn, self.sig, self.outs = fn, sig, outs
        self.backward, self.kernel, self.residuals = backward, kernel, residuals

    def __call__(self, cotangent):
        leaves, treedef = flatten(cotangent)
        if treedef != self.outs.layout.aux_treedef:
            raise TraceError(f"vjp_fn of {self.fn.__name__}: the cotangent must have the structure of the "
                             "function's output", function_location(self.fn))
        cts = []
        for slot, s, leaf in zip(self.outs.leaf_slots(), self.outs.layout.aux_slots, leaves):
            if slot is not None:
                value = self.outs.values[s[1]]
                ct = leaf if type(leaf) is TracedArray else np.asarray(leaf, dtype=value.dtype)
                if np.shape(ct) != value.shape:
                    raise TraceError(f"vjp_fn of {self.fn.__name__}: cotangent of shape {np.shape(ct)} for an "
                                     f"output of shape {value.shape}", function_location(self.fn))
                cts.append(ct)
        inputs = self.residuals + cts
        if _is_traced(inputs):   # inside a traced function: the backward trace joins it
            values = [v.value if type(v) is TracedArray else v for v in inputs]
            grads = replay_traced(self.backward, [lift(v) for v in inputs], [as_input_array(v) for v in values],
                                  [type(t) for _, ts in self.sig.grad_trees for t in ts])
        else:
            grads = self.kernel([as_input_array(v) for v in inputs])
        return package_gradients(self.sig, grads, True)


# -- jacobian -------------------------------------------------------------------------------------------

_NUMPY_OPS = (np.transpose, np.reshape, np.zeros)


def _ir_ops(b):
    """(stack, reshape, zeros) on IR Values of builder `b`."""
    def stack(values, axis):
        axis = axis if axis >= 0 else values[0].ndim + 1 + axis
        shape = lambda v: v.shape[:axis] + (1,) + v.shape[axis:]   # noqa: E731
        return b.concatenate(*[b.reshape(v, shape=shape(v)) for v in values], axis=axis)
    return stack, lambda v, shape: b.reshape(v, shape=tuple(shape)), lambda shape, dtype: b.fill(shape, dtype, 0)


class JacobianFunction(Transformed):
    """`f`'s Jacobian with respect to `argnums`, by forward or reverse passes (see `jacobian`)."""

    kind = "jacobian"
    runtime_ints = True

    def __init__(self, fn, argnums=0, mode="auto", jit=None, max_traces=8):
        if mode not in ("auto", "fwd", "rev"):
            raise TraceError(f"jacobian mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
        super().__init__(fn, argnums, jit, max_traces)
        self.mode = mode

    def stage(self, sig, leaves, treedef, traced=None):
        ctx, result = traced or run_traced(self.fn, leaves, treedef, sig.dynamic, backend.loop_runner(self.jit),
                                           replay=True, sizes=sig.ints)
        outs = _Outputs(result, self.fn)
        trace = primal_trace(ctx, outs.values, traced is not None)
        in_values = [trace.inputs[i] for i in sig.wrt]
        out_values = [outs.values[k] for k in outs.float_positions]
        n_in, n_out = sum(v.size for v in in_values), sum(v.size for v in out_values)
        forward_mode = self.mode == "fwd" or self.mode == "auto" and n_in <= n_out
        if forward_mode:
            primal, passes_trace = autodiff.linearize(trace, sig.wrt)
            basis_like = in_values
        else:
            primal, passes_trace = autodiff.vjp(trace, sig.wrt)
            basis_like = out_values
        n_trace_out = len(trace.outputs)
        primal = _with_an_output(passes.dce(Trace(primal.inputs, primal.nodes, primal.outputs[n_trace_out:])))
        n_residuals = len(passes_trace.inputs) - len(basis_like)
        layout = _JacobianLayout(sig, outs, forward_mode, basis_like, self._tuple_argnums)
        joint = _with_an_output(_passes_in_loop(primal, passes_trace, n_residuals, basis_like))

        def package(stacked):
            return layout.tree(layout.blocks(lambda k, start, count: stacked[k][start:start + count], _NUMPY_OPS))

        def splice_form():
            b = Builder()
            env = passes.copy_inputs(b, primal.inputs)
            passes.replay(b, primal.nodes, env)
            residuals = [env[id(v)] for v in primal.outputs[:n_residuals]]

            def run(directions):
                extra = [b.const(d) for d in directions]
                inner = {id(v): r for v, r in zip(passes_trace.inputs, residuals + extra)}
                passes.replay(b, passes_trace.nodes, inner)
                return [inner[id(o)] for o in passes_trace.outputs]
            results = [run(directions) for directions in layout.passes()]
            stack, reshape, zeros = _ir_ops(b)

            def gather(k, start, count):
                return stack([results[p][k] for p in range(start, start + count)], 0)
            transpose = lambda v, perm: b.transpose(v, perm=tuple(perm))   # noqa: E731
            blocks = layout.blocks(gather, (transpose, reshape, zeros))
            flat = passes.optimize(b.build(blocks))
            return flat, [np.ndarray] * len(blocks), layout.tree
        return Staged(ctx, *_with_effects(ctx, joint, package), splice_form, package, result)


def _passes_in_loop(primal, passes_trace, n_residuals, basis_like):
    """One trace for a whole Jacobian: `primal` (the guards, the residuals), then a loop op running
    `passes_trace` once per basis direction (pass p: a one-hot of element p over the `basis_like`
    values, made from the loop counter), its outputs stacked by pass.  So the passes run inside one
    kernel, not as one kernel call each from Python."""
    b = Builder()
    env = passes.copy_inputs(b, primal.inputs)
    passes.replay(b, primal.nodes, env)
    residuals = [env[id(v)] for v in primal.outputs[:n_residuals]]
    trip = sum(v.size for v in basis_like)
    loop = b.emit("loop", *residuals, body=_one_pass(passes_trace, n_residuals, basis_like), trip=trip, n_carry=0)
    return b.build([b.loop_result(loop, index=k) for k in range(len(passes_trace.outputs))])


def _one_pass(passes_trace, n_residuals, basis_like):
    """The loop body of `_passes_in_loop`: inputs (counter, residuals), outputs those of `passes_trace`
    on the counter's basis direction."""
    b = Builder()
    counter = b.input((), COUNTER_DTYPE)
    inner = passes.copy_inputs(b, passes_trace.inputs[:n_residuals])
    start = 0
    for v, like in zip(passes_trace.inputs[n_residuals:], basis_like):
        elements = b.const(np.arange(start, start + like.size, dtype=COUNTER_DTYPE).reshape(like.shape))
        inner[id(v)] = b.astype(b.equal(elements, counter), dtype=like.dtype)
        start += like.size
    passes.replay(b, passes_trace.nodes, inner)
    return passes.optimize(b.build([inner[id(o)] for o in passes_trace.outputs]))


class _JacobianLayout:
    """Where a Jacobian's entries come from: the basis directions of the passes (one per input element
    in forward mode, per output element in reverse mode) and the blocks (one per output leaf and input
    leaf, shaped output shape + input shape) assembled from the passes' results."""

    def __init__(self, sig, outs, forward_mode, basis_like, as_tuple):
        self.sig, self.outs, self.forward_mode, self.as_tuple = sig, outs, forward_mode, as_tuple
        self.basis_like = basis_like
        self.in_shapes = [(np.shape(t), np.asarray(t).dtype) for _, ts in sig.grad_trees for t in ts]
        self.out_shapes = [outs.leaf_shape_dtype(k) for k in range(len(outs.layout.aux_slots))]

    def passes(self):
        """The basis directions, one pass at a time: a list of one array per `basis_like` Value, with a
        single 1.  The arrays are reused from pass to pass (a kernel does not keep its inputs): memory
        stays linear in the size, not quadratic."""
        buffers = [np.zeros(v.shape, v.dtype) for v in self.basis_like]
        for buffer in buffers:
            flat = buffer.reshape(-1)
            for i in range(flat.size):
                flat[i] = 1
                yield buffers
                flat[i] = 0

    def blocks(self, gather, ops):
        """The flat list of Jacobian blocks (output leaf major).  `gather(k, start, count)` is output k
        of the passes start .. start + count - 1, stacked along a new leading axis; `ops` are
        (transpose, reshape, zeros) on arrays or IR values."""
        transpose, reshape, zeros = ops
        slots = self.outs.leaf_slots()
        in_sizes = [int(np.prod(s, dtype=np.int64)) for s, _ in self.in_shapes]
        pass_sizes = [v.size for v in self.basis_like]
        blocks = []
        for (out_shape, out_dtype), slot in zip(self.out_shapes, slots):
            for b, (in_shape, in_dtype) in enumerate(self.in_shapes):
                shape = tuple(out_shape) + tuple(in_shape)
                if slot is None:
                    blocks.append(zeros(shape, np.result_type(in_dtype, out_dtype) if out_dtype.kind == "f"
                                        else in_dtype))
                elif self.forward_mode:   # pass p = input element: its output tangents are a column
                    columns = gather(slot, sum(in_sizes[:b]), in_sizes[b])
                    blocks.append(reshape(transpose(columns, [*range(1, len(out_shape) + 1), 0]), shape))
                else:                     # pass p = output element: its cotangents are a row
                    blocks.append(reshape(gather(b, sum(pass_sizes[:slot]), pass_sizes[slot]), shape))
        return blocks

    def tree(self, blocks):
        n_in = len(self.in_shapes)
        per_output = [package_gradients(self.sig, [_as_kind(np.ndarray, v) for v in blocks[a * n_in:(a + 1) * n_in]],
                                        self.as_tuple, keep_arrays=True)
                      for a in range(len(self.out_shapes))]
        return unflatten(self.outs.layout.aux_treedef, per_output)


# -- hvp ------------------------------------------------------------------------------------------------

class HvpFunction(Transformed):
    """Hessian-vector products of scalar `f`, called as `(*args, v)` with `v` structured like the
    arguments `argnums`: the jvp of the gradient trace, one kernel, no Hessian formed."""

    kind = "hvp"

    def signature(self, leaves, keys, treedef):
        args_def = _tree_of(treedef)
        n = len(args_def[2]) - 1
        if treedef[2][1][2]:
            raise TraceError(f"hvp of {self.fn.__name__}: pass every argument positionally",
                             function_location(self.fn))
        argnums = tuple(a % n if -n <= a < n else a for a in self.argnums)
        valid = n >= 1 and all(0 <= a < n for a in argnums)
        if not valid or args_def[2][n] != ((tuple, None, tuple(args_def[2][a] for a in argnums))
                                           if self._tuple_argnums else args_def[2][argnums[0]]):
            raise TraceError(f"hvp of {self.fn.__name__}: call it as hvp(f)(*args, v) with v structured like the "
                             f"argument(s) {self.argnums}", function_location(self.fn))
        from .api import Signature
        sig = Signature(self.fn, leaves, keys, treedef, argnums)
        wrt_leaves = [t for _, ts in sig.grad_trees for t in ts]
        _check_like("direction", self.fn, leaves[len(leaves) - len(wrt_leaves):], wrt_leaves)
        return sig

    def stage(self, sig, leaves, treedef):
        n_args = len(_tree_of(treedef)[2]) - 1
        ctx, result, n_dyn = _trace_leading(self.fn, sig, leaves, treedef, n_args)
        outputs, _ = trace_outputs(ctx, result, False, self.fn)
        joint = autodiff.value_and_grad(ctx.builder.build(outputs), sig.wrt, out=0)
        gradient = passes.optimize(Trace(joint.inputs, joint.nodes, joint.outputs[1:]))
        tangent = autodiff.jvp(gradient, sig.wrt)
        tangent = Trace(tangent.inputs, tangent.nodes, tangent.outputs[len(sig.wrt):])
        n_env = len(gradient.inputs) - n_dyn
        trace = passes.optimize(passes.dce(_with_inputs_moved(tangent, n_dyn, n_env, len(sig.wrt))))
        package = functools.partial(package_gradients, sig, as_tuple=self._tuple_argnums)
        kinds = [type(t) for _, ts in sig.grad_trees for t in ts]
        run, replaying_package = _with_effects(ctx, trace, package, _moved_positions(n_dyn, n_env, len(sig.wrt)))
        if replaying_package is package and not self._tuple_argnums and _one_array(sig):
            replaying_package = persist.only_output      # H v is the kernel's one output, as it comes
        return Staged(ctx, run, replaying_package, lambda: (trace, kinds, package), package)


def _one_array(sig):
    """True if the differentiated arguments are one plain ndarray (its gradient-shaped result is then
    the kernel's output itself)."""
    trees = sig.grad_trees
    return len(trees) == 1 and trees[0][0] is None and len(trees[0][1]) == 1 and type(trees[0][1][0]) is np.ndarray


# -- the public functions -------------------------------------------------------------------------------

_per_function = weakref.WeakKeyDictionary()   # fn -> {(transform, params): Transformed} for jvp / vjp
_last = [None]      # (weak reference to fn, key, Transformed) of the last lookup: a loop calling jvp(fn, ...)
                    # skips the weak dictionary (a weak reference made per lookup: 0.4 of a 4 us call)


def _transform_of(fn, cls, *params):
    """The Transformed `cls(fn, *params)` kept for `fn` (so that repeated jvp/vjp calls hit its cache)."""
    key, last = (cls, params), _last[0]
    if last is not None and last[0]() is fn and last[1] == key:
        return last[2]
    if not callable(fn):
        raise TraceError(f"expected a function to transform, got {type(fn).__name__}")
    try:
        per_fn = _per_function.setdefault(fn, {})
    except TypeError:                      # not weakly referenceable: a fresh transform (traced each call)
        return cls(fn, *params)
    if key not in per_fn:
        per_fn[key] = cls(fn, *params)
    _last[0] = (weakref.ref(fn), key, per_fn[key])
    return per_fn[key]


def jvp(fn, primals, tangents):
    """Forward mode: `(fn(*primals), tangent of the output along tangents)`.

    `primals` and `tangents` are tuples (or lists) of arguments, tangents structured like the primals
    with the same shapes and dtypes; every primal is differentiated.  Outputs may be any pytree of
    arrays and floats; leaves that do not depend on the primals get zero tangents.  Compiled (one
    kernel) and cached per signature for `fn`."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TraceError("jvp(fn, primals, tangents): primals and tangents must be tuples of arguments")
    if len(primals) != len(tangents):
        raise TraceError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    return _transform_of(fn, JvpFunction, len(primals))(*primals, *tangents)


def vjp(fn, *primals):
    """Reverse mode: `(fn(*primals), vjp_fn)`; `vjp_fn(cotangent)`, with the cotangent structured like
    the output, returns a tuple of one cotangent per primal.  The forward kernel runs once; vjp_fn runs
    a compiled backward kernel on its saved residuals, as many times as it is called."""
    return _transform_of(fn, VjpFunction, len(primals))(*primals)


def jacobian(fn=None, argnums=0, mode="auto", *, jit=None, max_traces=8):
    """The Jacobian of `fn` w.r.t. `argnums`: for an output leaf of shape S and an input leaf of shape T
    a block of shape S + T, structured as the output tree of (tuples over argnums of) input trees.

    mode "fwd": the primal, then one tangent pass per input element; "rev": the forward part, then one
    backward pass per output element; "auto" picks the fewer passes.  One compiled kernel runs them
    all (the passes are a loop in it).  Usable as a decorator."""
    if fn is None:
        return lambda f: JacobianFunction(f, argnums, mode, jit, max_traces)
    return JacobianFunction(fn, argnums, mode, jit, max_traces)


def jacfwd(fn=None, argnums=0, *, jit=None, max_traces=8):
    """`jacobian(fn, argnums, mode="fwd")`."""
    return jacobian(fn, argnums, "fwd", jit=jit, max_traces=max_traces)


def jacrev(fn=None, argnums=0, *, jit=None, max_traces=8):
    """`jacobian(fn, argnums, mode="rev")`."""
    return jacobian(fn, argnums, "rev", jit=jit, max_traces=max_traces)


def hessian(fn=None, argnums=0, *, jit=None, max_traces=8):
    """The Hessian of scalar `fn` w.r.t. `argnums`: forward over reverse, the forward-mode Jacobian of
    `jit_grad(fn, argnums)`: one kernel computing the gradient's residuals, then looping over one
    tangent pass per input element."""
    if fn is None:
        return lambda f: hessian(f, argnums, jit=jit, max_traces=max_traces)
    grad = GradFunction(fn, argnums, False, False, jit, max_traces)
    return JacobianFunction(grad, argnums, "fwd", jit, max_traces)


def hvp(fn=None, argnums=0, *, jit=None, max_traces=8):
    """Hessian-vector products: `hvp(fn)(*args, v)` is H v, H the Hessian of scalar `fn` w.r.t.
    `argnums` and `v` structured like those arguments.  One kernel: the forward-mode derivative of the
    gradient trace along v; the Hessian is never formed."""
    if fn is None:
        return lambda f: HvpFunction(f, argnums, jit, max_traces)
    return HvpFunction(fn, argnums, jit, max_traces)
