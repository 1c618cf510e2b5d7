"""What the logs say about each new trace (jit/logs.py: the `jitgrad.<topic>` loggers, JITGRAD_LOG).

- `recompiles`: why the call was traced: a new signature, or, for a retrace, the guard that failed
  (what it checks, its old value and the value of this call) or the environment entry that changed
  (its place, old and new value), with the user's source line; and why a record on disk did not answer.
- `guards`: the new trace's guards with their source lines, and its environment assumptions.
- `trace`: the new trace's text, its op count and tracing time.

Every message is built only when its topic is on.
"""
from .ir.printer import format_trace
from .jit import logs


class Retrace(str):
    """Why a call missed every cached path of its signature (the text `cache_info().retraces` lists),
    with what failed: `guard` (why, loc, expected) of a failed guard, or `entry`, the EnvEntry whose
    place now holds something else."""

    guard = entry = None
    tried = ()          # (set on the last) why each cached path of the signature did not answer

    @classmethod
    def of_guard(cls, why, loc, expected):
        made = cls(f"guard failed: {why} at {loc}")
        made.guard = (why, loc, expected)
        return made

    @classmethod
    def of_entry(cls, entry):
        made = cls(f"environment changed: {entry.describe()}")
        made.entry = entry
        return made


def traced(transformed, sig, trace, env, reason, traced_s):
    """Log the new `trace` of `transformed` (signature `sig`, environment entries `env`) made after a miss
    for `reason` (a Retrace, another str, or None: a new signature), under the topics that are on."""
    fn = transformed.fn
    name = f"{getattr(fn, '__qualname__', repr(fn))} ({_location(fn)})"
    if logs.wanted("recompiles"):
        logs.log("recompiles", "%s", _why(name, sig.description, trace, reason))
    if logs.wanted("guards"):
        lines = [f"{name}, signature {sig.description}: {len(trace.guards)} guard(s), {len(env)} environment "
                 "assumption(s)"]
        lines += [f"  guard: {g.params['why']} (expected {_short(g.params['expected'])}) at "
                  f"{logs.source_line(g.params['loc'])}" for g in trace.guards]
        lines += [f"  environment: {e.describe()}" for e in env]
        logs.log("guards", "%s", "\n".join(lines))
    if logs.wanted("trace"):
        logs.log("trace", "%s, signature %s: traced in %.3f s, %d ops\n%s", name, sig.description, traced_s,
                 len(trace.nodes), format_trace(trace))


def rejected(transformed, why):
    """Log that a record on disk did not answer a call of `transformed` (and so it is traced here)."""
    if logs.wanted("recompiles"):
        fn = transformed.fn
        logs.log("recompiles", "%s (%s): not warm-started from the disk cache: %s",
                 getattr(fn, "__qualname__", repr(fn)), _location(fn), why)


def _why(name, signature, trace, reason):
    if reason is None:
        return f"tracing {name} for a new signature {signature}"
    head = f"retracing {name}, signature {signature}"
    tried = getattr(reason, "tried", ())
    if len(tried) > 1:
        return f"{head}: none of its {len(tried)} paths holds\n" + "\n".join(
            f"  path {k}: {_failure(r, trace)}" for k, r in enumerate(tried, 1))
    return f"{head}: {_failure(reason, trace)}"


def _failure(reason, trace):
    """What failed, with old and new value and the source line."""
    if getattr(reason, "guard", None) is not None:
        why, loc, old = reason.guard
        new = [g.params["expected"] for g in trace.guards if g.params["why"] == why and g.params["loc"] == loc]
        now = _short(new[0]) if new else "not reached by this call"
        return f"guard failed: {why}: old value {_short(old)}, new value {now}\n    at {logs.source_line(loc)}"
    entry = getattr(reason, "entry", None)
    if entry is not None:
        return (f"environment changed: {entry.getter.describe()}: old {_old(entry)}, new {_current(entry)}"
                f"\n    read at {logs.source_line(entry.loc)}")
    return str(reason)


def _old(entry):
    if entry.kind == "array":
        return f"shape/dtype {entry.shape} {entry.dtype}"
    return _described(entry, entry.expected)


def _current(entry):
    try:
        value = entry.getter.get()
    except Exception as e:                    # (the place no longer exists: that is the change)
        return f"unreadable ({type(e).__name__}: {e})"
    if entry.kind == "array":
        return f"shape/dtype {getattr(value, 'shape', '?')} {getattr(value, 'dtype', type(value).__name__)}"
    return _described(entry, value)


def _described(entry, value):
    if entry.kind == "len":
        return f"{type(value).__name__} of length {len(value)}" if hasattr(value, "__len__") else _short(value)
    if entry.kind == "identity":
        return f"{type(value).__name__} {getattr(value, '__qualname__', '')} at {id(value):#x}"
    return _short(value)


def _short(value, width=80):
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _location(fn):
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else "?"
