"""EVAL: the NumPy reference evaluation of every op, and the reference executor of whole traces.

A rule is `rule(args, params) -> np.ndarray` on concrete NumPy operands.  This table *defines* what
each op means (DESIGN invariant 3): the tracer computes concrete values with it, and compiled kernels
are tested against it.  `run_trace` executes a trace, raising GuardFailed at the first failing guard.
"""
import numpy as np

from .errors import GuardFailed
from .ops import ELEMENTWISE
from .spec import index_tuple

EVAL = {}


def _ufunc(fn):
    def rule(args, params):
        return np.asarray(fn(*args))
    return rule


for _name, _fn in ELEMENTWISE.items():
    EVAL[_name] = _ufunc(_fn)

EVAL["where"] = lambda args, params: np.asarray(np.where(*args))
EVAL["astype"] = lambda args, params: np.asarray(args[0]).astype(params["dtype"])


def _reduction(fn):
    def rule(args, params):
        return np.asarray(fn(args[0], axis=tuple(params["axis"]), keepdims=params["keepdims"]))
    return rule


for _name, _fn in {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}.items():
    EVAL[_name] = _reduction(_fn)

EVAL["argmax"] = lambda args, params: np.asarray(np.argmax(args[0], axis=params["axis"]))
EVAL["argmin"] = lambda args, params: np.asarray(np.argmin(args[0], axis=params["axis"]))
EVAL["cumsum"] = lambda args, params: np.cumsum(args[0], axis=params["axis"])
EVAL["reshape"] = lambda args, params: np.reshape(args[0], params["shape"])
EVAL["transpose"] = lambda args, params: np.transpose(args[0], params["perm"])
EVAL["broadcast_to"] = lambda args, params: np.broadcast_to(args[0], params["shape"])
EVAL["concatenate"] = lambda args, params: np.concatenate(args, axis=params["axis"])
EVAL["index"] = lambda args, params: np.asarray(args[0][index_tuple(params["spec"], args[1:])])


def _index_set(args, params):
    x, v, *arrays = args
    out = np.array(x, copy=True)
    out[index_tuple(params["spec"], arrays)] = v
    return out


def _index_add(args, params):
    x, v, *arrays = args
    out = np.array(x, copy=True)
    np.add.at(out, index_tuple(params["spec"], arrays), v)
    return out


def _dot_general(args, params):
    x, y = args
    (xc, yc), (xb, yb) = params["contract"], params["batch"]
    xfree = [i for i in range(x.ndim) if i not in xc and i not in xb]
    yfree = [i for i in range(y.ndim) if i not in yc and i not in yb]
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    xs, ys = [None] * x.ndim, [None] * y.ndim
    for i, j in zip(xb, yb):
        xs[i] = ys[j] = next(letters)
    for i, j in zip(xc, yc):
        xs[i] = ys[j] = next(letters)
    for i in xfree:
        xs[i] = next(letters)
    for j in yfree:
        ys[j] = next(letters)
    out = [xs[i] for i in xb] + [xs[i] for i in xfree] + [ys[j] for j in yfree]
    return np.asarray(np.einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y))


EVAL.update(index_set=_index_set, index_add=_index_add, dot_general=_dot_general)
EVAL["const"] = lambda args, params: params["value"]
EVAL["fill"] = lambda args, params: np.full(params["shape"], params["value"], dtype=params["dtype"])
EVAL["input"] = None  # inputs are bound by the executor, never evaluated
EVAL["guard"] = lambda args, params: np.asarray(args[0] == params["expected"])


def evaluate(op, args, params):
    """Evaluate one op on concrete operands, with NumPy's floating-point warnings silenced."""
    with np.errstate(all="ignore"):
        return EVAL[op](args, params)


def run_trace(trace, inputs):
    """Run `trace` on concrete `inputs` with the reference evaluation; return the list of outputs.

    Raises GuardFailed(k) if the k-th guard of the trace does not hold.
    """
    env = {id(v): np.asarray(x) for v, x in zip(trace.inputs, inputs)}
    guard_index = 0
    with np.errstate(all="ignore"):
        for node in trace.nodes:
            vals = [env[id(a)] for a in node.args]
            result = EVAL[node.op](vals, node.params)
            if node.op == "guard":
                if not bool(result):
                    raise GuardFailed(guard_index)
                guard_index += 1
            env[id(node)] = result
    return [env[id(v)] for v in trace.outputs]
