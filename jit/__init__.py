"""jitgrad.jit: lowering of traces to native code with llvmlite."""
