"""The trace text form (printer and parser) and the verifier."""
import numpy as np
import pytest

from jitgrad.ir import Builder, IRError, Trace, Value, run_trace
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import dtype_name, format_trace, parse_dtype_name
from jitgrad.ir.verify import verify
from jitgrad.ir.shapes import broadcast_shapes

from op_cases import CASES, make_inputs

EXAMPLE = """\
trace (%0: f64[3], %1: f32[]) {
  %2 = multiply %0, %0 : f64[3]
  %3 = sum %2 {axis=(0,), keepdims=False} : f64[]
  %4 = const {value=[1.0, 2.0]} : f64[2]
  %5 = greater %3, %1 : b1[]
  %6 = guard %5 {expected=True, loc='f.py:3', why='if x > 0'} : b1[]
  %7 = fill {shape=(2, 2), dtype=f32, value=0.5} : f32[2,2]
  %8 = astype %0 {dtype=i64} : i64[3]
  return %3, %0
}"""


def one_op_trace(case, rng):
    """A trace applying the case's op once to fresh inputs of the case's operand types."""
    args = make_inputs(case, rng, np.float64)
    b = Builder()
    inputs = [b.input(a.shape, a.dtype) for a in args]
    out = b.emit(case.op, *inputs, **case.params)
    return b.build([out]), args


def test_example_prints_as_written():
    b = Builder()
    x, y = b.input((3,), np.float64), b.input((), np.float32)
    s = b.sum(b.multiply(x, x), axis=(0,), keepdims=False)
    b.const(np.array([1.0, 2.0]))
    b.guard(b.greater(s, y), True, loc="f.py:3", why="if x > 0")
    b.fill((2, 2), np.float32, 0.5)
    b.astype(x, dtype=np.dtype(np.int64))
    trace = b.build([s, x])
    assert format_trace(trace) == EXAMPLE
    assert str(trace) == EXAMPLE


def test_example_parses_back():
    trace = parse_trace(EXAMPLE)
    assert format_trace(trace) == EXAMPLE
    assert [n.op for n in trace.nodes] == ["multiply", "sum", "const", "greater", "guard", "fill", "astype"]
    assert trace.outputs[1] is trace.inputs[1 - 1]
    verify(trace)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_round_trip_every_op(case):
    rng = np.random.default_rng(0)
    trace, args = one_op_trace(case, rng)
    text = format_trace(trace)
    parsed = parse_trace(text)
    assert format_trace(parsed) == text
    verify(parsed)
    (expected,), (got,) = run_trace(trace, args), run_trace(parsed, args)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize("values", [
    np.array([0.1, 1 / 3, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308]),
    np.array([[0.1, 1 / 3], [-0.0, np.nan]], dtype=np.float32),
    np.array([1e-7, 65504.0, -0.0], dtype=np.float16),
    np.array([-128, 127], dtype=np.int8),
    np.array([0, 255], dtype=np.uint8),
    np.array([2**63 - 1, -2**63], dtype=np.int64),
    np.array([True, False]),
    np.array([1 + 2j, complex(np.nan, -0.0), complex(-np.inf, 0.1)]),
    np.array(0.30000000000000004),
    np.zeros((0, 3)),
])
def test_const_round_trips_bit_exactly(values):
    b = Builder()
    c = b.const(values)
    parsed = parse_trace(format_trace(b.build([c])))
    got = parsed.outputs[0].params["value"]
    assert got.dtype == values.dtype and got.shape == values.shape
    assert got.tobytes() == values.tobytes()


def test_dtype_names():
    names = {np.float64: "f64", np.float32: "f32", np.float16: "f16", np.int64: "i64", np.int32: "i32",
             np.int8: "i8", np.uint8: "u8", np.bool_: "b1", np.complex128: "c128", np.complex64: "c64"}
    for dtype, name in names.items():
        assert dtype_name(dtype) == name
        assert parse_dtype_name(name) == np.dtype(dtype)
    with pytest.raises(IRError):
        parse_dtype_name("x32")
    with pytest.raises(IRError):
        dtype_name(np.dtype("datetime64[s]"))


def test_params_print_in_catalogue_order():
    b = Builder()
    x = b.input((2, 3), np.float64)
    b.emit("sum", x, keepdims=True, axis=(1,))
    assert "{axis=(1,), keepdims=True}" in format_trace(b.build([]))


def test_string_params_with_separators_round_trip():
    b = Builder()
    x = b.input((), np.bool_)
    b.guard(x, False, loc="a.py:1", why="x : {weird}, 'quoted' \\ %1")
    text = format_trace(b.build([x]))
    assert format_trace(parse_trace(text)) == text
    assert parse_trace(text).nodes[0].params["why"] == "x : {weird}, 'quoted' \\ %1"


