"""The contract between a compiled kernel and its callers: the entry's calling convention, the order of
its pointer arguments, and its exit codes.  The planner, the emitter, the rules and the Kernel all
import it; it imports nothing of jit/.

Entry.  `i64 <name>(ptr args)` (name unique per kernel).  `args` holds the data pointers of the
trace's inputs, then its outputs, then the constant arrays (in Plan.consts order), then, when
Plan.caller_workspace, the workspace of Plan.workspace.size bytes (64-byte aligned); every array is
row-major contiguous with the shape and dtype the trace gives it.  Internally the entry calls one
function per chunk, `i64 @<name>_chunkK(ptr noalias %p0, ..., ptr %ws)`, with the same pointers.

Exit codes.  SUCCESS when every output is written; k >= 0 when guard k (Trace.guards order) failed;
OOB_EXIT when an index array held an out-of-range index; PRECISE_EXIT when an inline math function
met an argument outside its accurate range (the Kernel reruns the trace's libm twin); HOST_ERROR when
a host-called op raised (hostcall keeps the exception for the Kernel to re-raise); MEMORY_EXIT when
allocating a stack of a run-time number of rows failed (jit/loops.py).
"""
SUCCESS = -1
OOB_EXIT = -2
PRECISE_EXIT = -3
HOST_ERROR = -4
MEMORY_EXIT = -5

STACK_WORKSPACE = 64 * 1024   # workspaces up to this size live on the entry's stack


def argument_order(n_inputs, n_outputs, n_consts):
    """{'input': first index, 'output': ..., 'const': ..., 'workspace': ...} in the args array."""
    return {"input": 0, "output": n_inputs, "const": n_inputs + n_outputs,
            "workspace": n_inputs + n_outputs + n_consts}

