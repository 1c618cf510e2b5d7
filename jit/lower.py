"""Lowering a Trace to one LLVM module: plan it (plan.py, pure), then emit it (emit.py).

`lower(trace, name)` -> (module text, Emitter); small conds are made branch-free first
(conditional.flattened) and matrix-vector products reading one matrix both ways become row-group
sums (matvecpairs.py); the Emitter carries what the Kernel needs besides the
text: its Plan (consts, workspace size, whether the caller hands in the workspace) and its chunks
(which of them take the fast code generator).  The entry's ABI and exit codes are in abi.py.
"""
from .conditional import flattened
from .emit import Emitter
from .matvecpairs import rowwise_matvecs
from .plan import Plan
from .rules import op_cost


def lower(trace, name, precise_math=False):
    """(module text, Emitter) for `trace`, entry point @name; raises LoweringUnsupported."""
    emitter = Emitter(Plan(rowwise_matvecs(flattened(trace, op_cost))), name, precise_math)
    return emitter.build(), emitter
