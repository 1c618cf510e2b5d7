"""The op spec (ir/ops.py) and the tables that assert their completeness against it: a scratch spec with a
fake op shows each check naming what is missing, and a fake op the JIT cannot lower natively runs as a
clean host call when its spec says `host`, and is refused with a clear LoweringUnsupported otherwise
(never a KeyError)."""
import numpy as np
import pytest

from jitgrad.ir import EVAL, SHAPE, Builder, IRError, Trace, Value, run_trace
from jitgrad.ir import builder as builder_module
from jitgrad.ir import jvp, ops, vjp
from jitgrad.ir.ops import FAMILIES, SPECS, OpSpec, check_table, define
from jitgrad.ir.verify import verify
from jitgrad.jit import LoweringUnsupported, compile_trace
from jitgrad.jit import rules, scalar_ops
from jitgrad.jit.plan import ALIGNED_OPS, Plan


def scratch(**fields):
    """A copy of the spec with the fake elementwise op `fake_cbrt` (np.cbrt) defined in it."""
    specs = dict(SPECS)
    define("fake_cbrt", "ufunc", arity=1, numpy=np.cbrt, specs=specs, **fields)
    return specs


def test_every_op_has_one_spec_and_the_views_follow_it():
    assert all(isinstance(s, OpSpec) and s.name == op and s.family in FAMILIES for op, s in SPECS.items())
    assert ops.PARAMS == {op: s.params for op, s in SPECS.items()}
    assert ops.DEFAULT_PARAMS == {"loop": {"exit": None}}
    assert all(set(s.defaults) <= set(s.params) for s in SPECS.values())
    assert set(ops.UNARY) | set(ops.BINARY) == {op for op, s in SPECS.items() if s.family == "ufunc"}
    assert ops.NON_DIFFERENTIABLE == {op for op, s in SPECS.items() if not s.differentiable}
    assert ALIGNED_OPS == set(ops.ELEMENTWISE) | {"where", "astype"} | set(ops.COMPLEX_PARTS)   # (jit/complexops.py)
    assert rules.HOST_OPS == {op for op, s in SPECS.items() if s.host}
    assert rules.unlowered_ops() == set()


def test_the_verifier_checks_the_arity_the_spec_gives():
    b = Builder()
    x = b.input((3,), np.float64)
    bad = Value("exp", (x, x), {}, (3,), np.dtype(np.float64))     # exp broadcasts any operands it gets
    with pytest.raises(IRError, match="exp: 2 operands, the op takes 1"):
        verify(Trace([x], [bad], [bad]))
    joined = b.concatenate(x, x, x, axis=0)                          # variadic: any number
    verify(b.build([joined]))


def test_defining_an_op_twice_is_refused():
    with pytest.raises(IRError, match="'exp' is defined twice"):
        define("exp", "ufunc", arity=1, numpy=np.exp, specs=dict(SPECS))


def test_the_real_spec_passes_every_check():
    rules.check_lowerings(SPECS)
    vjp.check_complete(SPECS)
    jvp.check_complete(SPECS)


def test_a_new_elementwise_op_without_scalar_code_must_be_declared_host():
    with pytest.raises(IRError, match=r"SCALAR \(jit/scalar_ops.py\) has no entry for op\(s\) fake_cbrt: "
                                      r".*declare it host=True"):
        rules.check_lowerings(scratch())
    rules.check_lowerings(scratch(host=True))          # a host call needs no lowering


def test_a_new_op_calling_libm_needs_a_cost(monkeypatch):
    monkeypatch.setitem(scalar_ops.SCALAR, "fake_cbrt", scalar_ops.SCALAR["exp"])
    monkeypatch.setitem(rules.ACCESS, "fake_cbrt", rules.ACCESS["exp"])
    with pytest.raises(IRError, match=r"op costs \(jit/rules.py _COSTS\) has no entry for op\(s\) fake_cbrt"):
        rules.check_lowerings(scratch(libm="cbrt"))
    rules.check_lowerings(scratch())                   # native scalar code without libm: cost 1 by default


