"""jitgrad.tracer: the CPython bytecode interpreter that records traces."""
