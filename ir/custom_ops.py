"""custom_call: an op whose meaning is a Python function the tracer cannot see into (an opaque compiled
routine, a user's derivative rule), carried as the param `rule`.

A rule object has `name` (unique; the printed form of the param, by which the parser finds it in
RULES), `out` (the result's (shape, dtype)), `evaluate(arrays) -> ndarray`, `vjp(b, node, g)` (one
cotangent per operand, as VJP rules give) and `jvp(b, node, tangents)` (as JVP rules).  Derivative rules
usually emit further custom_call nodes (jitgrad/custom.py builds the rules of `jitgrad.custom_vjp`).
The JIT runs custom_call as a host call (no native lowering), so kernels call back into the function.
"""
import numpy as np

RULES = {}   # name -> rule


class CustomRule:
    """Base of custom_call rules: registers itself under its unique `name`, which is also its repr."""

    def __init__(self, name, out):
        self.name = name
        self.out = (tuple(out[0]), np.dtype(out[1]))
        RULES[name] = self

    def __repr__(self):
        return self.name


def shape(args, params):
    return params["rule"].out


def evaluate(args, params):
    shape_, dtype = params["rule"].out
    result = np.asarray(params["rule"].evaluate(list(args)), dtype=dtype)
    if result.shape != shape_:
        raise ValueError(f"{params['rule'].name} returned shape {result.shape}, expected {shape_}")
    return result


def vjp(b, node, g):
    return node.params["rule"].vjp(b, node, g)


def jvp(b, node, tangents):
    return node.params["rule"].jvp(b, node, tangents)