def test_a_new_op_of_its_own_family_needs_a_lowering_rule():
    specs = dict(SPECS)
    define("fake_sort", "scan", ("axis",), specs=specs)
    with pytest.raises(IRError, match=r"ACCESS/MATERIALIZE \(jit/rules.py\) has no entry for op\(s\) fake_sort"):
        rules.check_lowerings(specs)


def test_a_host_op_with_a_native_rule_is_refused(monkeypatch):
    monkeypatch.setitem(rules.ACCESS, "fake_cbrt", rules.ACCESS["exp"])
    with pytest.raises(IRError, match="fake_cbrt are declared host=True in ir/ops.py but have native"):
        rules.check_lowerings(scratch(host=True))


def test_derivative_tables_follow_the_spec():
    with pytest.raises(IRError, match=r"VJP \(ir/vjp.py\) has no entry for op\(s\) fake_cbrt"):
        vjp.check_complete(scratch())
    specs = dict(SPECS)
    specs["sin"] = OpSpec("sin", "ufunc", arity=1, numpy=np.sin, elementwise=True, differentiable=False)
    with pytest.raises(IRError, match="zero rule disagrees with the spec's `differentiable` for op\\(s\\) sin"):
        jvp.check_complete(specs)


def test_table_entries_for_ops_the_spec_lacks_are_refused():
    with pytest.raises(IRError, match="entries for op\\(s\\) nonesuch that ir/ops.py does not define"):
        check_table("T", {"exp": 1, "nonesuch": 2}, ("exp",), "", specs=SPECS)
    with pytest.raises(IRError, match=r"SHAPE has no entry for op\(s\) fake_cbrt: give it one"):
        check_table("SHAPE", SHAPE, scratch(), "give it one")


@pytest.fixture
def fake_op(monkeypatch):
    """Register `fake_cbrt` in the live spec with SHAPE and EVAL rules (what define + the generic ufunc
    rules give a new op at import); returns a function setting its spec (host or not)."""
    def register(**fields):
        spec = scratch(**fields)["fake_cbrt"]
        monkeypatch.setitem(SPECS, "fake_cbrt", spec)
        monkeypatch.setitem(ops.PARAMS, "fake_cbrt", ())
        monkeypatch.setitem(builder_module._PARAM_NAMES, "fake_cbrt", frozenset())
        monkeypatch.setitem(SHAPE, "fake_cbrt", SHAPE["exp"])
        monkeypatch.setitem(EVAL, "fake_cbrt", lambda args, params: np.cbrt(args[0]))
    return register


def _fake_trace():
    b = Builder()
    x = b.input((5,), np.float64)
    y = b.emit("fake_cbrt", b.multiply(x, x))
    return b.build([b.add(y, x), b.sum(y, axis=(0,), keepdims=False)]), y


def test_an_op_without_lowering_declared_host_is_a_clean_host_call(fake_op):
    fake_op(host=True)
    trace, y = _fake_trace()
    assert id(y) in Plan(trace).hosted
    x = np.linspace(-2.0, 3.0, 5)
    got = compile_trace(trace)([x])
    for g, want in zip(got, run_trace(trace, [x])):
        np.testing.assert_allclose(g, want, rtol=1e-15)
    np.testing.assert_allclose(got[0], np.cbrt(x * x) + x, rtol=1e-15)


def test_an_op_without_lowering_not_declared_host_is_a_clear_error(fake_op):
    fake_op()
    trace, _ = _fake_trace()
    with pytest.raises(LoweringUnsupported, match="op fake_cbrt has no lowering .* not declared host"):
        compile_trace(trace)
    with pytest.raises(LoweringUnsupported, match="op fake_cbrt on dtype float64 is not supported"):
        scalar_ops.elementwise(None, "fake_cbrt", ["%x"], [np.dtype(np.float64)], np.dtype(np.float64))