@pytest.mark.parametrize("text, message", [
    ("trace (%0: f64[3]) {\n  %1 = exp %2 : f64[3]\n  return %1\n}", "used before it is defined"),
    ("trace (%0: f64[3]) {\n  %1 = exp %0 : f64[4]\n  return %1\n}", "written type"),
    ("trace (%0: f64[3]) {\n  %1 = exp %0 : f32[3]\n  return %1\n}", "written type"),
    ("trace (%0: f64[3]) {\n  %1 = frobnicate %0 : f64[3]\n  return %1\n}", "unknown op"),
    ("trace (%0: f64[3]) {\n  %1 = sum %0 {axis=(0,)} : f64[]\n  return %1\n}", "takes params"),
    ("trace (%0: f64[3]) {\n  %1 = sum %0 {axis=(0,), keepdims=Fals} : f64[]\n  return %1\n}", "dtype name"),
    ("trace (%0: f64[3]) {\n  %1 = exp %0\n  return %1\n}", "type"),
    ("trace (%0: f64[3]) {\n  %0 = exp %0 : f64[3]\n  return %0\n}", "defined twice"),
    ("trace (%0: f64[3]) {\n  return %7\n}", "used before it is defined"),
    ("trace (%0: q64[3]) {\n  return %0\n}", "dtype name"),
    ("%1 = exp %0 : f64[3]", "a trace is"),
])
def test_parse_errors(text, message):
    with pytest.raises(IRError, match=message):
        parse_trace(text)


def test_parse_error_names_the_line():
    with pytest.raises(IRError, match="line 3"):
        parse_trace("trace (%0: f64[3]) {\n  %1 = exp %0 : f64[3]\n  %2 = log %9 : f64[3]\n  return %2\n}")


def test_parse_accepts_any_value_names_and_no_outputs():
    trace = parse_trace("trace (%x: f64[2]) {\n  %y = exp %x : f64[2]\n  return\n}")
    assert trace.outputs == [] and [n.op for n in trace.nodes] == ["exp"]
    assert format_trace(trace) == "trace (%0: f64[2]) {\n  %1 = exp %0 : f64[2]\n  return\n}"


# ---- verifier ------------------------------------------------------------------------------------

def small_trace():
    b = Builder()
    x = b.input((3,), np.float64)
    e = b.exp(x)
    s = b.sum(e, axis=(0,), keepdims=False)
    return b.build([s]), x, e, s


def test_verify_accepts_well_formed_traces():
    trace, *_ = small_trace()
    verify(trace)
    verify(parse_trace(EXAMPLE))


def test_verify_rejects_use_before_definition():
    trace, x, e, s = small_trace()
    with pytest.raises(IRError, match="not defined before"):
        verify(Trace(trace.inputs, [s, e], [s]))


def test_verify_rejects_foreign_operand():
    trace, x, e, s = small_trace()
    other = Builder().input((3,), np.float64)
    bad = Value("exp", (other,), {}, (3,), np.dtype(np.float64))
    with pytest.raises(IRError, match="not defined before"):
        verify(Trace(trace.inputs, trace.nodes + [bad], [s]))


def test_verify_rejects_wrong_params():
    trace, x, e, s = small_trace()
    bad = Value("sum", (e,), {"axis": (0,)}, (), np.dtype(np.float64))
    with pytest.raises(IRError, match="params"):
        verify(Trace(trace.inputs, [e, bad], [bad]))
    extra = Value("exp", (x,), {"fast": True}, (3,), np.dtype(np.float64))
    with pytest.raises(IRError, match="params"):
        verify(Trace(trace.inputs, [extra], [extra]))


@pytest.mark.parametrize("shape, dtype", [((3,), np.float64), ((), np.float32)])
def test_verify_rejects_wrong_type(shape, dtype):
    trace, x, e, s = small_trace()
    bad = Value("sum", (e,), {"axis": (0,), "keepdims": False}, shape, np.dtype(dtype))
    with pytest.raises(IRError, match="shape rule gives"):
        verify(Trace(trace.inputs, [e, bad], [bad]))


def test_verify_rejects_invalid_operands():
    trace, x, e, s = small_trace()
    bad = Value("reshape", (e,), {"shape": (2, 2)}, (2, 2), np.dtype(np.float64))
    with pytest.raises(IRError, match="cannot reshape"):
        verify(Trace(trace.inputs, [e, bad], [bad]))


def test_verify_rejects_wrong_input_index():
    b = Builder()
    x, y = b.input((), np.float64), b.input((), np.float64)
    with pytest.raises(IRError, match="index"):
        verify(Trace([y, x], [], [x]))


def test_verify_rejects_unknown_output_and_repeated_node():
    trace, x, e, s = small_trace()
    stray = Builder().input((), np.float64)
    with pytest.raises(IRError, match="output 1"):
        verify(Trace(trace.inputs, trace.nodes, [s, stray]))
    with pytest.raises(IRError, match="twice"):
        verify(Trace(trace.inputs, [e, e, s], [s]))


def test_verify_rejects_input_op_among_nodes():
    trace, x, e, s = small_trace()
    with pytest.raises(IRError, match="not allowed"):
        verify(Trace([], [x, e, s], [s]))


def test_shape_rules_broadcast_and_index_as_numpy_does():
    """The shape rules' own broadcasting and their cached index shapes agree with NumPy, errors
    included (an index entry True is not the entry 1)."""
    rng = np.random.default_rng(3)
    for _ in range(3000):
        shapes = [tuple(int(d) for d in rng.integers(0, 4, rng.integers(0, 4))) for _ in range(rng.integers(1, 4))]
        try:
            expected = np.broadcast_shapes(*shapes)
        except ValueError:
            with pytest.raises(IRError, match="do not broadcast"):
                broadcast_shapes(shapes)
        else:
            assert broadcast_shapes(shapes) == expected
    b = Builder()
    x = b.input((3, 4), np.float64)
    assert b.index(x, spec=(("int", 1),)).shape == (4,)
    assert b.index(x, spec=(("int", True),)).shape == np.zeros((3, 4))[True].shape == (1, 3, 4)
    with pytest.raises(IRError, match="bad index"):
        b.index(x, spec=(("int", 5),))
