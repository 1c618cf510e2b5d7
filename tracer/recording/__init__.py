"""The recording layer (bottom of the tracer): the trace context (the IR builder, guards and environment
reads of one trace: `context`), environment getters (`namespaces`) and snapshots, the call registry,
the audit of recorded values, NumPy's error mode, and `hooks` (what the layers above enter at import).
It imports nothing of the tracer's other layers."""
