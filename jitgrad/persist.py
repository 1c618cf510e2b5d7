"""The persistent trace cache: every cached trace is written to disk as a record (jit/tracestore.py), and
a new process answers a call from a record, without interpreting the function again, when every
assumption the trace rests on re-validates there (jitgrad/portable.py).

The lookup key of a record hashes the traced function's module, qualified name and code digest, the
transform's parameters, the argument signature, and the `fingerprint` of the process: Python, NumPy,
SciPy (when imported), llvmlite, LLVM, the CPU, a hash of jitgrad's own sources, the JITGRAD_*
settings and the rules users registered.  Within a record: the code digest of every function the trace
interpreted (library code too), and of every method of the classes it met (compiled code such as a dict
lookup or `list.count` may call their `__eq__` without the tracer seeing it), found again by module and
qualified name; every environment entry,
re-read through its place and compared by value; the trace text.  A record resting on anything that
cannot be re-validated in another process is stored with `reusable: false` and the reasons (the CLI
shows them), and never answers a call.  Records written by this very process are not used: a second
wrapper of the same function in one process traces again, as before.

A trace whose loop ops read int arguments as trip counts at run time (tracer/arrays/sizeint.py) is stored
under a key holding those arguments as wildcards (`["size"]`), and its record lists them (`sizes`): a new
process missing its exact key asks for such records (jitgrad/api.py `_restore_wildcards`).

JITGRAD_TRACE_CACHE=0 turns records off (JITGRAD_DISK_CACHE=0 turns off the whole disk cache).
"""
import dataclasses
import functools
import hashlib
import json
import os
import sys
import threading
import types
import warnings

import numpy as np

from . import backend, explain, portable
from .cache import CacheEntry, PathInfo
from .ir.ops import owned_traces
from .ir.parser import parse_trace
from .ir.printer import format_trace
from .jit import diskcache, tracestore
from .signature import as_input_array, describe_key
from .tracer import registered_rules
from .tracing import OutputLayout

Unportable = portable.Unportable
_LOSS_TYPES = {t.__name__: t for t in (float, np.float64, np.float32, np.float16, np.longdouble, np.ndarray)}
_IGNORED_SETTINGS = {"JITGRAD_CACHE_DIR", "JITGRAD_CACHE_MAX_MB", "JITGRAD_LOG", "JITGRAD_LOG_FILE",
                     "JITGRAD_DISK_CACHE", "JITGRAD_TRACE_CACHE", "JITGRAD_LLVM_PAGES"}
_state = {}
_lock = threading.Lock()
_rejected = {}      # lookup key -> why the last record found under it was not reused in this process


def _new_writer():
    _state["writer"] = f"{os.getpid()}-{os.urandom(8).hex()}"


_new_writer()
os.register_at_fork(after_in_child=_new_writer)


def enabled():
    return diskcache.enabled() and os.environ.get("JITGRAD_TRACE_CACHE", "1").strip().lower() not in (
        "0", "false", "off", "no")


# -- the key -----------------------------------------------------------------------------------------
# jitgrad's own sources as this process loaded them (a change to the tracer changes what a trace is; a
# source edited while a process runs does not relabel that process's traces)
_SOURCES = diskcache.sources_stamp(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ("jitgrad", "tracer", "ir", "jit"))


def fingerprint():
    """What the process's traces depend on besides the function (computed once per process, except the
    parts that may change while it runs: SciPy imported, user rules, settings)."""
    with _lock:
        if "fixed" not in _state:
            from .jit import engine
            _state["fixed"] = {"python": sys.version, "cache_tag": sys.implementation.cache_tag,
                               "numpy": np.__version__, "sources": _SOURCES,
                               "machine": engine.settings(0, 0)}
    scipy = sys.modules.get("scipy")
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith("JITGRAD_") and k not in _IGNORED_SETTINGS)
    return dict(_state["fixed"], scipy=getattr(scipy, "__version__", None), settings=settings,
                rules=_user_rules())


def _user_rules():
    """The rules registered by users (their handlers' code), which decide how calls are traced."""
    found = []
    for rule in registered_rules():
        handler = rule.handler.func if type(rule.handler) is functools.partial else rule.handler
        if type(handler) is types.FunctionType and handler.__module__.split(".")[0] != "jitgrad":
            found.append([repr(rule), handler.__module__, handler.__qualname__,
                          portable.code_digest(handler.__code__)])
    return sorted(found)


