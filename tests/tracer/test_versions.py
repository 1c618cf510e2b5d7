"""Tests of the version tables (tracer/interpretation/version.py): every opcode of the running Python is classified
(handler, alias with normaliser, or refusal with a reason), every handler a table names exists and every
handler is used by some table, another Python version is refused at import; 3.12+/3.13 forms that put
cell variables into fast-local opcodes (inlined comprehensions, 3.13 superinstructions) are decoded to
their cell-slot forms, and functions built of them are differentiated correctly."""
import dis
import subprocess
import sys
import types

import numpy as np
import pytest

from e2e import assert_grad
from jitgrad.tracer.interpretation import version
from jitgrad.tracer.interpretation.decode import decode
from jitgrad.tracer.interpretation.interpreter import HANDLERS, _missing_handler

import interp_snippets_closures as closures


def test_every_opcode_of_this_python_is_classified():
    assert set(version.OPCODES) == set(dis.opmap)
    for name, entry in version.OPCODES.items():
        if entry.refusal is not None:
            assert entry.targets == () and entry.normalise is None and len(entry.refusal) > 20, name
        else:
            assert entry.targets and all(target in HANDLERS for target in entry.targets), name


def test_every_handler_is_named_by_a_table_and_exists():
    named = {target for table in version.TABLES.values() for entry in table.values() for target in entry.targets}
    assert named == set(HANDLERS)
    assert set(version.TABLES) == set(version.SUPPORTED)


def test_another_python_version_is_refused_at_import():
    code = ("import sys, numpy, bytecode\n"
            "sys.version_info = (3, 14, 0, 'final', 0)\n"
            "import jitgrad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "UnsupportedError: jitgrad's bytecode interpreter supports Python 3.11, 3.12, 3.13; " \
           "this is Python 3.14" in result.stderr


def _handler_names(fn):
    """(handler name, argument) of every decoded instruction of `fn` and the code objects inside it."""
    found, codes = [], [fn.__code__]
    while codes:
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        decoded = decode(code, HANDLERS, _missing_handler)
        for op, arg in zip(decoded.ops, decoded.args):
            name = op.__name__[len("op_"):]
            found.append((name, arg))
            if name == version.SPLIT:
                found += [(part.__name__[len("op_"):], part_arg) for part, part_arg in arg]
    return found


@pytest.mark.skipif(version.VERSION < (3, 12), reason="3.11 does not inline comprehensions")
def test_snippets_decode_fast_local_opcodes_on_cells_to_cell_slots():
    names = {name for fn, _ in closures.SNIPPETS for name, _ in _handler_names(fn)}
    assert {"LOAD_CELL_SLOT", "STORE_CELL_SLOT", "LOAD_CELL_SLOT_AND_CLEAR"} <= names
    if version.VERSION >= (3, 13):
        # every superinstruction is split into its single-slot parts at least once
        splits = {tuple(part.__name__ for part, _ in arg) for fn, _ in closures.SNIPPETS
                  for name, arg in _handler_names(fn) if name == version.SPLIT}
        assert {("op_LOAD_CELL_SLOT", "op_LOAD_FAST"), ("op_STORE_CELL_SLOT", "op_STORE_CELL_SLOT"),
                ("op_STORE_CELL_SLOT", "op_LOAD_CELL_SLOT")} <= splits


# -- gradients through these forms ----------------------------------------------------------------------
def nested_total(x):
    late, now, ends = closures.nested_comprehensions_capture_loop_variables(x)
    return sum(sum(row) for row in late) + 0.5 * sum(sum(row * row for row in r) for r in now) + ends


def lambda_total(x, scale):
    scaled, made, v = closures.lambda_in_comprehension_closes_over_loop_variable(x, scale)
    return sum(scaled) * sum(made) + v


def generator_total(x):
    partial, nested, product = closures.generator_inside_comprehension(x)
    return sum(p * p for p in partial) + nested + product


def nonlocal_total(x):
    total, history, read = closures.nonlocal_updates_in_loop(x, 4)
    return total + sum(history) * read[1]


X = np.array([0.3, -0.7, 1.1, 0.4])


def test_gradient_of_loop_variable_captured_by_generator():
    icf = np.linspace(-0.5, 0.8, 6).reshape(2, 3)
    grad = assert_grad(closures.loop_variable_captured_by_generator, icf)
    np.testing.assert_allclose(grad, 2 * np.exp(2 * icf) - 1, rtol=1e-12)


@pytest.mark.parametrize("fn", [nested_total, generator_total, nonlocal_total])
def test_gradient_through_comprehension_and_closure_forms(fn):
    assert_grad(fn, X[:3] if fn is nested_total else X)


def test_gradient_through_lambda_in_comprehension():
    assert_grad(lambda_total, X, 1.5, argnums=(0, 1))
