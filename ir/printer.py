"""The stable text form of traces (the parser in `parser.py` is its inverse).

    trace (%0: f64[3], %1: f32[]) {
      %2 = multiply %0, %0 : f64[3]
      %3 = sum %2 {axis=(0,), keepdims=False} : f64[]
      %4 = const {value=[1.0, 2.0]} : f64[2]
      %5 = guard %3 {expected=True, loc='f.py:3', why='if x > 0'} : b1[]
      return %3, %0
    }

A loop node prints its params but its body, then the body as a nested trace indented under it (its own
names, from %0); its type is `loop` (a tuple of results, read by `loop_result`).  A cond node prints its
two branches so, the true one first; its type is `cond`:

      %5 = loop %1, %2 {trip=100, n_carry=1} : loop
        trace (%0: i64[], %1: f64[], %2: f64[3]) {
          ...
        }
A loop of a run-time trip count prints `trip=None` (its count is its last operand) and its stacked
results' run-time number of rows as `?`: `f64[?,2]`.
      %6 = cond %3, %1 : cond
        trace (%0: f64[]) {
          ...
        }
        trace (%0: f64[]) {
          ...
        }

Values are named %0, %1, ... in order: inputs, then nodes.  Params print in the order `ops.PARAMS`
lists them, as Python literals; dtypes print by their short name (f64, i32, b1, c128...); a const's
value prints as its nested list of Python scalars (`repr` of a float is exact), its shape and dtype
come from the type after the colon; NaN and infinities print as `nan` and `inf`, complex numbers as
`complex(re, im)` (which keeps the sign of a zero part).
"""
import numpy as np

from .errors import IRError
from .loops import RUNTIME_ROWS
from .ops import DEFAULT_PARAMS, PARAMS, TUPLE, owned_traces

_BOOL_NAME = "b1"


def dtype_name(dtype):
    """The short name of a numpy dtype: f64, f32, i64, u8, b1, c128..."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return _BOOL_NAME
    if dtype.kind not in "fiuc":
        raise IRError(f"dtype {dtype} has no short name in the IR text form")
    return f"{dtype.kind}{dtype.itemsize * 8}"


def parse_dtype_name(name):
    """The numpy dtype of a short name (the inverse of `dtype_name`); IRError when it is not one."""
    if name == _BOOL_NAME:
        return np.dtype(bool)
    kind, bits = name[:1], name[1:]
    if kind not in ("f", "i", "u", "c") or not bits.isdigit() or int(bits) % 8:
        raise IRError(f"unknown dtype name {name!r}")
    return np.dtype(f"{kind}{int(bits) // 8}")


TUPLE_TYPES = ("loop", "cond")      # the printed types of the tuples of results: the op's name


def type_text(shape, dtype, op="loop"):
    """`f64[2,3]`: the printed type of a value of `shape` and `dtype` (a tuple's: the name of its op)."""
    if dtype == TUPLE:
        return op
    return f"{dtype_name(dtype)}[{','.join('?' if d == RUNTIME_ROWS else str(d) for d in shape)}]"


class _Bare:
    """A token printed without quotes (a dtype's short name)."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def _plain(value):
    """`value` turned into Python literals (and bare dtype names) whose repr is the printed form."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist()) if value.dtype.kind == "c" else value.tolist()
    if isinstance(value, complex):
        return _Bare(f"complex({value.real!r}, {value.imag!r})")
    if isinstance(value, np.dtype):
        return _Bare(dtype_name(value))
    if isinstance(value, type) and issubclass(value, np.generic):
        return _Bare(dtype_name(value))
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def format_value(value):
    """The printed form of one param value."""
    return repr(_plain(value))


_NESTED_PARAMS = ("body", "branches")    # printed as nested traces after the node's line, not as params


def format_params(op, params):
    """`{axis=(0,), keepdims=False}` (empty string when the op takes no params)."""
    names = list(PARAMS.get(op, ())) + sorted(set(params) - set(PARAMS.get(op, ())))
    defaults = DEFAULT_PARAMS.get(op, {})
    names = [k for k in names if k in params and k not in _NESTED_PARAMS
             and not (k in defaults and params[k] is defaults[k])]
    if not names:
        return ""
    return "{" + ", ".join(f"{k}={format_value(params[k])}" for k in names) + "}"


def format_trace(trace):
    """The text form of `trace` (stable: equal traces print identically)."""
    return "\n".join(_trace_lines(trace, ""))


def _trace_lines(trace, indent):
    names = {}

    def name(v):
        if id(v) not in names:
            raise IRError(f"value {v!r} is not an input or node of the trace")
        return names[id(v)]

    for v in list(trace.inputs) + list(trace.nodes):
        names.setdefault(id(v), f"%{len(names)}")
    lines = [indent + "trace (" + ", ".join(f"{name(v)}: {type_text(v.shape, v.dtype)}" for v in trace.inputs)
             + ") {"]
    for node in trace.nodes:
        operands = ", ".join(name(a) for a in node.args)
        params = format_params(node.op, node.params)
        body = " ".join(part for part in (node.op, operands, params) if part)
        lines.append(f"{indent}  {name(node)} = {body} : {type_text(node.shape, node.dtype, node.op)}")
        for owned in owned_traces(node):
            lines.extend(_trace_lines(owned, indent + "    "))
    lines.append((indent + "  return " + ", ".join(name(v) for v in trace.outputs)).rstrip())
    lines.append(indent + "}")
    return lines