def encode_key(key):
    """The JSON form of a call's signature key (treedef and leaf keys): Unportable for arguments checked
    by identity (functions, classes, modules passed as arguments)."""
    _, treedef, keys = key
    return [_encode_treedef(treedef), [_encode_leaf(k) for k in keys]]


def _encode_treedef(node):
    if node is None:
        return None
    kind, aux, children = node
    name = kind.__name__ if kind in (tuple, list, dict) else f"{kind.__module__}.{kind.__qualname__}"
    if kind not in (tuple, list, dict):
        portable.object_ref(kind, None)
    return [name, portable.encode_value(aux), [_encode_treedef(c) for c in children]]


def _encode_leaf(k):
    if k[0] == "array":
        return ["array", list(k[1]), np.dtype(k[2]).str]
    if k[0] == "float":
        return ["float"]
    if k[0] == "scalar":
        return ["scalar", np.dtype(k[1]).str]
    if k[0] == "static":
        return ["static", portable.encode_value(k[2])]
    if k[0] == "size":
        return ["size"]
    raise Unportable("an argument is checked by identity (a function, class or module passed as an argument)")


def lookup_key(transformed, key):
    """The hex lookup key of a call of `transformed` with signature `key` (Unportable if none)."""
    fn = transformed.fn
    if type(fn) is not types.FunctionType:
        raise Unportable(f"the transformed callable is a {type(fn).__name__}, not a Python function")
    parts = [tracestore.FORMAT, fingerprint(), fn.__module__, fn.__qualname__, portable.code_digest(fn.__code__),
             _transform_params(transformed), encode_key(key)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _transform_params(transformed):
    return [type(transformed).__name__, transformed.kind, list(transformed.argnums), transformed._tuple_argnums,
            getattr(transformed, "has_aux", None), bool(transformed.jit)]


# -- writing records -----------------------------------------------------------------------------------
def store(transformed, key, sig, staged, kernel, backend_name, note, reason, traced_s):
    """Write the record of a trace just cached (never raises: an unusable directory warns once)."""
    if not enabled():
        return
    try:
        tracestore.store(_record(transformed, key, sig, staged, kernel, backend_name, note, reason, traced_s))
    except OSError as e:
        _warn_once(f"jitgrad: trace records cannot be written to {diskcache.directory()} ({e})")
    except Exception as e:    # a record is a convenience: its failure never fails the call (said once)
        _warn_once(f"jitgrad: internal error writing the trace record of {sig.description} ({e!r}); "
                   "please report this")


def _warn_once(message):
    if "warned" not in _state:
        _state["warned"] = True
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _record(transformed, key, sig, staged, kernel, backend_name, note, reason, traced_s):
    ctx, trace, fn = staged.ctx, staged.trace, transformed.fn
    why_not = []
    lookup = _attempt(why_not, lookup_key, transformed, key)
    if lookup is None:
        unportable = repr(("unportable", getattr(fn, "__qualname__", ""), sig.description))
        lookup = hashlib.sha256(unportable.encode()).hexdigest()
    environment = []
    for e in ctx.env:
        encoded = _attempt(why_not, portable.encode_entry, e, fn) or {"unportable": why_not[-1]}
        environment.append(dict(encoded, describe=e.describe(), loc=e.loc))
    identity_checked = {id(e.expected) for e in ctx.env if e.kind == "identity"}
    codes, inlined = [], list(getattr(ctx, "inlined", {}).values())
    # the code the trace interpreted, and every method of the classes it met: compiled code (a dict
    # lookup, list.count, sorted) may have called one of them without the tracer seeing it
    natively = portable.methods_of(portable.classes_met(inlined, ctx.env, key[1]))
    for func in list({id(f): f for f in inlined + natively}.values()):
        if func is not fn and id(func) not in identity_checked and not ctx.is_local(func):
            codes.append(_attempt(why_not, portable.code_ref, func, fn) or ["unportable", why_not[-1]])
    if getattr(ctx, "replay", None) is not None and (ctx.replay.effects or ctx.replay.deferred):
        why_not.append("side effects replayed by each call (appends, counters, prints)")
    text = format_trace(trace)
    output = _attempt(why_not, _output_form, transformed, staged.package)
    _check_trace(why_not, trace, text)
    timings = getattr(kernel, "timings", {})
    return {
        "format": tracestore.FORMAT, "lookup": lookup, "path": hashlib.sha256(
            (text + json.dumps(environment, sort_keys=True)).encode()).hexdigest()[:32],
        "writer": _state["writer"], "function": getattr(fn, "__qualname__", repr(fn)),
        "module": getattr(fn, "__module__", None), "location": _location(fn), "kind": transformed.kind,
        "signature": ", ".join(describe_key(k) for k in key[2]), "environment": environment, "codes": codes,
        "trace": text,
        "guards": [[g.params["why"], g.params["loc"], repr(g.params["expected"])] for g in trace.guards],
        "loops": ctx.loops.report() if ctx.loops is not None else [],
        "retrace_reason": reason or _rejected.get(lookup),
        "written": sorted(ctx.written_inputs), "sizes": [p for p, k in enumerate(key[2]) if k[0] == "size"],
        "output": output, "backend": backend_name, "note": note,
        "ops": len(trace.nodes), "times": {"trace_s": traced_s, "lower_s": timings.get("lower"),
                                           "compile_s": timings.get("compile")},
        "reusable": not why_not, "why_not": list(dict.fromkeys(why_not)), "kernel": _kernel_form(kernel),
    }


def _kernel_form(kernel):
    """Kernel.form in JSON (constants as bytes), or None (no form, or constants over 1 MiB)."""
    form = getattr(kernel, "form", None)
    if form is None or sum(c.nbytes for c in form["consts"]) > 2**20:
        return None
    signatures = [[[list(shape), np.dtype(dtype).str] for shape, dtype in part] for part in form["signatures"]]
    return dict(form, consts=[[c.dtype.str, list(c.shape), c.tobytes().hex()] for c in form["consts"]],
                signatures=signatures)


def _decode_form(form):
    consts = [np.frombuffer(bytes.fromhex(data), dtype=np.dtype(dtype)).reshape(shape).copy()
              for dtype, shape, data in form["consts"]]
    signatures = tuple([(tuple(shape), np.dtype(dtype)) for shape, dtype in part] for part in form["signatures"])
    return dict(form, consts=consts, signatures=signatures)


def _attempt(why_not, action, *args):
    try:
        return action(*args)
    except Unportable as e:
        why_not.append(str(e))
        return None


def _location(fn):
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def only_output(outputs):
    """The package of a trace whose one output is the user's result."""
    return outputs[0]


def _output_form(transformed, package):
    """How the user's result is made of the kernel's outputs, for the transforms restored from disk."""
    if not vars(type(transformed)).get("restorable") or transformed.has_aux:   # (declared by the very class)
        raise Unportable("only jit_grad and value_and_grad without has_aux are restored from disk")
    if package is only_output:
        return {"simple": True}
    if getattr(package, "replays", False):
        raise Unportable("side effects replayed by each call (appends, counters, prints)")
    layout = package.args[1]
    if layout.loss_type.__name__ not in _LOSS_TYPES or _LOSS_TYPES[layout.loss_type.__name__] is not layout.loss_type:
        raise Unportable(f"the loss is a {layout.loss_type.__name__}")
    return {"simple": False, "loss_type": layout.loss_type.__name__, "n_primal": package.args[2]}


def _check_trace(why_not, trace, text):
    """A trace restored from its text must be the very trace: custom rules (Python objects) are not
    restored, and the text must parse back to itself."""
    if any(node.op == "custom_call" for node in _all_nodes(trace)):
        why_not.append("the trace calls a custom rule (a Python object)")
        return
    try:
        again = format_trace(parse_trace(text))
    except Exception as e:      # (any failure of the parser means: not restorable)
        why_not.append(f"the trace text does not parse back ({type(e).__name__})")
        return
    if again != text:
        why_not.append("the trace text does not parse back to the same trace")


def _all_nodes(trace):
    for node in trace.nodes:
        yield node
        for owned in owned_traces(node):          # a loop's body, a cond's branches
            yield from _all_nodes(owned)


# -- warm start ----------------------------------------------------------------------------------------
def restore(transformed, key, sig, leaves, sizes=()):
    """Cache entries of records on disk that answer calls of `transformed` with signature `key` in this
    process (every assumption re-validated); each failed re-validation is noted in `disk_rejected`.
    `sizes`: the int leaves `key` holds as run-time trip counts (inputs of its kernels)."""
    if not enabled():
        return []
    try:
        lookup = lookup_key(transformed, key)
        found = tracestore.candidates(lookup)
    except (Unportable, OSError, ValueError, TypeError, AttributeError):   # (no record can answer)
        return []
    restored = []
    for record in found:
        if not record["reusable"] or record.get("writer") == _state["writer"]:
            continue
        try:
            restored.append(_entry(transformed, sig, leaves, record, key, sizes))
            tracestore.note_hit(record)
        except Unportable as e:
            _reject(transformed, lookup, f"the record traced by another process ({record['path'][:8]}) does not "
                    f"hold here: {e}")
        except (OSError, KeyError, TypeError, ValueError, IndexError) as e:
            _reject(transformed, lookup, f"the record {record['path'][:8]} is damaged ({e!r})")
    return restored


def _reject(transformed, lookup, why):
    transformed._cache.disk_rejected.append(why)
    _rejected[lookup] = why
    explain.rejected(transformed, why)


def _entry(transformed, sig, leaves, record, key, sizes):
    fn = transformed.fn
    for ref in record["codes"]:
        if ref[0] != "code" or not portable.code_holds(ref):
            raise Unportable(f"the code of {ref[1]}.{ref[2]} changed" if ref[0] == "code" else ref[1])
    if list(sizes) != record.get("sizes", []):
        raise Unportable("the record reads other int arguments at run time")
    env = [portable.rebuild_entry(e, fn, e["loc"]) for e in record["environment"]]
    arrays = ([as_input_array(leaves[i]) for i in sig.dynamic] + [np.asarray(leaves[p], np.intp) for p in sizes]
              + [e.getter.get() for e in env if e.kind == "array"])
    description = ", ".join(describe_key(k) for k in key[2]) if sizes else sig.description
    about = {"function": fn.__qualname__, "location": record["location"], "signature": sig.description,
             "kind": transformed.kind}
    kernel, trace, text = _kernel(transformed, record, about), None, record["trace"]
    if kernel is not None:
        backend_name, note, inputs = "llvm", "restored from the disk cache", kernel.form["signatures"][0]
        guards = [_RecordedGuard(why, loc, expected) for why, loc, expected in record["guards"]]
    else:
        trace = parse_trace(text)
        kernel, backend_name, note = backend.compile_trace(trace, transformed.jit, about)
        inputs, guards = [(v.shape, v.dtype) for v in trace.inputs], trace.guards
    if len(arrays) != len(inputs) or any(
            a.shape != shape or a.dtype != dtype for a, (shape, dtype) in zip(arrays, inputs)):
        raise Unportable("the trace's inputs do not match this call")
    output = record["output"]
    package = only_output if output["simple"] else functools.partial(
        transformed._package, sig, OutputLayout(_LOSS_TYPES[output["loss_type"]], None, []), output["n_primal"])
    info = RestoredPath(description, backend_name, note or "restored from the disk cache",
                        [(g.params["why"], g.params["loc"], g.params["expected"]) for g in guards],
                        [e.describe() for e in env], record["ops"], trace, loops=list(record.get("loops", [])),
                        recorded_text=text)
    return CacheEntry(kernel, env, guards, package, info, [int(i) for i in record.get("written", [])], sizes)


def _kernel(transformed, record, about):
    """The kernel of `record` loaded from its form without parsing or lowering the trace, or None."""
    if not transformed.jit or not record.get("kernel"):
        return None
    from . import jit
    return jit.restore_kernel(_decode_form(record["kernel"]), lambda: parse_trace(record["trace"]), about)


class _RecordedGuard:
    """A guard of a restored trace, as its failure is reported (the trace itself is parsed on demand)."""
    __slots__ = ("params",)

    def __init__(self, why, loc, expected):
        self.params = {"why": why, "loc": loc, "expected": expected}


@dataclasses.dataclass
class RestoredPath(PathInfo):
    """A path restored from disk: `text` is the recorded trace text (`trace` is None unless parsed)."""
    recorded_text: str = ""

    @property
    def text(self):
        return self.recorded_text
