"""What the recording layer needs from the layers above it, which it may not import: they enter it here
when they are imported (tracer/arrays/values.py the traced type, tracer/arrays/array_api.py the NumPy
scalar-type rule, tracer/rules/impure.py the impure-method rule, tracer/__init__.py the rule loader).
Each is None until then."""

traced_type = None   # TracedArray: environment reads and snapshots recognise traced values by it
scalar_cast = None   # scalar_cast(np scalar type, x): the rule for calling a NumPy scalar type
impure_rule = None   # impure_rule(fn): the handler refusing a call of impure method `fn`
load_rules = None    # load_rules(): imports the built-in rules; returns the loader of library rules
