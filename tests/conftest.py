"""The whole suite runs with the value audit on: every IR value a rule records is checked against the
value NumPy computed while tracing (tracer/audit.py), so a rule that translates a library call wrongly
fails here even where no gradient test covers that exact input."""
from jitgrad.tracer import audit

audit.enable()
