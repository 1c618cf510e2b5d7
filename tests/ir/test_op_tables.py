"""Completeness of the per-op tables: every op of ALL_OPS has a SHAPE, EVAL, VJP and JVP entry, every op
has test cases, and every SHAPE rule agrees with EVAL's actual result on every op case."""
import numpy as np
import pytest

import op_cases
from jitgrad.ir import ALL_OPS, EVAL, SHAPE, Builder, run_trace
from jitgrad.ir.jvp import JVP
from jitgrad.ir.ops import LOOPS
from jitgrad.ir.vjp import VJP

TABLES = {"SHAPE": SHAPE, "EVAL": EVAL, "VJP": VJP, "JVP": JVP}


@pytest.mark.parametrize("table", TABLES)
def test_every_op_has_an_entry(table):
    assert set(TABLES[table]) == set(ALL_OPS)


def test_every_op_has_a_case():
    """Loops are not one-op cases (their operands depend on a body trace): tests/ir/test_loop_*.py."""
    assert {c.op for c in op_cases.CASES} == set(ALL_OPS) - {"input"} - set(LOOPS)


def test_case_names_are_unique():
    names = [c.name for c in op_cases.CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", op_cases.CASES, ids=lambda c: c.name)
def test_shape_rule_agrees_with_evaluation(case, dtype):
    args = op_cases.make_inputs(case, np.random.default_rng(0), dtype)
    b = Builder()
    out = b.emit(case.op, *[b.input(a.shape, a.dtype) for a in args], **case.params)
    (result,) = run_trace(b.build([out]), args)
    assert (result.shape, result.dtype) == (out.shape, out.dtype)
